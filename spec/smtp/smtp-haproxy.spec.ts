import { expect } from 'chai';
import tls from 'node:tls';
import { ContainerModule } from 'inversify';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { SmtpHooks } from '../../lib/smtp/smtp-backend.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { findHaproxy, startHaproxy, type RunningHaproxy } from '../support/haproxy.js';
import { LineClient } from '../support/line-client.js';
import { plainAuth } from './smtp-harness.js';

/** The client's own source address: another loopback address than the proxy's 127.0.0.1. */
const CLIENT = '127.0.0.5';

describe('smtp: behind HAProxy (send-proxy-v2, TCP mode)', function () {
  this.timeout(30_000);
  let haproxy: RunningHaproxy | undefined;
  let server: RunningMailServer | undefined;
  const clients: LineClient[] = [];
  const peers: PeerInfo[] = [];

  before(async function () {
    const binary = await findHaproxy();
    if (!binary) this.skip(); // CI installs the Debian package (.ci/run): pending only on a machine without it
    server = await startMailServer({
      protocols: ['smtp', 'smtps'],
      users: ['alice:secret@example.com'],
      // Only the proxy may speak PROXY; it connects from 127.0.0.1, the client from 127.0.0.5.
      proxyProtocol: { trusted: ['127.0.0.1/32'] },
      modules: [new ContainerModule(({ bind }) => void bind(SmtpHooks).toConstantValue({ onConnect: async (peer) => void peers.push(peer) }))],
    });
    haproxy = await startHaproxy(binary!, [
      { name: 'smtp', servers: [{ host: '127.0.0.1', port: server.ports.smtp! }] },
      { name: 'smtps', servers: [{ host: '127.0.0.1', port: server.ports.smtps! }] },
    ]);
  });
  after(async () => {
    await haproxy?.stop();
    await server?.stop();
  });
  afterEach(async () => {
    peers.length = 0;
    await server?.purge();
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  /** One authenticated transaction on an open session; returns the stored message's raw text. */
  async function send(c: LineClient, subject: string): Promise<string> {
    await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^235 /);
    await c.command('MAIL FROM:<alice@example.com>', /^250 /);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('DATA', /^354 /);
    await c.command(`Subject: ${subject}\r\n\r\nhello\r\n.`, /^250 /);
    await c.command('QUIT', /^221 /);
    const [msg] = await server!.waitForMessages(1);
    return msg!.raw.toString('latin1');
  }

  it('STARTTLS through the proxy: the client\'s own address is in the Received header and the hooks', async () => {
    const c = await LineClient.connect(haproxy!.ports.smtp!, { localAddress: CLIENT });
    clients.push(c);
    const port = c.raw.localPort;
    expect(await c.readLine()).to.match(/^220 /);
    await c.command('EHLO client.example', /^250 /);
    await c.command('STARTTLS', /^220 /);
    const s = await c.startTls({ ca: server!.ca, servername: 'localhost' });
    expect(s.authorized).to.equal(true);
    await c.command('EHLO client.example', /^250 /);
    const raw = await send(c, 'starttls via haproxy');
    expect(raw).to.match(/\r\nReceived: from client\.example \(\[127\.0\.0\.5\]\)\r\n\tby .* with ESMTPSA /);
    expect(peers.map((p) => `${p.remoteAddress}:${p.remotePort}`)).to.deep.equal([`${CLIENT}:${port}`]);
  });

  it('implicit TLS passed through untouched: the client\'s own address is in the Received header and the hooks', async () => {
    const c = await LineClient.connect(haproxy!.ports.smtps!, { localAddress: CLIENT, tls: { ca: server!.ca, servername: 'localhost' } });
    clients.push(c);
    expect((c.raw as tls.TLSSocket).authorized).to.equal(true);
    const port = c.raw.localPort;
    expect(await c.readLine()).to.match(/^220 /);
    await c.command('EHLO client.example', /^250 /);
    const raw = await send(c, 'smtps via haproxy');
    expect(raw).to.match(/\r\nReceived: from client\.example \(\[127\.0\.0\.5\]\)\r\n\tby .* with ESMTPSA /);
    expect(peers.map((p) => `${p.remoteAddress}:${p.remotePort}`)).to.deep.equal([`${CLIENT}:${port}`]);
  });
});
