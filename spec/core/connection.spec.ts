import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { ServerSecurity, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { TcpServer, type TcpServerOptions } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

const log = createLogger({ silent: true });

/** Polls `check` every 10 ms until it is true, failing after `ms`. */
async function eventually(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves when the socket emitted `'close'`. */
function closeOf(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed && socket.closed ? resolve() : socket.once('close', () => resolve())));
}

/** A raw TCP socket that connected (no TLS, no reading). */
async function rawConnect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  return s;
}

/** Starts a TLS handshake over `socket` and resolves with the first bytes the client wrote (its ClientHello). */
function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      c.on('error', () => undefined);
      c.once('close', () => undefined);
    });
    server.on('error', reject);
  });
}

describe('core: Connection lifecycle around TLS handshakes', () => {
  let certs: DevCertificates;
  const servers: TcpServer[] = [];
  const sockets: net.Socket[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(sec: ServerSecurityOptions = {}, opts: Partial<TcpServerOptions> & { implicit?: boolean } = {}): Promise<{ port: number; server: TcpServer }> {
    const security = new ServerSecurity({ certificate: certs.server, ...sec });
    const server = new TcpServer(new NoteHandler(security), { port: 0, ...opts, security: opts.implicit ? security : undefined }, log);
    servers.push(server);
    const { port } = await server.start();
    return { port, server };
  }

  it('closes gracefully while implicit-TLS handshakes are in progress', async () => {
    // The handshakes could last ten minutes: a close that waited for them would outlast the test's timeout.
    const { port, server } = await start({ handshakeTimeoutMs: 600_000 }, { implicit: true, closeTimeoutMs: 300 });
    const silent = await rawConnect(port); // never sends a ClientHello
    const partial = await rawConnect(port); // sends half a ClientHello
    sockets.push(silent, partial);
    const hello = await clientHello();
    partial.write(hello.subarray(0, Math.floor(hello.length / 2)));
    await eventually(() => server.connections.size === 2, 'both connections accepted');
    await server.close();
    await Promise.all([closeOf(silent), closeOf(partial)]);
    expect(server.connections.size).to.equal(0);
  });

  it('closes gracefully while a STARTTLS-style handshake is in progress', async () => {
    const { port, server } = await start({}, { closeTimeoutMs: 300 });
    const c = await LineClient.connect(port);
    clients.push(c);
    expect(await c.readLine()).to.equal('+ NOTE ready');
    c.line('UPGRADE');
    expect(await c.readLine()).to.equal('+ go ahead');
    // The client never starts its handshake.
    await server.close();
    await c.closed();
    expect(server.connections.size).to.equal(0);
  });

  it('survives a client that resets during the implicit-TLS handshake, and forgets it', async () => {
    const { port, server } = await start({}, { implicit: true });
    const hello = await clientHello();
    for (let i = 0; i < 5; i++) {
      const s = await rawConnect(port);
      sockets.push(s);
      if (i % 2 === 0) s.write(hello.subarray(0, 20 + i));
      else s.write(hello);
      await eventually(() => server.connections.size >= 1, 'connection accepted');
      s.resetAndDestroy();
      await closeOf(s);
    }
    await eventually(() => server.connections.size === 0, 'the server to drop reset connections');
    const ok = await LineClient.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
    clients.push(ok);
    expect(await ok.readLine()).to.equal('+ NOTE ready');
  });

  it('survives a client that resets during a STARTTLS-style handshake, and forgets it', async () => {
    const { port, server } = await start();
    const hello = await clientHello();
    const c = await LineClient.connect(port);
    clients.push(c);
    await c.readLine();
    c.line('UPGRADE');
    expect(await c.readLine()).to.equal('+ go ahead');
    c.send(hello.subarray(0, 30));
    const raw = c.raw;
    raw.resetAndDestroy();
    await closeOf(raw);
    await eventually(() => server.connections.size === 0, 'the server to drop the reset connection');
    const ok = await LineClient.connect(port);
    clients.push(ok);
    expect(await ok.readLine()).to.equal('+ NOTE ready');
  });

  it('drops a client that sends garbage instead of a ClientHello, and forgets it', async () => {
    const { port, server } = await start({}, { implicit: true });
    const s = await rawConnect(port);
    sockets.push(s);
    s.write('EHLO this is not TLS\r\n');
    await closeOf(s);
    await eventually(() => server.connections.size === 0, 'the server to drop the connection');
  });

  it('forgets a connection whose handshake timed out', async () => {
    const { port, server } = await start({ handshakeTimeoutMs: 100 }, { implicit: true });
    const s = await rawConnect(port);
    sockets.push(s);
    await closeOf(s);
    await eventually(() => server.connections.size === 0, 'the server to drop the timed-out connection');
  });
});
