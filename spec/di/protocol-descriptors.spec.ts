import { expect } from 'chai';
import net from 'node:net';
import type { Container } from 'inversify';
import { createContainer } from '../../lib/di/create-container.js';
import { Listener } from '../../lib/di/listener.js';
import { createMailServerContainer, DEFAULT_PORTS, isListenerEnabled, LISTENER_NAMES, MAIL_LISTENER_NAMES, MailServer } from '../../lib/di/mail-server.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { lmtpModule } from '../../lib/di/lmtp.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { PROTOCOLS } from '../../lib/di/protocols.js';
import { testCertificates } from '../support/certs.js';

describe('di: protocol descriptors', () => {
  const containers: Container[] = [];
  const servers: MailServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await Promise.all(containers.splice(0).map((c) => c.unbindAllAsync()));
  });
  function track(c: Container): Container {
    containers.push(c);
    return c;
  }
  const names = (c: Container): string[] => c.getAll(Listener).map((l) => l.name);

  it('binds only enabled listeners through createContainer: smtps with enabled: false is not bound and never starts', async () => {
    const certs = await testCertificates();
    const container = track(createContainer({ log: { silent: true }, tls: { certificate: certs.server }, smtp: { smtp: { port: 0 }, smtps: { port: 0, enabled: false } } }, [memoryModule, smtpModule]));
    expect(names(container)).to.deep.equal(['smtp']);
    const server = new MailServer(container);
    servers.push(server);
    const ready = await server.start();
    expect(ready.map((r) => r.name)).to.deep.equal(['smtp']);
  });

  it('binds no listener and no server for a section that is false or enabled: false', () => {
    const container = track(createContainer({ pop3: false, imap: { enabled: false } }, [memoryModule, pop3Module, imapModule]));
    expect(container.isBound(Listener)).to.equal(false);
  });

  it('binds every declared listener when a protocol module is loaded by hand (0.1 behaviour)', () => {
    const container = track(createContainer({}, [memoryModule]));
    container.load(pop3Module);
    expect(names(container)).to.deep.equal(['pop3', 'pop3s']);
  });

  it('binds the LMTP Unix socket listener only when a socket path is configured', () => {
    const without = track(createContainer({ lmtp: { lmtp: { port: 0 } } }, [memoryModule, lmtpModule]));
    expect(names(without)).to.deep.equal(['lmtp']);
    const withSocket = track(createContainer({ lmtp: { lmtp: { enabled: false }, socket: '/tmp/x.sock' } }, [memoryModule, lmtpModule]));
    expect(names(withSocket)).to.deep.equal(['lmtp-socket']);
    expect(isListenerEnabled({ lmtp: { socket: '/tmp/x.sock' } }, 'lmtp-socket')).to.equal(true);
    expect(isListenerEnabled({ lmtp: {} }, 'lmtp-socket')).to.equal(false);
    expect(isListenerEnabled({ lmtp: false }, 'lmtp')).to.equal(false);
    expect(isListenerEnabled({ smtp: { smtps: { enabled: false } } }, 'smtps')).to.equal(false);
    expect(isListenerEnabled({}, 'smtps')).to.equal(true);
  });

  it('derives listener names, default ports and the default set from the descriptors', () => {
    expect(PROTOCOLS.map((p) => p.section)).to.deep.equal(['smtp', 'pop3', 'imap', 'lmtp']);
    expect(LISTENER_NAMES).to.deep.equal(['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps', 'lmtp', 'http']);
    expect(MAIL_LISTENER_NAMES).to.deep.equal(['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps']);
    expect(DEFAULT_PORTS).to.deep.include({ smtp: 3025, smtps: 3465, pop3: 3110, pop3s: 3995, imap: 3143, imaps: 3993, lmtp: 3024, http: 8025 });
  });

  it('createMailServerContainer binds exactly the listeners in only, LMTP included when named', async () => {
    const certs = await testCertificates();
    const container = track(createMailServerContainer({ only: ['smtps', 'imap', 'lmtp'], anyPort: true, tls: { certificate: certs.server }, log: { silent: true } }));
    expect(names(container)).to.deep.equal(['smtps', 'imap', 'lmtp']);
    const server = new MailServer(container);
    servers.push(server);
    const ready = await server.start();
    expect(ready.map((r) => [r.name, r.tls])).to.deep.equal([
      ['smtps', 'implicit'],
      ['imap', 'starttls'],
      ['lmtp', 'starttls'],
    ]);
    const lmtp = ready.find((r) => r.name === 'lmtp')!;
    const greeting = await new Promise<string>((resolve, reject) => {
      const s = net.connect(lmtp.port, '127.0.0.1');
      s.once('data', (d) => {
        resolve(d.toString());
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(greeting).to.match(/^220 \S+ LMTP Postern ready\r\n$/);
  });
});
