/**
 * TcpServer through its public API on real loopback sockets and a real Unix socket (issue 16, mutation testing):
 * start/address/close edges, the handler's optional parts (prepare, refuse, shutdown, beforeHandshake), the caps and
 * their warn lines (folded per address and reason per second, `Date.now` pinned), the refusal handshakes of an
 * implicit-TLS listener and their bound, what a session learns (ListenerInfo, ids, idle deadline, events), and the
 * caps applied to the client address of a PROXY header. Asserts events, bytes and warn/error lines, not info lines.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { CloseReason, Connection } from '../../lib/core/connection.js';
import { ConnectionLimits } from '../../lib/core/connection-limits.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { formatProxyV1 } from '../../lib/core/proxy-protocol.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { MAX_REFUSAL_HANDSHAKES, TcpServer, type ConnectionHandler, type ListenerInfo, type TcpServerOptions } from '../../lib/core/tcp-server.js';
import { TlsHandshakeError } from '../../lib/core/tls-errors.js';
import { testCertificates } from '../support/certs.js';
import { heldTimers } from '../support/held-timers.js';
import { RecordingLogger } from '../support/recording-logger.js';

/** Greets `hi` (unless a test sets `onHandle`) and keeps what it was given; each optional part is set per test. */
class Scripted implements ConnectionHandler {
  readonly conns: Connection[] = [];
  readonly infos: ListenerInfo[] = [];
  onHandle?: (c: Connection) => void | Promise<void>;
  refuse?: (c: Connection, info: ListenerInfo) => void;
  shutdown?: (c: Connection) => void | Promise<void>;
  beforeHandshake?: (c: Connection, info: ListenerInfo) => boolean;
  prepare?: () => Promise<void>;
  handle(c: Connection, info: ListenerInfo): void | Promise<void> {
    this.conns.push(c);
    this.infos.push(info);
    if (this.onHandle) return this.onHandle(c);
    c.write('hi\r\n');
  }
}

/** A raw client: every byte it got, and how the server closed (FIN or reset). */
interface Peer {
  readonly socket: net.Socket;
  readonly data: () => string;
  /** Resolves once `text` has arrived (rejects if the connection closes first). */
  readonly saw: (text: string) => Promise<void>;
  readonly closed: Promise<'end' | 'reset'>;
}

