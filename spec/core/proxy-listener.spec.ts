import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import type { Connection } from '../../lib/core/connection.js';
import { formatProxyV1, formatProxyV2, PROXY_V2_SIGNATURE } from '../../lib/core/proxy-protocol.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer, type ConnectionHandler, type TcpServerOptions } from '../../lib/core/tcp-server.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';
import { RecordingLogger } from '../support/recording-logger.js';

/** Greets with what the connection believes about its peer, echoes lines, closes on QUIT. */
class PeerEcho implements ConnectionHandler {
  handle(conn: Connection): void {
    conn.write(`hello ${conn.remoteAddress}:${conn.remotePort} to ${conn.localAddress}:${conn.localPort} via ${conn.proxy?.address ?? 'direct'} tls=${conn.isSecure}\r\n`);
    let buf = '';
    conn.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line === 'QUIT') void conn.close();
        else conn.write(`echo ${line}\r\n`);
      }
    });
  }
}

/** What a raw client saw: every byte, and whether the server closed with FIN or a reset. */
interface Outcome {
  readonly data: string;
  readonly how: 'end' | 'reset';
}

/** Connects (optionally from `localAddress`), writes `parts` in order (a function part awaits before the next), and reads until the server closes. */
async function exchange(port: number, parts: ReadonlyArray<Buffer | string | (() => Promise<void>)>, localAddress?: string): Promise<Outcome> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  let data = '';
  let how: Outcome['how'] = 'end';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('error', () => (how = 'reset'));
  socket.on('end', () => socket.end());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  for (const p of parts) {
    if (typeof p === 'function') await p();
    else if (!socket.destroyed) socket.write(p);
  }
  await closed;
  return { data, how };
}

const client = { address: '192.0.2.7', port: 40001 };
const dialled = { address: '198.51.100.1', port: 25 };

