/**
 * Connection through its public API on real loopback sockets and real TLS (issue 16, mutation testing): ids and the
 * addresses (direct and from a PROXY header) in the connection and its log lines, writes around close, the close
 * reasons and their order of precedence, the idle timeout before and after a TLS upgrade, pause/resume, drained(),
 * the security state, and the refusals of a second upgrade. The server side is a Connection made on an accepted
 * socket, as TcpServer makes it; the peer is a plain net or node:tls client.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { generate } from 'selfsigned';
import { Connection, type CloseReason, type SecurityState, type UpgradeOwner } from '../../lib/core/connection.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TlsHandshakeError } from '../../lib/core/tls-errors.js';
import { testCertificates } from '../support/certs.js';
import { heldTimers } from '../support/held-timers.js';
import { RecordingLogger } from '../support/recording-logger.js';

describe('core: Connection edges (connection mutants)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let security: ServerSecurity;
  let server: net.Server;
  let port: number;
  let log: RecordingLogger;
  const waiting: Array<(s: net.Socket) => void> = [];
  const sockets: net.Socket[] = [];
  const conns: Connection[] = [];

  before(async () => {
    certs = await testCertificates();
    security = new ServerSecurity({ certificate: certs.server });
    await security.prepare();
    server = net.createServer((s) => waiting.shift()?.(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  beforeEach(() => {
    log = new RecordingLogger();
  });
  afterEach(() => {
    for (const c of conns.splice(0)) c.destroy();
    for (const s of sockets.splice(0)) s.destroy();
  });
  after(async () => {
    security.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A client socket and the server-side Connection made on its accepted socket (with `options`). */
  async function pair(options: ConstructorParameters<typeof Connection>[3] = {}, meta: Record<string, unknown> = {}): Promise<{ client: net.Socket; conn: Connection; raw: net.Socket }> {
    const accepted = new Promise<net.Socket>((resolve) => waiting.push(resolve));
    const client = net.connect({ host: '127.0.0.1', port });
    client.on('error', () => undefined);
    sockets.push(client);
    await new Promise<void>((resolve) => client.once('connect', resolve));
    const raw = await accepted;
    sockets.push(raw);
    const conn = new Connection(raw, log, meta, options);
    conns.push(conn);
    return { client, conn, raw };
  }

  const closeOf = (conn: Connection): Promise<CloseReason> => new Promise((resolve) => conn.once('close', resolve));
  const dataOf = (conn: Connection): (() => string) => {
    let got = '';
    conn.on('data', (d) => (got += d.toString('latin1')));
    return () => got;
  };
  /** Resolves once `check` holds, polling every 2 ms (bounded: 5 s). */
  async function until(check: () => boolean, what: string): Promise<void> {
    for (let i = 0; !check(); i++) {
      if (i > 2500) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => setTimeout(resolve, 2));
    }
  }

  it('numbers ids in base 36 behind the prefix, and binds cid, remote and the meta to its log lines', async () => {
    const { client, conn } = await pair({ idPrefix: 'w2-' }, { proto: 'smtp' });
    const next = (await pair()).conn;
    const m = /^w2-c([0-9a-z]+)$/.exec(conn.id);
    expect(m, conn.id).to.not.equal(null);
    expect(next.id).to.equal(`c${(parseInt(m![1]!, 36) + 1).toString(36)}`);
    expect([conn.remoteAddress, conn.remotePort, conn.localAddress, conn.localPort]).to.deep.equal(['127.0.0.1', client.localPort, '127.0.0.1', port]);
    expect([conn.proxy, conn.dialledHost]).to.deep.equal([undefined, undefined]);
    conn.log.warn('probe');
    expect(log.find('warn', 'probe')[0]!.meta).to.deep.equal({ cid: conn.id, remote: `127.0.0.1:${client.localPort}`, proto: 'smtp' });
  });

  it('counts ids up in base 36', () => {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const c = new Connection(new net.Socket(), log);
      ids.push(c.id);
      c.destroy();
    }
    const n = parseInt(ids[0]!.slice(1), 36);
    expect(ids).to.deep.equal(ids.map((_, i) => `c${(n + i).toString(36)}`));
    // A socket without addresses (not connected): empty address and port 0, also for the proxy's own.
    const bare = new Connection(new net.Socket(), log, {}, { proxied: { source: { address: '192.0.2.7', port: 1 } } });
    expect([bare.localAddress, bare.localPort, bare.proxy]).to.deep.equal(['', 0, { address: '', port: 0 }]);
    bare.destroy();
    const plain = new Connection(new net.Socket(), log);
    expect([plain.remoteAddress, plain.remotePort, plain.localAddress, plain.localPort]).to.deep.equal(['', 0, '', 0]);
    plain.destroy();
  });

  it('takes the addresses of a PROXY header, keeps the proxy\'s own, and names it in the log lines', async () => {
    const source = { address: '192.0.2.7', port: 40001 };
    const destination = { address: '198.51.100.1', port: 25 };
    const { client, conn } = await pair({ proxied: { source, destination } });
    expect([conn.remoteAddress, conn.remotePort, conn.localAddress, conn.localPort]).to.deep.equal(['192.0.2.7', 40001, '198.51.100.1', 25]);
    expect(conn.proxy).to.deep.equal({ address: '127.0.0.1', port: client.localPort });
    conn.log.warn('probe');
    expect(log.find('warn', 'probe')[0]!.meta).to.deep.equal({ cid: conn.id, remote: '192.0.2.7:40001', proxy: `127.0.0.1:${client.localPort}` });
    const noDestination = (await pair({ proxied: { source } })).conn;
    expect([noDestination.remoteAddress, noDestination.localAddress, noDestination.localPort]).to.deep.equal(['192.0.2.7', '127.0.0.1', port]);
    expect((await pair({ dialledHost: 'mx.example' })).conn.dialledHost).to.equal('mx.example');
  });

  it('writes until closed, then ignores writes; close() flushes, resolves once the socket is closed, and is idempotent', async () => {
    const { client, conn } = await pair();
    let got = '';
    client.on('data', (d: Buffer) => (got += d.toString('latin1')));
    client.on('end', () => client.end());
    const reasons: CloseReason[] = [];
    conn.on('close', (r) => reasons.push(r));
    expect(conn.write('one\r\n')).to.equal(true);
    expect(conn.isClosed).to.equal(false);
    const closing = conn.close();
    expect(conn.isClosed).to.equal(true);
    expect(conn.write('two\r\n')).to.equal(false);
    await closing;
    await conn.close('error');
    conn.destroy('error');
    expect([got, reasons]).to.deep.equal(['one\r\n', ['closed']]);
    expect(conn.write('three\r\n')).to.equal(false);
  });

  it('keeps the first reason: destroy(reason), then close(); a peer that closes first is peer-closed, one that resets too', async () => {
    const a = await pair();
    const aClosed = closeOf(a.conn);
    a.conn.destroy('refused');
    await a.conn.close('closed');
    expect(await aClosed).to.equal('refused');
    const e = await pair();
    const eClosed = closeOf(e.conn);
    const closing = e.conn.close();
    e.conn.destroy('error'); // while closing: the close's reason stays
    await closing;
    expect(await eClosed).to.equal('closed');
    const b = await pair();
    const bClosed = closeOf(b.conn);
    b.client.end();
    expect(await bClosed).to.equal('peer-closed');
    const c = await pair();
    const cClosed = closeOf(c.conn);
    c.client.resetAndDestroy();
    expect(await cClosed).to.equal('peer-closed');
    const d = await pair();
    const dClosed = closeOf(d.conn);
    d.raw.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    expect(await dClosed).to.equal('error');
    expect(d.conn.isClosed).to.equal(true);
  });

  it('with secureAtOnce (an implicit-TLS listener) still reports a peer\'s close and a socket error before any upgrade', async () => {
    const a = await pair({ secureAtOnce: true });
    const aClosed = closeOf(a.conn);
    a.client.end();
    expect(await aClosed).to.equal('peer-closed');
    const b = await pair({ secureAtOnce: true });
    const bClosed = closeOf(b.conn);
    b.raw.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    expect(await bClosed).to.equal('error');
    // TcpServer attaches its own error listener at accept, before the Connection: the Connection's must still be added.
    const accepted = new Promise<net.Socket>((resolve) => waiting.push(resolve));
    const client = net.connect({ host: '127.0.0.1', port });
    client.on('error', () => undefined);
    sockets.push(client);
    const raw = await accepted;
    raw.on('error', () => undefined);
    const conn = new Connection(raw, log);
    conns.push(conn);
    const closed = closeOf(conn);
    raw.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    expect(await closed).to.equal('error');
  });

  it('compresses both ways once started (raw DEFLATE), keeps the flow going past the inflater\'s buffer, and flushes the last reply at close', async () => {
    const { client, conn } = await pair();
    conn.startCompression();
    conn.startCompression(); // a second call changes nothing
    expect(conn.isCompressed).to.equal(true);
    const inflate = zlib.createInflateRaw();
    let got = '';
    inflate.on('data', (d: Buffer) => (got += d.toString('latin1')));
    client.pipe(inflate);
    client.on('end', () => client.end());
    expect(conn.write('* OK compressed\r\n')).to.equal(true);
    await until(() => got === '* OK compressed\r\n', 'the inflated reply');
    // 4 MB of hex text: about 2 MB on the wire, in chunks larger than the inflater buffers, so the socket is paused
    // while the inflater is full and resumed at its drain.
    const text = Buffer.from(randomBytes(2 << 20).toString('hex'), 'latin1');
    let received = 0;
    conn.on('data', (d) => (received += d.length));
    conn.pause();
    conn.resume(); // resumed by the session: the inflater's drain resumes the socket again
    const deflate = zlib.createDeflateRaw();
    deflate.pipe(client, { end: false });
    deflate.write(text);
    deflate.flush(zlib.constants.Z_SYNC_FLUSH);
    await until(() => received === text.length, 'all 4 MB inflated');
    const closed = closeOf(conn);
    conn.write('* BYE\r\n');
    await conn.close();
    expect(await closed).to.equal('closed');
    await until(() => got.endsWith('* BYE\r\n'), 'the last reply');
  });

  it('reports backpressure of compressed writes, and closes on corrupt compressed input (error)', async () => {
    const { client, conn, raw } = await pair();
    conn.startCompression();
    client.pause();
    let full = false;
    // Incompressible bytes; the deflater emits asynchronously, so each write reports what the socket holds by then.
    // Each write waits for the deflater's output to reach the socket (not for a fixed time: on a loaded machine the
    // zlib thread can lag any number of milliseconds), so the socket's buffer grows write by write.
    for (let i = 0; i < 400 && !full; i++) {
      const before = raw.bytesWritten;
      full = !conn.write(randomBytes(65_536));
      await until(() => raw.bytesWritten > before, 'the deflated bytes on the socket');
    }
    expect(full, 'a compressed write reports a full buffer').to.equal(true);
    client.resume();
    const closed = closeOf(conn);
    client.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(await closed).to.equal('error');
  });

  it('closes on idle without a timeout listener, only tells with one, and clears with 0', async () => {
    const a = await pair();
    const aClosed = closeOf(a.conn);
    a.conn.setIdleTimeout(20);
    expect(await aClosed).to.equal('idle-timeout');
    const b = await pair();
    const told = new Promise<void>((resolve) => b.conn.once('timeout', resolve));
    b.conn.setIdleTimeout(20);
    await told;
    expect(b.conn.isClosed).to.equal(false);
    b.conn.setIdleTimeout(0);
    let toldAgain = 0;
    b.conn.on('timeout', () => toldAgain++);
    // A reference connection with a longer idle timeout, set after b's was cleared: when it fires, b's would have.
    const ref = await pair();
    const refClosed = closeOf(ref.conn);
    ref.conn.setIdleTimeout(40);
    expect(await refClosed).to.equal('idle-timeout');
    expect([toldAgain, b.conn.isClosed]).to.deep.equal([0, false]);
  });

  it('delivers nothing while paused and everything on resume', async () => {
    const { client, conn, raw } = await pair();
    const got = dataOf(conn);
    conn.pause();
    client.write('held');
    await until(() => raw.readableLength === 4, 'the bytes to wait in the socket');
    expect(got()).to.equal('');
    conn.resume();
    await until(() => got() === 'held', 'the held bytes');
  });

  it('drained() resolves at once with nothing queued, else once the peer has read, or at close', async () => {
    const { client, conn } = await pair();
    await conn.drained();
    client.pause();
    const chunk = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 64 && conn.write(chunk); i++);
    expect(conn.writableLength).to.be.greaterThan(0);
    let drained = false;
    const done = conn.drained().then(() => (drained = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(drained).to.equal(false);
    client.resume();
    await done;
    const other = await pair();
    other.client.pause();
    for (let i = 0; i < 64 && other.conn.write(chunk); i++);
    const atClose = other.conn.drained();
    other.conn.destroy();
    await atClose;
  });

  /** Holds the 2 s grace timers Connection arms (set with exactly 2000 ms) and records which timers get cleared. */
  const graceTimers = (): ReturnType<typeof heldTimers> => heldTimers(2_000);
  const noDelayOf = (s: net.Socket): unknown => (s as unknown as Record<symbol, unknown>)[Object.getOwnPropertySymbols(s).find((k) => k.description === 'kSetNoDelay')!];

  describe('socket options, close grace and log lines', () => {
    it('turns Nagle off on the socket it wraps', async () => {
      const accepted = new Promise<net.Socket>((resolve) => waiting.push(resolve));
      const client = net.connect({ host: '127.0.0.1', port });
      client.on('error', () => undefined);
      sockets.push(client);
      const raw = await accepted;
      sockets.push(raw);
      expect(noDelayOf(raw), 'before').to.equal(false);
      conns.push(new Connection(raw, log));
      expect(noDelayOf(raw), 'after').to.equal(true);
    });

    it('destroys a socket whose peer never closes its side at the unref\'d grace timer of close(), and clears it when the peer does', async () => {
      const timers = graceTimers();
      try {
        // A peer that keeps its side open after our FIN (half-open): only the grace timer ends the connection.
        const accepted = new Promise<net.Socket>((resolve) => waiting.push(resolve));
        const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        client.on('error', () => undefined);
        sockets.push(client);
        const raw = await accepted;
        sockets.push(raw);
        const conn = new Connection(raw, log);
        conns.push(conn);
        let fin = false;
        client.once('end', () => (fin = true));
        const closed = closeOf(conn);
        const closing = conn.close();
        await until(() => fin, 'our FIN');
        expect(timers.armed).to.have.length(1);
        const [grace] = timers.armed;
        expect(grace!.handle.hasRef(), 'unref\'d').to.equal(false);
        expect(raw.destroyed).to.equal(false);
        grace!.fire();
        expect(raw.destroyed).to.equal(true);
        await closing;
        expect(await closed).to.equal('closed');
        expect(timers.cleared.has(grace!.handle), 'cleared at the close').to.equal(true);
        // A peer that closes: the timer is cleared when the socket closes, before it fires.
        const b = await pair();
        b.client.on('end', () => b.client.end());
        await b.conn.close();
        expect(timers.armed).to.have.length(2);
        expect(timers.cleared.has(timers.armed[1]!.handle)).to.equal(true);
      } finally {
        timers.restore();
      }
    });

    it('compressed: ends the socket once the deflater has flushed, with the same grace timer', async () => {
      const timers = graceTimers();
      try {
        const { client, conn } = await pair();
        conn.startCompression();
        const inflate = zlib.createInflateRaw();
        let got = '';
        inflate.on('data', (d: Buffer) => (got += d.toString('latin1')));
        client.pipe(inflate);
        let fin = false;
        client.once('end', () => (fin = true));
        conn.write('* BYE last\r\n');
        const closing = conn.close();
        await until(() => fin, 'the FIN after the deflater\'s last bytes');
        expect(got).to.equal('* BYE last\r\n');
        expect(timers.armed).to.have.length(1);
        expect(timers.armed[0]!.handle.hasRef()).to.equal(false);
        client.end();
        await closing;
        expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
        // Closing again: the deflater has ended, so the plain path runs (nothing thrown, nothing written).
        await conn.close();
      } finally {
        timers.restore();
      }
    });

    it('keeps inflating past the inflater\'s buffer without any pause() or resume() from the session', async () => {
      const { client, conn } = await pair();
      conn.startCompression();
      const text = Buffer.from(randomBytes(512 << 10).toString('hex'), 'latin1');
      let received = 0;
      conn.on('data', (d) => (received += d.length));
      const deflate = zlib.createDeflateRaw();
      deflate.pipe(client, { end: false });
      deflate.write(text);
      deflate.flush(zlib.constants.Z_SYNC_FLUSH);
      await until(() => received === text.length, 'all 1 MB inflated');
    });

    it('logs a socket error at debug with its code, and takes EPIPE like a reset (peer-closed)', async () => {
      const a = await pair();
      const aClosed = closeOf(a.conn);
      a.raw.destroy(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }));
      expect(await aClosed).to.equal('peer-closed');
      expect(log.find('debug', 'socket error').map((r) => r.meta)).to.deep.equal([{ cid: a.conn.id, remote: `127.0.0.1:${a.client.localPort}`, code: 'EPIPE', error: 'broken pipe' }]);
    });

    it('logs a compression error at debug with the inflater\'s message', async () => {
      const { client, conn } = await pair();
      conn.startCompression();
      const closed = closeOf(conn);
      client.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
      expect(await closed).to.equal('error');
      const lines = log.find('debug', 'compression error');
      expect(lines).to.have.length(1);
      expect(lines[0]!.meta.error).to.match(/invalid/);
      expect(lines[0]!.meta.cid).to.equal(conn.id);
    });
  });

  describe('TLS', () => {
    /** Upgrades the server side while a node:tls client handshakes over the same TCP connection. */
    async function upgraded(idleMs = 0): Promise<{ conn: Connection; client: tls.TLSSocket; plain: net.Socket; secured: SecurityState[] }> {
      const { client: plain, conn } = await pair();
      if (idleMs) conn.setIdleTimeout(idleMs);
      const secured: SecurityState[] = [];
      conn.on('secured', (s) => secured.push(s));
      const serverSide = conn.authenticateAsServer(security);
      const client = tls.connect({ socket: plain, ca: certs.ca.cert, servername: 'localhost' });
      client.on('error', () => undefined);
      sockets.push(client);
      await Promise.all([serverSide, new Promise<void>((resolve) => client.once('secureConnect', () => resolve()))]);
      return { conn, client, plain, secured };
    }

    it('reports the security state once secured, and refuses a second upgrade', async () => {
      const { conn, secured } = await upgraded();
      expect(conn.isSecure).to.equal(true);
      expect(secured).to.deep.equal([conn.security]);
      expect(conn.security).to.deep.include({ tls: true, protocol: 'TLSv1.3', sni: 'localhost', policyErrors: SslPolicyErrors.None });
      expect(conn.security.cipher).to.match(/^TLS_/);
      const again = await conn.authenticateAsServer(security).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(again).to.be.instanceOf(TlsHandshakeError).with.property('message', 'connection is already secure');
      expect((again as TlsHandshakeError).reason).to.equal('protocol');
      expect(conn.isClosed).to.equal(false);
    });

    it('prepares an unprepared configuration before the handshake', async () => {
      const fresh = new ServerSecurity({ certificate: certs.server });
      try {
        const { client: plain, conn } = await pair();
        const serverSide = conn.authenticateAsServer(fresh);
        const client = tls.connect({ socket: plain, ca: certs.ca.cert, servername: 'localhost' });
        client.on('error', () => undefined);
        sockets.push(client);
        await serverSide;
        expect(conn.isSecure).to.equal(true);
      } finally {
        fresh.close();
      }
    });

    it('after the upgrade: pause/resume work on the TLS socket, and a reset under it is peer-closed', async () => {
      const { conn, client, plain } = await upgraded();
      const got = dataOf(conn);
      conn.pause();
      conn.resume();
      client.write('over tls');
      await until(() => got() === 'over tls', 'data after the upgrade');
      const closed = closeOf(conn);
      plain.resetAndDestroy();
      expect(await closed).to.equal('peer-closed');
    });

    it('refuses an upgrade while one is in progress', async () => {
      const { conn } = await pair();
      const first = conn.authenticateAsServer(security).catch(() => undefined);
      const second = await conn.authenticateAsServer(security).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect([(second as TlsHandshakeError).reason, (second as Error).message]).to.deep.equal(['protocol', 'a TLS handshake is already in progress']);
      conn.destroy();
      await first;
    });

    it('keeps the idle timeout across the upgrade, on the TLS socket', async () => {
      const { conn, client } = await upgraded(40);
      const closed = closeOf(conn);
      let got = '';
      client.on('data', (d: Buffer) => (got += d.toString('latin1')));
      conn.write('over tls\r\n');
      expect(await closed).to.equal('idle-timeout');
      expect(got).to.equal('over tls\r\n');
    });

    /** Starts a server upgrade, lets `peer` spoil it, and resolves the upgrade's error, the event's reason and the close reason. */
    async function spoiledUpgrade(peer: (client: net.Socket) => void): Promise<{ err: unknown; failed: Promise<string>; closed: Promise<unknown> }> {
      const { client, conn } = await pair();
      const failed = new Promise<string>((resolve) => conn.once('tls-failed', resolve));
      const closed = closeOf(conn);
      const upgrade = conn.authenticateAsServer(security).then(
        () => undefined,
        (e: unknown) => e,
      );
      peer(client);
      return { err: await upgrade, failed, closed };
    }

    it('emits tls-failed with the reason, warns, and closes with tls-failed when the peer goes away mid-handshake', async () => {
      const { err: error, failed, closed } = await spoiledUpgrade((client) => client.end());
      const err = error as TlsHandshakeError;
      expect(err.reason).to.equal('peer-closed');
      expect(await failed).to.equal('peer-closed');
      expect(await closed).to.equal('tls-failed');
    });

    it('emits tls-failed with the reason, warns, and closes with tls-failed when the peer sends no TLS', async () => {
      const { err, failed, closed } = await spoiledUpgrade((client) => client.write('EHLO not tls at all\r\n\r\n'));
      expect(err).to.be.instanceOf(TlsHandshakeError);
      expect(await failed).to.equal((err as TlsHandshakeError).reason);
      expect(await closed).to.equal('tls-failed');
      expect(log.find('warn', 'tls handshake failed').map((r) => r.meta.reason)).to.deep.equal([(err as TlsHandshakeError).reason]);
    });

    it('logs the established session at debug with protocol, cipher, SNI and policy errors', async () => {
      const { conn } = await upgraded();
      const lines = log.find('debug', 'tls established');
      expect(lines).to.have.length(1);
      const { protocol, cipher, sni, policyErrors } = conn.security;
      expect(lines[0]!.meta).to.deep.equal({ cid: conn.id, remote: lines[0]!.meta.remote, protocol, cipher, sni, policyErrors });
      expect([protocol, sni, policyErrors]).to.deep.equal(['TLSv1.3', 'localhost', SslPolicyErrors.None]);
    });

    it('warns a failed handshake with its reason, code and message', async () => {
      const { client, conn } = await pair();
      const upgrade = conn.authenticateAsServer(security).then(
        () => undefined,
        (e: unknown) => e as TlsHandshakeError,
      );
      client.end();
      const err = (await upgrade)!;
      expect(log.find('warn', 'tls handshake failed').map((r) => r.meta)).to.deep.equal([
        { cid: conn.id, remote: `127.0.0.1:${client.localPort}`, reason: 'peer-closed', code: err.code, error: err.message },
      ]);
    });

    it('answers an ACME TLS-ALPN-01 validation: one info line, no tls-failed event, closed with tls-failed', async () => {
      const acme = new ServerSecurity({ certificate: certs.server });
      try {
        const challenge = await generate([{ name: 'commonName', value: 'acme.postern.test' }], { keyType: 'ec', algorithm: 'sha256' });
        acme.acmeChallenges.add('acme.postern.test', challenge.private, challenge.cert);
        const { client: plain, conn } = await pair();
        const failed: string[] = [];
        conn.on('tls-failed', (r) => failed.push(r));
        const closed = closeOf(conn);
        const upgrade = conn.authenticateAsServer(acme).then(
          () => undefined,
          (e: unknown) => e as TlsHandshakeError,
        );
        const client = tls.connect({ socket: plain, servername: 'acme.postern.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false });
        client.on('error', () => undefined);
        sockets.push(client);
        expect((await upgrade)?.reason).to.equal('acme-challenge');
        expect(await closed).to.equal('tls-failed');
        expect(failed).to.deep.equal([]);
        expect(log.find('info', 'acme tls-alpn-01 validation answered').map((r) => r.meta.cid)).to.deep.equal([conn.id]);
        expect(log.find('warn', 'tls handshake failed')).to.deep.equal([]);
      } finally {
        acme.close();
      }
    });
  });

  describe('secureAccepted (the implicit-TLS accept path, stop 22)', () => {
    /** An UpgradeOwner that records what it is told (kind, same connection, argument, error). */
    function recordingOwner(): UpgradeOwner<string> & { heard: unknown[][]; told: Promise<void> } {
      const heard: unknown[][] = [];
      let tell!: () => void;
      const told = new Promise<void>((resolve) => (tell = resolve));
      return {
        heard,
        told,
        connectionSecured(c, arg) {
          heard.push(['secured', c, arg]);
          tell();
        },
        connectionNotSecured(c, err, arg) {
          heard.push(['not secured', c, arg, (err as Error).name, (err as Error).message]);
          tell();
        },
      };
    }

    it('prepares an unprepared configuration first, then tells the owner, with its argument, that the connection is secure', async () => {
      const fresh = new ServerSecurity({ certificate: certs.server });
      try {
        const { client: plain, conn } = await pair({ secureAtOnce: true });
        const owner = recordingOwner();
        conn.secureAccepted(fresh, owner, 'first');
        const client = tls.connect({ socket: plain, ca: certs.ca.cert, servername: 'localhost' });
        client.on('error', () => undefined);
        sockets.push(client);
        await owner.told;
        expect(owner.heard).to.deep.equal([['secured', conn, 'first']]);
        expect(conn.isSecure).to.equal(true);
      } finally {
        fresh.close();
      }
    });

    it('tells the owner of a configuration that cannot be prepared, and of a second upgrade while one is in progress', async () => {
      const broken = new ServerSecurity({ certificate: { certFile: '/nonexistent/postern/c.pem', keyFile: '/nonexistent/postern/k.pem' } });
      const a = await pair({ secureAtOnce: true });
      const failed = recordingOwner();
      a.conn.secureAccepted(broken, failed, 'broken');
      await failed.told;
      expect(failed.heard.map((h) => h.slice(0, 4))).to.deep.equal([['not secured', a.conn, 'broken', 'CertificateError']]);
      const b = await pair({ secureAtOnce: true });
      const first = recordingOwner();
      const second = recordingOwner();
      b.conn.secureAccepted(security, first, 'one');
      b.conn.secureAccepted(security, second, 'two');
      expect(second.heard).to.deep.equal([['not secured', b.conn, 'two', 'TlsHandshakeError', 'a TLS handshake is already in progress']]);
      expect(first.heard).to.deep.equal([]);
    });

    it('closes tls-failed, as a protocol failure, when a secured listener throws', async () => {
      const { client: plain, conn } = await pair();
      const broke = new Error('listener broke');
      conn.once('secured', () => {
        throw broke;
      });
      const failed = new Promise<string>((resolve) => conn.once('tls-failed', resolve));
      const closed = closeOf(conn);
      const serverSide = conn.authenticateAsServer(security).then(
        () => expect.fail('the upgrade resolved'),
        (e: unknown) => e,
      );
      const client = tls.connect({ socket: plain, ca: certs.ca.cert, servername: 'localhost' });
      client.on('error', () => undefined);
      sockets.push(client);
      expect(await serverSide).to.equal(broke);
      expect([await failed, await closed]).to.deep.equal(['protocol', 'tls-failed']);
      expect(log.find('warn', 'tls handshake failed').map((r) => r.meta)).to.deep.equal([
        { cid: conn.id, remote: `127.0.0.1:${plain.localPort}`, reason: 'protocol', code: undefined, error: 'listener broke' },
      ]);
    });
  });
});