function peer(socket: net.Socket): Peer {
  let data = '';
  let how: 'end' | 'reset' = 'end';
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    data += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  socket.on('error', () => (how = 'reset'));
  const closed = new Promise<'end' | 'reset'>((resolve) =>
    socket.once('close', () => {
      for (const w of waiters.splice(0)) w();
      resolve(how);
    }),
  );
  const saw = async (text: string): Promise<void> => {
    while (!data.includes(text)) {
      if (socket.destroyed) throw new Error(`closed before ${JSON.stringify(text)}; got ${JSON.stringify(data)}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { socket, data: () => data, saw, closed };
}

describe('core: TcpServer edges (tcp-server mutants)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let log: RecordingLogger;
  let h: Scripted;
  const servers: TcpServer[] = [];
  const sockets: net.Socket[] = [];
  const realNow = Date.now;

  before(async () => {
    certs = await testCertificates();
  });
  beforeEach(() => {
    log = new RecordingLogger();
    h = new Scripted();
  });
  afterEach(async () => {
    Date.now = realNow;
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  function server(opts: Partial<TcpServerOptions> = {}, handler: ConnectionHandler = h, limits?: ConnectionLimits): TcpServer {
    const s = new TcpServer(handler, { port: 0, ...opts }, log, limits);
    servers.push(s);
    return s;
  }

  async function connect(port: number, localAddress?: string): Promise<Peer> {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    sockets.push(socket);
    const p = peer(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return p;
  }

  /** Resolves with the reason of the next connection `s` closes. */
  const nextClosed = (s: TcpServer): Promise<CloseReason> => new Promise((resolve) => s.once('closed', (_c, reason) => resolve(reason)));
  const warns = (message: string): Array<Record<string, unknown>> => log.find('warn', message).map((r) => ({ ...r.meta }));

  describe('start, address and close', () => {
    it('answers start() again with the same address, and names the listener when it is not started', async () => {
      const s = server({ name: 'edge' });
      expect(() => s.address()).to.throw('listener edge is not started');
      expect(() => new TcpServer(h, {}, log).address()).to.throw('listener tcp is not started');
      const a = await s.start();
      expect(await s.start()).to.deep.equal(a);
      expect(log.find('info', 'listening').map((r) => r.meta)).to.deep.equal([
        { listener: 'edge', host: '127.0.0.1', port: a.port, tls: 'none', proxyProtocol: undefined },
      ]);
      const taken = server({ port: a.port });
      const err = await taken.start().then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).to.equal('EADDRINUSE');
      await (await connect(a.port)).saw('hi\r\n');
    });

    it('awaits the handler\'s prepare() before it listens', async () => {
      let release!: () => void;
      h.prepare = () => new Promise<void>((resolve) => (release = resolve));
      const s = server({ name: 'slow' });
      const started = s.start();
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(() => s.address()).to.throw('listener slow is not started');
      release();
      await started;
      await (await connect(s.address().port)).saw('hi\r\n');
    });

    it('listens on a Unix socket with the mode asked for, replacing a stale socket file, not a live socket or another file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'postern-unix-'));
      try {
        const path = join(dir, 'lmtp.sock');
        // A stale socket: its listener was killed, so nobody unlinked it.
        const child = "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))";
        spawnSync(process.execPath, ['-e', child, path]);
        expect(statSync(path).isSocket()).to.equal(true);
        const s = server({ path, pathMode: 0o600 });
        expect(await s.start()).to.deep.equal({ address: path, family: 'unix', port: 0 });
        expect(statSync(path).mode & 0o777).to.equal(0o600);
        const c = peer(net.connect({ path }));
        sockets.push(c.socket);
        await c.saw('hi\r\n');
        expect([h.conns[0]!.remoteAddress, h.infos[0]!.port]).to.deep.equal(['', 0]);
        const probeClosed = nextClosed(s); // the liveness probe's connection, which must not be left open
        const twice = await server({ path }).start().then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e.code,
        );
        expect(twice, 'a live socket').to.equal('EADDRINUSE');
        await probeClosed;
        const again = peer(net.connect({ path }));
        sockets.push(again.socket);
        await again.saw('hi\r\n');
        const file = join(dir, 'plain');
        writeFileSync(file, 'keep me');
        const onFile = await server({ path: file }).start().then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e.code,
        );
        expect([onFile, readFileSync(file, 'utf8')]).to.deep.equal(['EADDRINUSE', 'keep me']);
      } finally {
        await Promise.all(servers.splice(0).map((s) => s.close()));
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('close() is one promise, resolves at once when never started, and nothing is accepted after it', async () => {
      const idle = server();
      expect(idle.close()).to.equal(idle.close());
      await idle.close();
      const s = server();
      const { port } = await s.start();
      const p = s.close();
      expect(s.close()).to.equal(p);
      await p;
      expect(log.find('info', 'closed')).to.have.length(1);
      const refused = await new Promise<string | undefined>((resolve) => {
        const c = net.connect({ host: '127.0.0.1', port });
        c.once('connect', () => resolve(undefined));
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
      });
      expect(refused).to.equal('ECONNREFUSED');
    });

    it('without shutdown(), closes live sessions gracefully (FIN, reason server-shutdown)', async () => {
      const s = server();
      const c = await connect((await s.start()).port);
      await c.saw('hi\r\n');
      const reason = nextClosed(s);
      await s.close();
      expect([await reason, await c.closed, c.data()]).to.deep.equal(['server-shutdown', 'end', 'hi\r\n']);
    });

    it('with shutdown(), lets it say goodbye within the default grace period', async () => {
      h.shutdown = async (conn) => {
        await new Promise<void>((resolve) => setTimeout(resolve, 20));
        conn.write('bye\r\n');
        await conn.close();
      };
      const s = server();
      const c = await connect((await s.start()).port);
      await c.saw('hi\r\n');
      await s.close();
      expect([await c.closed, c.data()]).to.deep.equal(['end', 'hi\r\nbye\r\n']);
    });

    it('destroys a session whose shutdown() throws (error line with its cid) and one still busy after closeTimeoutMs', async () => {
      h.shutdown = (conn) => {
        if (conn === h.conns[0]) throw new Error('boom');
        return new Promise<void>(() => undefined);
      };
      const s = server({ closeTimeoutMs: 50 });
      const { port } = await s.start();
      const a = await connect(port);
      await a.saw('hi\r\n');
      const b = await connect(port);
      await b.saw('hi\r\n');
      const reasons: CloseReason[] = [];
      s.on('closed', (_c, reason) => reasons.push(reason));
      await s.close();
      expect(s.connections.size).to.equal(0);
      expect(reasons).to.deep.equal(['server-shutdown', 'server-shutdown']);
      expect(log.find('error', 'shutdown hook failed').map((r) => [r.meta.cid, r.meta.error])).to.deep.equal([[h.conns[0]!.id, 'boom']]);
      await Promise.all([a.closed, b.closed]);
    });
  });

  describe('caps', () => {
    it('has no cap where maxConnections and maxConnectionsPerAddress are 0', async () => {
      const s = server({ maxConnections: 0, maxConnectionsPerAddress: 0 });
      const { port } = await s.start();
      for (let i = 0; i < 3; i++) await (await connect(port)).saw('hi\r\n');
      expect(s.connections.size).to.equal(3);
    });

    it('refuses past maxConnections (listener-full) with the handler\'s line, the refused event and a warn line', async () => {
      h.refuse = (conn) => conn.write('busy\r\n');
      const s = server({ maxConnections: 1 });
      const refused: string[] = [];
      s.on('refused', (reason) => refused.push(reason));
      const { port } = await s.start();
      await (await connect(port)).saw('hi\r\n');
      const over = await connect(port);
      expect([await over.closed, over.data()]).to.deep.equal(['end', 'busy\r\n']);
      expect(refused).to.deep.equal(['listener-full']);
      const [w] = warns('connection refused');
      expect(w).to.deep.include({ listener: 'tcp', reason: 'listener-full', address: '127.0.0.1', max: 1, alsoRefused: 0 });
    });

    it('counts each address on the listener: refused past maxConnectionsPerAddress, let in again as its sessions close', async () => {
      h.refuse = (conn) => conn.write('busy\r\n');
      const s = server({ maxConnectionsPerAddress: 2 });
      const { port } = await s.start();
      const a = await connect(port);
      await a.saw('hi\r\n');
      const b = await connect(port);
      await b.saw('hi\r\n');
      const third = await connect(port);
      await third.closed;
      expect(third.data()).to.equal('busy\r\n');
      expect(warns('connection refused').map((w) => [w.reason, w.max])).to.deep.equal([['address-limit', 2]]);
      await (await connect(port, '127.0.0.2')).saw('hi\r\n'); // another address gets in at once
      const closed = nextClosed(s);
      a.socket.end();
      await closed;
      await (await connect(port)).saw('hi\r\n'); // a's slot is free again, and only that one
      const fourth = await connect(port);
      await fourth.closed;
      expect(fourth.data()).to.equal('busy\r\n');
    });

    it('takes a slot of the process-wide limits per session and gives it back when the session closes', async () => {
      h.refuse = (conn) => conn.write('busy\r\n');
      const s = server({}, h, new ConnectionLimits({ maxConnectionsPerAddressTotal: 1 }));
      const { port } = await s.start();
      const a = await connect(port);
      await a.saw('hi\r\n');
      const over = await connect(port);
      await over.closed;
      expect(over.data()).to.equal('busy\r\n');
      expect(warns('connection refused').map((w) => [w.reason, w.max])).to.deep.equal([['address-total-limit', 1]]);
      const closed = nextClosed(s);
      a.socket.end();
      await closed;
      await (await connect(port)).saw('hi\r\n');
    });

    it('folds the warn lines of one address and reason into one a second, with the count of the others', async () => {
      h.refuse = (conn) => conn.write('busy\r\n');
      let now = 1_000_000_000_000;
      Date.now = () => now;
      const s = server({ maxConnections: 1 });
      const { port } = await s.start();
      await (await connect(port)).saw('hi\r\n');
      const refuseOne = async (from?: string): Promise<void> => {
        const c = await connect(port, from);
        await c.closed;
        expect(c.data()).to.equal('busy\r\n');
      };
      await refuseOne();
      await refuseOne();
      now += 999;
      await refuseOne();
      await refuseOne('127.0.0.2');
      now += 1;
      await refuseOne();
      expect(warns('connection refused').map((w) => [w.address, w.alsoRefused])).to.deep.equal([
        ['127.0.0.1', 0],
        ['127.0.0.2', 0],
        ['127.0.0.1', 2],
      ]);
    });
  });

  describe('implicit TLS', () => {
    const trust = (): tls.ConnectionOptions => ({ ca: certs.ca.cert, servername: 'localhost' });

    /** A TLS client: the first line, or how it ended without one. */
    function tlsClient(port: number): Promise<{ secured: boolean; data: string }> {
      return new Promise((resolve) => {
        let secured = false;
        let data = '';
        const c = tls.connect({ host: '127.0.0.1', port, ...trust() });
        c.on('secureConnect', () => (secured = true));
        c.on('data', (d: Buffer) => (data += d.toString('latin1')));
        c.on('error', () => undefined);
        c.once('close', () => resolve({ secured, data }));
        c.on('end', () => c.end());
      });
    }

    it('drops a refused client without any TLS record when the handler has no refuse()', async () => {
      const s = server({ security: new ServerSecurity({ certificate: certs.server }), maxConnections: 1 });
      const { port } = await s.start();
      const holder = tls.connect({ host: '127.0.0.1', port, ...trust() });
      sockets.push(holder);
      await new Promise<void>((resolve) => holder.once('data', () => resolve()));
      expect(await tlsClient(port)).to.deep.equal({ secured: false, data: '' });
    });

    it(`completes at most ${MAX_REFUSAL_HANDSHAKES} refusal handshakes at a time, and more once those are over`, async () => {
      h.refuse = (conn) => conn.write('busy\r\n');
      const s = server({ security: new ServerSecurity({ certificate: certs.server }), maxConnections: 1 });
      const { port } = await s.start();
      const holder = tls.connect({ host: '127.0.0.1', port, ...trust() });
      sockets.push(holder);
      await new Promise<void>((resolve) => holder.once('data', () => resolve()));
      expect(await tlsClient(port)).to.deep.equal({ secured: true, data: 'busy\r\n' });
      // Refused clients that never send a ClientHello hold their refusal handshakes open.
      let refusals = 1;
      s.on('refused', () => refusals++);
      const stalled: Peer[] = [];
      for (let i = 0; i < MAX_REFUSAL_HANDSHAKES; i++) stalled.push(await connect(port));
      for (let i = 0; refusals < 1 + MAX_REFUSAL_HANDSHAKES; i++) {
        if (i > 2000) throw new Error(`only ${refusals} refusals`);
        await new Promise<void>((resolve) => setTimeout(resolve, 2));
      }
      const over = await tlsClient(port);
      expect(over).to.deep.equal({ secured: false, data: '' });
      for (const c of stalled) c.socket.destroy();
      // Their handshakes fail as they go; then refusals get their goodbye again.
      let again = { secured: false, data: '' };
      for (let i = 0; i < 100 && !again.secured; i++) again = await tlsClient(port);
      expect(again).to.deep.equal({ secured: true, data: 'busy\r\n' });
    });

    it('times a silent session out at idleTimeoutMs once its handshake is done (the TLS socket carries the idle timer)', async () => {
      const s = server({ security: new ServerSecurity({ certificate: certs.server }), idleTimeoutMs: 40 });
      const { port } = await s.start();
      const reason = nextClosed(s);
      expect(await tlsClient(port)).to.deep.equal({ secured: true, data: 'hi\r\n' });
      expect(await reason).to.equal('idle-timeout');
    });

    it('drops the client before the handshake when beforeHandshake() says false (tls-failed), and goes on when it says nothing else', async () => {
      const seen: boolean[] = [];
      let verdict: boolean | undefined = false;
      h.beforeHandshake = (_c, info) => {
        seen.push(info.implicitTls);
        return verdict as boolean;
      };
      const s = server({ security: new ServerSecurity({ certificate: certs.server }) });
      const { port } = await s.start();
      const reason = nextClosed(s);
      expect(await tlsClient(port)).to.deep.equal({ secured: false, data: '' });
      expect(await reason).to.equal('tls-failed');
      expect(log.find('info', 'tls handshake aborted by fault injection').map((r) => r.meta.cid)).to.deep.equal(log.find('info', 'connection closed').map((r) => r.meta.cid));
      verdict = undefined;
      const c = tls.connect({ host: '127.0.0.1', port, ...trust() });
      sockets.push(c);
      await new Promise<void>((resolve) => c.once('data', () => resolve()));
      expect(seen).to.deep.equal([true, true]);
      expect(h.conns).to.have.length(1);
    });
  });

  describe('sessions', () => {
    it('gives every session of a listener one frozen ListenerInfo with its name, port and deadlines', async () => {
      const s = server({ name: 'info', preAuthTimeoutMs: 1234, commandTimeoutMs: 567 });
      const { port } = await s.start();
      await (await connect(port)).saw('hi\r\n');
      await (await connect(port)).saw('hi\r\n');
      expect(h.infos[0]).to.equal(h.infos[1]);
      expect(Object.isFrozen(h.infos[0])).to.equal(true);
      expect(h.infos[0]).to.deep.equal({ name: 'info', implicitTls: false, port, preAuthTimeoutMs: 1234, commandTimeoutMs: 567 });
    });

    it('prefixes connection ids, announces accepted connections, and ends a silent one at idleTimeoutMs', async () => {
      const s = server({ connectionIdPrefix: 'w7-', idleTimeoutMs: 30 });
      const accepted: Connection[] = [];
      s.on('accepted', (c) => accepted.push(c));
      const { port } = await s.start();
      const reason = nextClosed(s);
      const c = await connect(port);
      await c.saw('hi\r\n');
      expect(accepted).to.deep.equal(h.conns);
      expect(h.conns[0]!.id).to.match(/^w7-c[0-9a-z]+$/);
      expect([await reason, await c.closed]).to.deep.equal(['idle-timeout', 'end']);
    });

    it('logs a handler that throws as a bug and destroys its connection (error); a TlsHandshakeError is not a bug', async () => {
      h.onHandle = (c) => {
        if (h.conns.length === 1) throw new Error('kaput');
        c.write('hi\r\n');
        return Promise.reject(new TlsHandshakeError('protocol', 'reported elsewhere'));
      };
      const s = server();
      const { port } = await s.start();
      const reason = nextClosed(s);
      const bad = await connect(port);
      expect(await reason).to.equal('error');
      await bad.closed;
      expect(bad.data()).to.equal('');
      const quiet = await connect(port);
      await quiet.saw('hi\r\n');
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(log.find('error', 'connection handler failed').map((r) => r.meta.error)).to.deep.equal(['kaput']);
      expect(quiet.socket.destroyed).to.equal(false);
    });
  });

  describe('PROXY protocol', () => {
    const dialled = { address: '198.51.100.1', port: 25 };

    it('caps the client address the header names, and refuses peers past maxConnections pending headers', async () => {
      h.refuse = (conn) => conn.write('busy\r\n');
      const s = server({ maxConnections: 2, maxConnectionsPerAddress: 1, proxyProtocol: { trusted: ['127.0.0.1'] } });
      const { port } = await s.start();
      expect(log.find('info', 'listening')[0]!.meta.proxyProtocol).to.equal('127.0.0.1');
      const first = await connect(port);
      first.socket.write(formatProxyV1({ address: '192.0.2.7', port: 1 }, dialled));
      await first.saw('hi\r\n');
      const same = await connect(port);
      same.socket.write(formatProxyV1({ address: '192.0.2.7', port: 2 }, dialled));
      await same.closed;
      expect(same.data()).to.equal('busy\r\n');
      expect(warns('connection refused').map((w) => [w.reason, w.address])).to.deep.equal([['address-limit', '192.0.2.7']]);
      // Two peers still sending their headers fill the pending bound (maxConnections); a third is closed at once.
      const slow = [await connect(port), await connect(port)];
      for (const c of slow) c.socket.write('PROXY TCP4 ');
      const third = await connect(port);
      const thirdPort = third.socket.localPort;
      expect([await third.closed, third.data()]).to.deep.equal(['end', '']);
      expect(warns('connection refused: too many pending PROXY headers').map((w) => [w.peer, w.max])).to.deep.equal([
        [`127.0.0.1:${thirdPort}`, 2],
      ]);
      slow[0]!.socket.write(formatProxyV1({ address: '192.0.2.8', port: 3 }, dialled).subarray('PROXY TCP4 '.length));
      await slow[0]!.saw('hi\r\n');
      expect(h.conns.map((c) => c.remoteAddress)).to.deep.equal(['192.0.2.7', '192.0.2.8']);
    });

    it('forgets peers whose header failed, so they do not fill the pending bound', async () => {
      const s = server({ maxConnections: 2, proxyProtocol: { trusted: ['127.0.0.1'] } });
      const { port } = await s.start();
      for (let i = 0; i < 3; i++) {
        const bad = await connect(port);
        bad.socket.write('EHLO x\r\n');
        await bad.closed;
      }
      const good = await connect(port);
      good.socket.write(formatProxyV1({ address: '192.0.2.9', port: 4 }, dialled));
      await good.saw('hi\r\n');
      expect(warns('connection refused: bad PROXY header')).to.have.length(3);
    });

    it('ends a bad header with a FIN after draining what the peer still sends, and applies headerTimeoutMs', async () => {
      const s = server({ proxyProtocol: { trusted: ['127.0.0.1'], headerTimeoutMs: 30 } });
      const { port } = await s.start();
      const bad = await connect(port);
      bad.socket.on('end', () => bad.socket.end());
      // More than one read: without draining, the unread rest would turn the close into a reset.
      bad.socket.write(Buffer.concat([Buffer.from('EHLO x\r\n'), Buffer.alloc(512 * 1024, 0x61)]));
      expect([await bad.closed, bad.data()]).to.deep.equal(['end', '']);
      const slow = await connect(port);
      slow.socket.write('PROXY TCP4 ');
      await slow.closed;
      expect(warns('connection refused: bad PROXY header').map((w) => [w.reason, w.error])).to.deep.equal([
        ['malformed', 'no PROXY protocol signature'],
        ['timeout', 'no complete PROXY header within 30 ms'],
      ]);
    });
  });

  describe('listener facts and accept errors', () => {
    it('tells an implicit-TLS listener by its security, and says so and the trusted proxies in the listening line', async () => {
      expect(server().implicitTls).to.equal(false);
      const s = server({ name: 'imaps', security: new ServerSecurity({ certificate: certs.server }), proxyProtocol: { trusted: ['127.0.0.1', '10.0.0.0/8'] } });
      expect(s.implicitTls).to.equal(true);
      const a = await s.start();
      expect(log.find('info', 'listening').map((r) => r.meta)).to.deep.equal([
        { listener: 'imaps', host: '127.0.0.1', port: a.port, tls: 'implicit', proxyProtocol: '127.0.0.1,10.0.0.0/8' },
      ]);
    });

    it('logs each session\'s one info line at its close: reason, TLS protocol and cipher, duration', async () => {
      const s = server({ name: 'smtp' });
      const { port } = await s.start();
      const before = Date.now();
      const c = await connect(port);
      await c.saw('hi\r\n');
      const reason = nextClosed(s);
      c.socket.end();
      expect(await reason).to.equal('peer-closed');
      const [line, ...more] = log.find('info', 'connection closed');
      expect(more).to.deep.equal([]);
      const { ms, ...rest } = line!.meta;
      expect(rest).to.deep.equal({ listener: 'smtp', cid: h.conns[0]!.id, remote: `127.0.0.1:${c.socket.localPort}`, proto: 'smtp', reason: 'peer-closed', tls: undefined, cipher: undefined });
      expect(ms).to.be.a('number').and.to.be.within(0, Date.now() - before); // a duration within the test's own
      expect(log.find('debug', 'connection accepted').map((r) => r.meta.cid)).to.deep.equal([h.conns[0]!.id]);
    });

    it('names the TLS protocol and cipher in the close line of an implicit-TLS session', async () => {
      const s = server({ security: new ServerSecurity({ certificate: certs.server }) });
      const { port } = await s.start();
      const reason = nextClosed(s);
      const c = tls.connect({ host: '127.0.0.1', port, ca: certs.ca.cert, servername: 'localhost' });
      sockets.push(c);
      c.on('error', () => undefined);
      await new Promise<void>((resolve) => c.once('data', () => resolve()));
      c.end();
      await reason;
      const [line] = log.find('info', 'connection closed');
      expect(line!.meta.tls).to.equal('TLSv1.3');
      expect(line!.meta.cipher).to.match(/^TLS_/);
    });

    /**
     * Accept errors, as the listening net.Server emits them. On Linux, Node 20's libuv does not report EMFILE at
     * accept (with its reserve descriptor it accepts and closes the connection; without one it retries, checked with
     * strace), so the errors are emitted on the listener's own server: the events a platform that reports them sends.
     */
    function acceptError(s: TcpServer, code: string): void {
      (s as unknown as { server: net.Server }).server.emit('error', Object.assign(new Error(`accept ${code}`), { code }));
    }

    it('warns of running out of descriptors on accept with a doubling pause up to 30 s, counting every failure', async () => {
      let now = 2_000_000_000_000;
      Date.now = () => now;
      const s = server({ name: 'mx' });
      await s.start();
      const c = await connect(s.address().port);
      await c.saw('hi\r\n');
      // [ms since the previous failure, warned?]
      const steps: Array<[number, boolean]> = [
        [0, true], // first: nextWarnMs 0, then 100
        [99, false],
        [1, true], // 100: then 200
        [200, true], // then 400
        [400, true],
        [800, true],
        [1_600, true],
        [3_200, true],
        [6_400, true],
        [12_800, true],
        [25_600, true], // then min(51 200, 30 000)
        [29_999, false],
        [1, true], // 30 000: stays 30 000
        [30_000, true],
      ];
      const expected: Array<Record<string, unknown>> = [];
      let pause = 0;
      steps.forEach(([gap, warned], i) => {
        now += gap;
        acceptError(s, 'EMFILE');
        if (warned) {
          expected.push({ listener: 'mx', code: 'EMFILE', failures: i + 1, live: 1, nextWarnMs: pause });
          pause = pause === 0 ? 100 : Math.min(pause * 2, 30_000);
        }
      });
      expect(warns('accept failed: out of file descriptors')).to.deep.equal(expected);
      expect(s.acceptFailures).to.equal(steps.length);
      expect(log.find('error', 'listener error')).to.deep.equal([]);
    });

    it('takes ENFILE like EMFILE, and logs any other listener error as an error without counting it', async () => {
      Date.now = () => 3_000_000_000_000;
      const s = server();
      await s.start();
      acceptError(s, 'ENFILE');
      acceptError(s, 'ECONNABORTED');
      expect(warns('accept failed: out of file descriptors').map((w) => [w.code, w.failures, w.live, w.nextWarnMs])).to.deep.equal([['ENFILE', 1, 0, 0]]);
      expect(log.find('error', 'listener error').map((r) => r.meta)).to.deep.equal([{ listener: 'tcp', error: 'accept ECONNABORTED', code: 'ECONNABORTED' }]);
      expect(s.acceptFailures).to.equal(1);
      await (await connect(s.address().port)).saw('hi\r\n');
    });
  });

  describe('timers', () => {
    it('after a bad PROXY header, destroys a peer that keeps its side open at the unref\'d 2 s timer, and clears it at the close', async () => {
      const s = server({ proxyProtocol: { trusted: ['127.0.0.1'] } });
      const { port } = await s.start();
      const timers = heldTimers(2_000);
      try {
        const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        sockets.push(socket);
        peer(socket);
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        let fin = false;
        socket.once('end', () => (fin = true));
        socket.write('EHLO x\r\n');
        for (let i = 0; !fin; i++) {
          if (i > 2500) throw new Error('no FIN after the bad header');
          await new Promise<void>((resolve) => setTimeout(resolve, 2));
        }
        expect(timers.armed.map((t) => [t.ms, t.handle.hasRef()])).to.deep.equal([[2_000, false]]);
        expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(false);
        timers.armed[0]!.fire();
        for (let i = 0; !timers.cleared.has(timers.armed[0]!.handle); i++) {
          if (i > 2500) throw new Error('the timer was not cleared');
          await new Promise<void>((resolve) => setTimeout(resolve, 2));
        }
      } finally {
        timers.restore();
      }
    });

    it('close() clears its grace timer and its bound on the last closes once the sessions have finished', async () => {
      const s = server({ closeTimeoutMs: 4_321 });
      const c = await connect((await s.start()).port);
      await c.saw('hi\r\n');
      c.socket.on('end', () => c.socket.end());
      const timers = heldTimers(4_321, 2_000);
      try {
        await s.close();
        // The grace timer, the connection's own close timer, and the bound on the last closes: all cleared.
        expect(timers.armed.map((t) => t.ms).sort()).to.deep.equal([2_000, 2_000, 4_321]);
        expect(timers.armed.filter((t) => !timers.cleared.has(t.handle)).map((t) => t.ms)).to.deep.equal([]);
      } finally {
        timers.restore();
      }
    });
  });
});