describe('core: PROXY protocol on a listener', () => {
  let certs: DevCertificates;
  const servers: TcpServer[] = [];
  let log: RecordingLogger;
  /** Every line so far, flat as a log transport sees it: `{ level, message, ...meta }`. */
  const records = (): Array<Record<string, unknown>> => log.records.map((r) => ({ ...r.meta, level: r.level, message: r.message }));

  before(async () => {
    certs = await testCertificates();
  });

  beforeEach(() => {
    log = new RecordingLogger();
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(opts: Partial<TcpServerOptions> & { implicit?: boolean } = {}): Promise<number> {
    const security = new ServerSecurity({ certificate: certs.server });
    const server = new TcpServer(
      new PeerEcho(),
      { name: 'pp', port: 0, security: opts.implicit ? security : undefined, proxyProtocol: { trusted: ['127.0.0.1/32'], headerTimeoutMs: 300 }, ...opts },
      log,
    );
    servers.push(server);
    return (await server.start()).port;
  }

  /** A well-formed v1 session: proves the listener still serves. */
  async function stillServes(port: number): Promise<void> {
    const out = await exchange(port, [formatProxyV1(client, dialled), 'QUIT\r\n']);
    expect(out.data).to.equal('hello 192.0.2.7:40001 to 198.51.100.1:25 via 127.0.0.1 tls=false\r\n');
  }

  const warnings = (): Array<Record<string, unknown>> => records().filter((r) => r.level === 'warn');

  it('v1: the client address from the header is the connection\'s, in logs too, and bytes in the same segment reach the protocol', async () => {
    const port = await start();
    const out = await exchange(port, [Buffer.concat([formatProxyV1(client, dialled), Buffer.from('ping\r\nQUIT\r\n')])]);
    expect(out.data).to.equal('hello 192.0.2.7:40001 to 198.51.100.1:25 via 127.0.0.1 tls=false\r\necho ping\r\n');
    const accepted = records().find((r) => r.message === 'connection accepted');
    expect(accepted).to.include({ remote: '192.0.2.7:40001' });
    expect(String(accepted?.proxy)).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it('v2: PROXY over IPv6 and IPv4, header and first line written separately', async () => {
    const port = await start();
    const six = await exchange(port, [formatProxyV2({ address: '2001:db8::7', port: 5 }, { address: '2001:db8::1', port: 587 }), 'QUIT\r\n']);
    expect(six.data).to.equal('hello 2001:db8::7:5 to 2001:db8::1:587 via 127.0.0.1 tls=false\r\n');
    const four = await exchange(port, [formatProxyV2(client, dialled), 'x\r\n', 'QUIT\r\n']);
    expect(four.data).to.equal('hello 192.0.2.7:40001 to 198.51.100.1:25 via 127.0.0.1 tls=false\r\necho x\r\n');
  });

  it('v2 LOCAL (health checks) and v1 UNKNOWN keep the real peer', async () => {
    const port = await start();
    for (const header of [formatProxyV2(), Buffer.from('PROXY UNKNOWN\r\n')]) {
      const out = await exchange(port, [header, 'QUIT\r\n']);
      expect(out.data).to.match(/^hello 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+ via direct tls=false\r\n$/);
    }
  });

  it('implicit TLS: the header is read before the handshake, even when the ClientHello follows in the same flight', async () => {
    const port = await start({ implicit: true });
    const raw = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => raw.once('connect', resolve));
    raw.cork(); // header and ClientHello leave together
    raw.write(formatProxyV2(client, dialled));
    const secure = tls.connect({ socket: raw, ca: certs.ca.cert, servername: 'localhost' });
    process.nextTick(() => raw.uncork());
    const line = await new Promise<string>((resolve, reject) => {
      secure.once('data', (d: Buffer) => resolve(d.toString('latin1')));
      secure.once('error', reject);
    });
    expect(secure.authorized).to.equal(true);
    expect(line).to.equal('hello 192.0.2.7:40001 to 198.51.100.1:25 via 127.0.0.1 tls=true\r\n');
    await new Promise<void>((resolve) => {
      secure.once('close', () => resolve());
      secure.end('QUIT\r\n');
    });
  });

  it('closes a peer outside the trusted blocks before any greeting (warn), and serves a trusted one', async () => {
    const port = await start({ proxyProtocol: { trusted: ['127.0.0.5/32'] } });
    const refused = await exchange(port, [formatProxyV1(client, dialled), 'QUIT\r\n']);
    expect(refused.data).to.equal('');
    expect(warnings().map((w) => w.message)).to.deep.equal(['connection refused: peer is not a trusted proxy']);
    expect(String(warnings()[0]?.peer)).to.match(/^127\.0\.0\.1:\d+$/);
    const served = await exchange(port, [formatProxyV1(client, dialled), 'QUIT\r\n'], '127.0.0.5');
    expect(served.data).to.equal('hello 192.0.2.7:40001 to 198.51.100.1:25 via 127.0.0.5 tls=false\r\n');
  });

  const bad: Array<[string, ReadonlyArray<Buffer | string | (() => Promise<void>)>, string]> = [
    ['no header (a client talking SMTP directly)', ['EHLO client.example\r\n'], 'malformed'],
    ['a TLS ClientHello without a header', [Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])], 'malformed'],
    ['a v1 line with a bad address', ['PROXY TCP4 192.0.2.999 198.51.100.1 1 2\r\nQUIT\r\n'], 'malformed'],
    ['a v1 line without CRLF past 107 bytes', ['PROXY TCP4 ' + '1'.repeat(200)], 'too-long'],
    ['a v2 header announcing 65535 bytes', [Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])])], 'too-long'],
    ['a v2 header over UDP', [Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x12, 0, 12]), Buffer.alloc(12)])], 'unsupported'],
    ['a header cut short by the peer', [formatProxyV2(client, dialled).subarray(0, 20), async () => undefined], 'peer-closed'],
    ['a header that stalls past the deadline', ['PROXY TCP4 192.0.2.7 '], 'timeout'],
  ];
  for (const [why, parts, reason] of bad) {
    it(`closes cleanly without a greeting on ${why} (${reason}) and keeps serving`, async () => {
      const port = await start();
      let out: Outcome;
      if (reason === 'peer-closed') {
        // Half-close after the partial header: the server sees end-of-stream mid-header.
        const s = net.connect({ host: '127.0.0.1', port });
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString('latin1')));
        await new Promise<void>((resolve) => s.once('connect', resolve));
        s.end(parts[0] as Buffer);
        await new Promise<void>((resolve) => s.once('close', () => resolve()));
        out = { data, how: 'end' };
      } else {
        out = await exchange(port, parts);
      }
      expect(out).to.deep.equal({ data: '', how: 'end' });
      const w = warnings();
      expect(w.map((r) => [r.message, r.reason])).to.deep.equal([['connection refused: bad PROXY header', reason]]);
      await stillServes(port);
      expect(records().some((r) => r.level === 'error')).to.equal(false);
    });
  }

  it('close() drops connections still sending their header', async () => {
    const port = await start({ proxyProtocol: { trusted: ['127.0.0.1/32'], headerTimeoutMs: 60_000 } });
    const s = net.connect({ host: '127.0.0.1', port });
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.once('connect', resolve));
    s.write('PROXY TCP4 ');
    await new Promise<void>((resolve) => setImmediate(resolve));
    await servers.splice(0)[0]!.close();
    await closed;
  });

  it('refuses to start with no trusted proxy', () => {
    expect(() => new TcpServer(new PeerEcho(), { proxyProtocol: { trusted: [] } }, log)).to.throw(/at least one trusted proxy/);
  });
});
