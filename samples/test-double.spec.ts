/**
 * Sample: a mocha test in *your* project that uses Postern's embedded test double. Your application sends mail
 * over SMTP with STARTTLS (here nodemailer stands in for it); the test checks what arrived, both through the
 * double's API and the way a mail client would see it, over IMAPS with imapflow.
 *
 * In your project, import from `'postern'` instead of `'../lib/index.js'`. The double's TLS certificate is
 * issued by a CA generated at start: trust `server.ca`, never `rejectUnauthorized: false`.
 * `npm test` runs this file (see `.mocharc.json`).
 */
import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startMailServer, type RunningMailServer } from '../lib/index.js';

/** The code under test: a tiny "welcome mail" feature of your application. */
async function sendWelcomeMail(smtp: { host: string; port: number; ca: string }, to: string): Promise<void> {
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    requireTLS: true, // STARTTLS or fail
    tls: { ca: smtp.ca, servername: 'localhost' },
    auth: { user: 'app', pass: 'app-secret' },
  });
  try {
    await transport.sendMail({
      from: 'Example App <app@example.test>',
      to,
      subject: 'Welcome aboard',
      text: 'Hello! Your account is ready.',
      html: '<p>Hello! Your account is <b>ready</b>.</p>',
      attachments: [{ filename: 'terms.txt', content: 'Be nice.\n' }],
    });
  } finally {
    transport.close();
  }
}

describe('sample: testing an application that sends mail, with the Postern test double', () => {
  let server: RunningMailServer;

  before(async () => {
    server = await startMailServer({
      protocols: ['smtp', 'imaps'],
      users: ['app:app-secret@example.test', 'alice:secret@example.test'],
    });
  });
  after(async () => {
    await server.stop();
  });
  afterEach(async () => {
    await server.purge();
  });

  it('delivers the welcome mail over STARTTLS', async () => {
    await sendWelcomeMail({ host: server.host, port: server.ports.smtp!, ca: server.ca }, 'alice@example.test');

    const [message] = await server.waitForMessages(1, 5000);
    expect(message?.username).to.equal('alice');
    expect(message?.from?.address).to.equal('app@example.test');
    expect(message?.to.map((t) => t.address)).to.deep.equal(['alice@example.test']);
    expect(message?.subject).to.equal('Welcome aboard');
    expect(message?.text?.trim()).to.equal('Hello! Your account is ready.');
    expect(message?.html).to.contain('<b>ready</b>');
    expect(message?.attachments.map((a) => [a.filename, a.content.toString()])).to.deep.equal([['terms.txt', 'Be nice.\n']]);
    expect(message?.raw.toString()).to.match(/^Return-Path: <app@example\.test>\r\nReceived: from .* with ESMTPSA /s);
  });

  it('lets the recipient read it over IMAPS', async () => {
    await sendWelcomeMail({ host: server.host, port: server.ports.smtp!, ca: server.ca }, 'alice@example.test');
    await server.waitForMessages(1);

    const client = new ImapFlow({
      host: server.host,
      port: server.ports.imaps!,
      secure: true,
      tls: { ca: server.ca, servername: 'localhost' },
      auth: { user: 'alice', pass: 'secret' },
      logger: false,
    });
    await client.connect();
    try {
      const inbox = await client.mailboxOpen('INBOX');
      expect(inbox.exists).to.equal(1);
      const fetched = await client.fetchOne('*', { envelope: true, source: true });
      if (!fetched) throw new Error('no message in INBOX');
      expect(fetched.envelope?.subject).to.equal('Welcome aboard');
      expect(fetched.envelope?.from?.[0]?.address).to.equal('app@example.test');
      expect(fetched.source?.toString()).to.contain('Hello! Your account is ready.');
    } finally {
      await client.logout();
    }
  });
});
