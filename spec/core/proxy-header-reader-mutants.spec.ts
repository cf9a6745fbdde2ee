/**
 * readProxyHeader on real loopback sockets (issue 16, mutation testing): a header in several TCP segments (each
 * written only after the server side has read the previous one), the bytes after it reaching the next reader exactly
 * once, each refusal's reason and text, and a finished read leaving no listener and no timer behind.
 */
import { expect } from 'chai';
import net from 'node:net';
import { ProxyHeaderError, readProxyHeader } from '../../lib/core/proxy-header-reader.js';
import { formatProxyV1, formatProxyV2 } from '../../lib/core/proxy-protocol.js';

const client = { address: '192.0.2.7', port: 40001 };
const dialled = { address: '198.51.100.1', port: 25 };

/** Timers keeping the event loop alive (the reader's deadline is one while it runs). */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** Resolves once the server side has read at least `n` bytes (bounded: fails after 5 s). */
async function received(socket: net.Socket, n: number): Promise<void> {
  for (let i = 0; socket.bytesRead < n; i++) {
    if (i > 5000) throw new Error(`server read ${socket.bytesRead} of ${n} bytes`);
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
  }
}

describe('core: readProxyHeader on a real socket', () => {
  let server: net.Server;
  let port: number;
  const waiting: Array<(s: net.Socket) => void> = [];
  const sockets: net.Socket[] = [];

  before(async () => {
    server = net.createServer((s) => {
      s.on('error', () => undefined);
      sockets.push(s);
      waiting.shift()?.(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A connected client and the server's end of it (which has only the error listener, as in TcpServer). */
  async function pair(): Promise<{ c: net.Socket; s: net.Socket }> {
    const accepted = new Promise<net.Socket>((resolve) => waiting.push(resolve));
    const c = net.connect({ host: '127.0.0.1', port });
    c.on('error', () => undefined);
    sockets.push(c);
    await new Promise<void>((resolve) => c.once('connect', resolve));
    return { c, s: await accepted };
  }

  const listeners = (s: net.Socket): number[] => ['readable', 'end', 'close', 'data'].map((e) => s.listenerCount(e));

  it('joins a header sent in three segments, and hands on what followed it exactly once, in order', async () => {
    const { c, s } = await pair();
    const before = listeners(s);
    const header = formatProxyV2(client, dialled, [{ type: 1, value: Buffer.from('h2') }]);
    const read = readProxyHeader(s, 5_000);
    c.write(header.subarray(0, 5));
    await received(s, 5);
    c.write(header.subarray(5, 20));
    await received(s, 20);
    c.write(Buffer.concat([header.subarray(20), Buffer.from('HELLO ')]));
    const h = await read;
    expect(h).to.deep.equal({ version: 2, command: 'proxy', source: client, destination: dialled, tlvs: [{ type: 1, value: Buffer.from('h2') }] });
    expect(listeners(s)).to.deep.equal(before);
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const end = new Promise<void>((resolve) => s.once('end', resolve));
    await received(s, header.length + 6);
    c.end('WORLD');
    await end;
    expect(data).to.equal('HELLO WORLD');
  });

  it('hands on bytes sent after a header that arrived alone', async () => {
    const { c, s } = await pair();
    const read = readProxyHeader(s, 5_000);
    c.write(formatProxyV1(client, dialled));
    expect(await read).to.deep.equal({ version: 1, command: 'proxy', source: client, destination: dialled, tlvs: [] });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const end = new Promise<void>((resolve) => s.once('end', resolve));
    c.end('EHLO x\r\n');
    await end;
    expect(data).to.equal('EHLO x\r\n');
  });

  /** Runs a read that must fail, and returns the error (checked to be a ProxyHeaderError) and the socket. */
  async function failing(act: (c: net.Socket, s: net.Socket) => unknown, timeoutMs = 5_000): Promise<{ err: ProxyHeaderError; s: net.Socket; before: number[]; timersLeft: number }> {
    const { c, s } = await pair();
    const before = listeners(s);
    const t0 = timers();
    const read = readProxyHeader(s, timeoutMs);
    await act(c, s);
    const err = await read.then(
      () => expect.fail('the read resolved'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ProxyHeaderError);
    return { err: err as ProxyHeaderError, s, before, timersLeft: timers() - t0 };
  }

  it('refuses a bad header with the parser\'s reason and text, leaving the socket open and no listener or timer behind', async () => {
    const { err, s, before, timersLeft } = await failing((c) => c.write('EHLO x\r\n'));
    expect([err.name, err.reason, err.message]).to.deep.equal(['ProxyHeaderError', 'malformed', 'no PROXY protocol signature']);
    expect(s.destroyed).to.equal(false);
    expect(listeners(s)).to.deep.equal(before);
    expect(timersLeft).to.equal(0);
  });

  it('refuses a v2 header announcing too much, before its bytes arrive', async () => {
    const big = formatProxyV2(client, dialled, [{ type: 1, value: Buffer.alloc(1000) }]);
    const { err } = await failing((c) => c.write(big.subarray(0, 16)));
    expect([err.reason, err.message]).to.deep.equal(['too-long', 'v2 header of 1031 bytes exceeds 1024']);
  });

  it('gives up at the deadline, naming it', async () => {
    const { err, s, before, timersLeft } = await failing((c) => c.write('PROXY TCP4 '), 30);
    expect([err.reason, err.message]).to.deep.equal(['timeout', 'no complete PROXY header within 30 ms']);
    expect(listeners(s)).to.deep.equal(before);
    expect(timersLeft).to.equal(0);
  });

  it('reports a peer that half-closes mid-header, and one that resets, as peer-closed', async () => {
    const ended = await failing((c) => {
      c.end('PROXY TCP4 ');
    });
    expect([ended.err.reason, ended.err.message]).to.deep.equal(['peer-closed', 'peer closed before a complete PROXY header']);
    const reset = await failing(async (c, s) => {
      c.write('PROXY TCP4 ');
      await received(s, 11);
      c.resetAndDestroy(); // an RST: the server side sees ECONNRESET and 'close', no 'end'
    });
    expect(reset.err.reason).to.equal('peer-closed');
  });

  it('leaves no timer behind once a header is read', async () => {
    const { c, s } = await pair();
    const t0 = timers();
    const read = readProxyHeader(s);
    expect(timers()).to.equal(t0 + 1);
    c.write(formatProxyV1(client, dialled));
    await read;
    expect(timers()).to.equal(t0);
  });

  it('reports a half-close mid-header as peer-closed also on a socket kept half-open (no \'close\' follows the FIN)', async () => {
    const halfOpen = net.createServer({ allowHalfOpen: true });
    const accepted = new Promise<net.Socket>((resolve) => halfOpen.once('connection', resolve));
    await new Promise<void>((resolve) => halfOpen.listen(0, '127.0.0.1', resolve));
    try {
      const c = net.connect({ host: '127.0.0.1', port: (halfOpen.address() as net.AddressInfo).port });
      c.on('error', () => undefined);
      sockets.push(c);
      const s = await accepted;
      s.on('error', () => undefined);
      sockets.push(s);
      // A deadline past the spec's own timeout: only the FIN can end this read in time.
      const read = readProxyHeader(s, 60_000);
      c.end('PROXY TCP4 ');
      const err = await read.then(
        () => expect.fail('the read resolved'),
        (e: unknown) => e as ProxyHeaderError,
      );
      expect([err.reason, err.message, s.destroyed]).to.deep.equal(['peer-closed', 'peer closed before a complete PROXY header', false]);
    } finally {
      for (const x of sockets.splice(0)) x.destroy();
      await new Promise<void>((resolve) => halfOpen.close(() => resolve()));
    }
  });
});
