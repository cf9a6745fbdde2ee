/**
 * REQUIRETLS (RFC 8689): EHLO offers it only on TLS sessions; MAIL takes it there (no value) and refuses it in
 * plaintext as an unknown parameter; the message keeps `envelope.requireTls`; nodemailer's
 * `requireTLSExtensionEnabled` works over STARTTLS; `requireTlsExtension: false` stops offering it; and a relayed DSN
 * report of such a message is sent under REQUIRETLS.
 */
import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import nodemailer from 'nodemailer';
import { Logger } from '../../lib/log/logger.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { RecordingLogger } from '../support/recording-logger.js';

describe('smtp: REQUIRETLS (RFC 8689)', function () {
  this.timeout(30_000);
  let server: RunningMailServer;
  const clients: LineClient[] = [];
  before(async () => {
    server = await startMailServer({ protocols: ['smtp', 'smtps'], users: ['alice:secret@example.com'] });
  });
  after(async () => server.stop());
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.purge();
  });

  async function plain(target = server): Promise<LineClient> {
    const c = await LineClient.connect(target.ports.smtp!);
    clients.push(c);
    await c.expect(/^220 /);
    return c;
  }
  async function secured(target = server): Promise<{ c: LineClient; ehlo: string[] }> {
    const c = await plain(target);
    await c.command('EHLO client.test', /^250 /);
    await c.command('STARTTLS', /^220 /);
    await c.startTls({ ca: target.ca, servername: 'localhost' });
    return { c, ehlo: await c.command('EHLO client.test', /^250 /) };
  }

  it('is offered after STARTTLS and on the implicit-TLS port, never in plaintext', async () => {
    const c = await plain();
    expect(await c.command('EHLO client.test', /^250 /)).not.to.include('250-REQUIRETLS');
    expect((await secured()).ehlo).to.include('250-REQUIRETLS');
    const implicit = await LineClient.connect(server.ports.smtps!, { tls: { ca: server.ca, servername: 'localhost' } });
    clients.push(implicit);
    await implicit.expect(/^220 /);
    expect(await implicit.command('EHLO client.test', /^250 /)).to.include('250-REQUIRETLS');
  });

  it('takes MAIL … REQUIRETLS under TLS and keeps envelope.requireTls; refuses it in plaintext (555) and with a value (501)', async () => {
    const p = await plain();
    await p.command('EHLO client.test', /^250 /);
    expect(await p.command('MAIL FROM:<bob@client.test> REQUIRETLS', /^\d{3} /)).to.deep.equal(['555 5.5.4 MAIL parameter REQUIRETLS not recognized']);
    const { c } = await secured();
    expect(await c.command('MAIL FROM:<bob@client.test> REQUIRETLS=yes', /^\d{3} /)).to.deep.equal(['501 5.5.4 REQUIRETLS takes no value']);
    expect(await c.command('MAIL FROM:<bob@client.test> requiretls', /^\d{3} /)).to.deep.equal(['250 2.1.0 Sender <bob@client.test> OK']);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('DATA', /^354 /);
    expect(await c.command('Subject: tls all the way\r\n\r\nhi\r\n.', /^\d{3} /)).to.have.length(1);
    const [m] = await server.waitForMessages(1);
    expect(m!.envelope).to.deep.include({ requireTls: true, mailFrom: 'bob@client.test' });
  });

  it("nodemailer's requireTLSExtensionEnabled goes through over STARTTLS; without it the envelope has no requireTls", async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: server.ports.smtp, secure: false, requireTLS: true, tls: { ca: server.ca, servername: 'localhost' } });
    await transport.sendMail({ from: 'bob@client.test', to: 'alice@example.com', subject: 'with', text: 'hi', requireTLSExtensionEnabled: true } as Parameters<typeof transport.sendMail>[0]);
    await transport.sendMail({ from: 'bob@client.test', to: 'alice@example.com', subject: 'without', text: 'hi' });
    const messages = await server.waitForMessages(2);
    expect(messages.map((m) => [m.subject, m.envelope?.requireTls])).to.deep.equal([
      ['with', true],
      ['without', undefined],
    ]);
  });

  it('requireTlsExtension: false offers it nowhere, and the parameter is unknown', async () => {
    const off = await startMailServer({ protocols: ['smtp'], users: ['alice:secret@example.com'], smtp: { requireTlsExtension: false } });
    try {
      const { c, ehlo } = await secured(off);
      expect(ehlo).not.to.include('250-REQUIRETLS');
      expect(await c.command('MAIL FROM:<bob@client.test> REQUIRETLS', /^\d{3} /)).to.deep.equal(['555 5.5.4 MAIL parameter REQUIRETLS not recognized']);
    } finally {
      await off.stop();
    }
  });

  it('relays the DSN report of a REQUIRETLS message under REQUIRETLS (RFC 8689 §5)', async () => {
    const relay = await startMailServer({ protocols: ['smtp'], authDisabled: true });
    const log = new RecordingLogger();
    const origin = await startMailServer({
      protocols: ['smtp'],
      users: ['alice:secret@example.com'],
      smtp: { dsn: true },
      dsnRelay: { url: `smtp://127.0.0.1:${relay.ports.smtp}`, ca: relay.ca },
      modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))],
    });
    try {
      const { c } = await secured(origin);
      await c.command('MAIL FROM:<app@elsewhere.test> REQUIRETLS', /^250 /);
      await c.command('RCPT TO:<alice@example.com> NOTIFY=SUCCESS', /^250 /);
      await c.command('DATA', /^354 /);
      expect((await c.command('Subject: secret\r\n\r\nhi\r\n.', /^\d{3} /))[0]).to.match(/^250 /);
      const [report] = await relay.waitForMessages(1);
      expect(report!.envelope).to.deep.include({ mailFrom: '', rcptTo: ['app@elsewhere.test'], requireTls: true });
    } finally {
      await origin.stop();
      await relay.stop();
    }
  });
});
