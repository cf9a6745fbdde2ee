import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import { ContainerModule } from 'inversify';
import { Authenticator, type AuthRequest } from '../../lib/contracts/authenticator.js';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { formatProxyV1, formatProxyV2 } from '../../lib/core/proxy-protocol.js';
import { SmtpHooks } from '../../lib/smtp/smtp-backend.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { plainAuth } from './smtp-harness.js';

describe('smtp: behind a PROXY protocol proxy', () => {
  let server: RunningMailServer;
  const clients: LineClient[] = [];
  const seen: Array<{ from: string; peer: PeerInfo }> = [];

  /** Records what hooks and the authenticator are told about the peer. */
  const recorder = new ContainerModule(({ bind, onActivation }) => {
    bind(SmtpHooks).toConstantValue({
      onConnect: async (peer) => void seen.push({ from: 'onConnect', peer }),
      onSecure: async (peer) => void seen.push({ from: 'onSecure', peer }),
    });
    onActivation(Authenticator, (_ctx, auth) => ({
      supportsSharedSecrets: auth.supportsSharedSecrets,
      authenticate: (request: AuthRequest) => {
        seen.push({ from: 'authenticator', peer: request.peer });
        return auth.authenticate(request);
      },
    }));
  });

  before(async () => {
    server = await startMailServer({
      protocols: ['smtp', 'smtps'],
      users: ['alice:secret@example.com'],
      proxyProtocol: { trusted: ['127.0.0.0/8'] },
      modules: [recorder],
    });
  });
  after(async () => server.stop());
  afterEach(async () => {
    seen.length = 0;
    await server.purge();
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('STARTTLS: the header\'s client is in the hooks, the authenticator and the Received header', async () => {
    const c = await LineClient.connect(server.ports.smtp!);
    clients.push(c);
    c.send(formatProxyV2({ address: '203.0.113.9', port: 5555 }, { address: '198.51.100.25', port: 587 }));
    expect(await c.readLine()).to.match(/^220 /);
    await c.command('EHLO client.example', /^250 /);
    await c.command('STARTTLS', /^220 /);
    await c.startTls({ ca: server.ca, servername: 'localhost' });
    await c.command('EHLO client.example', /^250 /);
    await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^235 /);
    await c.command('MAIL FROM:<alice@example.com>', /^250 /);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('DATA', /^354 /);
    await c.command('Subject: via proxy\r\n\r\nhello\r\n.', /^250 /);
    await c.command('QUIT', /^221 /);

    const [msg] = await server.waitForMessages(1);
    expect(msg!.raw.toString('latin1')).to.match(/^Return-Path: <alice@example\.com>\r\nReceived: from client\.example \(\[203\.0\.113\.9\]\)\r\n/);
    expect(seen.map((s) => s.from)).to.deep.equal(['onConnect', 'onSecure', 'authenticator']);
    for (const { peer } of seen) {
      expect(peer).to.include({ remoteAddress: '203.0.113.9', remotePort: 5555, localAddress: '198.51.100.25', localPort: 587 });
    }
  });

  it('implicit TLS (smtps): the header comes before the ClientHello and names the client', async () => {
    const raw = net.connect({ host: '127.0.0.1', port: server.ports.smtps! });
    await new Promise<void>((resolve) => raw.once('connect', resolve));
    raw.write(formatProxyV1({ address: '2001:db8::99', port: 6000 }, { address: '2001:db8::1', port: 465 }));
    const secure = tls.connect({ socket: raw, ca: server.ca, servername: 'localhost' });
    const greeting = await new Promise<string>((resolve, reject) => {
      secure.once('data', (d: Buffer) => resolve(d.toString('latin1')));
      secure.once('error', reject);
    });
    expect(greeting).to.match(/^220 /);
    expect(seen[0]?.peer).to.include({ remoteAddress: '2001:db8::99', remotePort: 6000 });
    await new Promise<void>((resolve) => {
      secure.once('close', () => resolve());
      secure.end('QUIT\r\n');
    });
  });
});
