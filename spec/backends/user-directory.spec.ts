import { expect } from 'chai';
import type { Container } from 'inversify';
import { Authenticator, DefaultAuthenticator, type AuthRequest } from '../../lib/contracts/authenticator.js';
import { MailStore } from '../../lib/contracts/mail-store.js';
import { StoreAuthenticator } from '../../lib/backends/store-authenticator.js';
import { createContainer } from '../../lib/di/create-container.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** A directory outside the store (an LDAP stand-in): carol, with her address as the login. */
async function ldap(request: AuthRequest): Promise<boolean> {
  return request.username === 'carol@example.com' && request.password === 'from-ldap';
}

describe('backends: the default Authenticator under its own token, and one user directory', () => {
  let container: Container | undefined;
  const clients: LineClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const l of container?.getAll(Listener) ?? []) await l.close();
    await container?.unbindAllAsync();
    container = undefined;
  });

  /** Builds the container, lets `customise` rebind, starts the implicit-TLS listeners; returns a client factory. */
  async function start(customise: (c: Container) => void): Promise<(name: string, greeting: RegExp) => Promise<LineClient>> {
    const certs = await testCertificates();
    const quick = { failedLoginDelayMs: 5 };
    container = createContainer(
      {
        tls: { certificate: certs.server },
        log: { silent: true },
        smtp: { ...quick, hostname: 'mx.test', smtp: { port: 0 }, smtps: { port: 0 } },
        pop3: { ...quick, pop3: { port: 0 }, pop3s: { port: 0 } },
        imap: { ...quick, imap: { port: 0 }, imaps: { port: 0 } },
      },
      [memoryModule, smtpModule, pop3Module, imapModule],
    );
    customise(container);
    await container.get(MailStore).users.add({ username: 'alice', password: 'alice pw', addresses: ['alice@example.com'] });
    const listeners = container.getAll(Listener);
    for (const l of listeners) await l.start();
    return async (name, greeting) => {
      const port = listeners.find((l) => l.name === name)!.address().port;
      const c = await LineClient.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
      clients.push(c);
      await c.expect(greeting);
      return c;
    };
  }

  it('binds StoreAuthenticator under DefaultAuthenticator, so a decorator gets it injected', async () => {
    const seen: string[] = [];
    const connect = await start((c) =>
      c.rebind(Authenticator).toResolvedValue(
        (inner: Authenticator): Authenticator => ({
          supportsSharedSecrets: inner.supportsSharedSecrets,
          async authenticate(request) {
            seen.push(`${request.protocol} ${request.mechanism} ${request.username}`);
            return (await ldap(request)) ? { ok: true, username: request.username } : inner.authenticate(request);
          },
        }),
        [DefaultAuthenticator],
      ),
    );
    expect(container!.get(DefaultAuthenticator)).to.be.instanceOf(StoreAuthenticator);
    const imap = await connect('imaps', /^\* OK/);
    expect((await imap.command('a LOGIN alice "alice pw"', /^a /)).at(-1)).to.match(/^a OK /);
    const smtp = await connect('smtps', /^220 /);
    await smtp.command('EHLO client.test', /^250 /);
    expect(await smtp.command(`AUTH PLAIN ${b64('\0carol@example.com\0from-ldap')}`, /^\d{3} /)).to.deep.equal(['235 2.7.0 Authentication successful']);
    expect(seen).to.deep.equal(['imap IMAP-LOGIN alice', 'smtp PLAIN carol@example.com']);
  });

  it('gives a user another Authenticator accepts a place in the store: mailboxes over IMAP and POP3, no 550 for her address', async () => {
    const connect = await start((c) =>
      c.rebind(Authenticator).toConstantValue({
        supportsSharedSecrets: false,
        authenticate: async (request) => ((await ldap(request)) ? { ok: true, username: request.username } : { ok: false, reason: 'invalid-credentials' }),
      }),
    );
    const store = container!.get(MailStore);
    expect(await store.users.find('carol@example.com')).to.equal(undefined);
    const smtp = await connect('smtps', /^220 /);
    await smtp.command('EHLO client.test', /^250 /);
    await smtp.command('MAIL FROM:<x@remote.test>', /^250 /);
    expect(await smtp.command('RCPT TO:<carol@example.com>', /^\d{3} /)).to.deep.equal(['550 5.1.1 No such user here']);
    await smtp.command('RSET', /^250 /);
    const imap = await connect('imaps', /^\* OK/);
    expect((await imap.command('a LOGIN carol@example.com from-ldap', /^a /)).at(-1)).to.match(/^a OK /);
    expect((await imap.command('b SELECT INBOX', /^b /)).at(-1)).to.match(/^b OK \[READ-WRITE\]/);
    expect(await store.users.find('carol@example.com')).to.equal('carol@example.com');
    await smtp.command('MAIL FROM:<x@remote.test>', /^250 /);
    expect(await smtp.command('RCPT TO:<carol@example.com>', /^\d{3} /)).to.match(/^250 /);
    const pop3 = await connect('pop3s', /^\+OK/);
    await pop3.command('USER carol@example.com', /^\+OK/);
    expect(await pop3.command('PASS from-ldap', /^[+-]/)).to.deep.equal(['+OK maildrop locked and ready, 0 messages (0 octets)']);
    // The store's own check still refuses the password it never had: the bridge made no usable password.
    expect(await store.users.verify('carol@example.com', 'from-ldap')).to.equal(undefined);
  });
});
