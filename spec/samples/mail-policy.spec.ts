import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { startPolicyServer } from '../../samples/mail-policy.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';

describe('samples: mail-policy.ts (hooks that change mail and guard mailboxes)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let running: Awaited<ReturnType<typeof startPolicyServer>>;
  const port = (name: string): number => running.ready.find((l) => l.name === name)!.port;
  const imap = (user: string, pass: string): ImapFlow =>
    new ImapFlow({ host: '127.0.0.1', port: port('imaps'), secure: true, tls: { ca: certs.ca.cert, servername: 'localhost' }, auth: { user, pass }, logger: false });

  before(async () => {
    certs = await testCertificates();
  });
  beforeEach(async () => {
    running = await startPolicyServer({ anyPort: true, tls: { certificate: certs.server } });
  });
  afterEach(async () => {
    await running?.close();
  });

  async function send(message: Mail.Options): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: port('smtp'), requireTLS: true, tls: { ca: certs.ca.cert, servername: 'localhost' } });
    try {
      await t.sendMail({ from: 'app@example.test', to: 'alice@example.test', ...message });
    } finally {
      t.close();
    }
  }

  it('scores, flags and refuses spam, appends the disclaimer to plain text only; alice reads the result over IMAP', async () => {
    await send({ subject: 'win', text: 'You are a WINNER of our lottery!\nviagra inside' });
    await send({ subject: 'lunch', text: 'Pizza at one?' });
    await send({ subject: 'html', html: '<p>Hello</p>' });
    const refused = (await send({ subject: 'spam', text: 'viagra '.repeat(10) }).catch((e: unknown) => e)) as { responseCode?: number; response?: string };
    expect(refused.responseCode).to.equal(550);
    expect(refused.response).to.equal('550 5.7.1 Message refused as spam (score 10)');

    const client = imap('alice', 'alice-pw');
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      const got: string[] = [];
      for await (const m of client.fetch('1:*', { source: true })) got.push(m.source!.toString('latin1'));
      expect(got).to.have.length(3);
      const [spam, lunch, html] = got;
      expect(spam).to.match(/\r\nSubject: \[SPAM\] win\r\n/);
      expect(spam).to.match(/\r\nX-Spam-Score: 3\r\n/);
      expect(spam).to.match(/\r\nX-Spam-Flag: YES\r\n/);
      expect(lunch).to.match(/\r\nSubject: lunch\r\n/);
      expect(lunch).to.match(/\r\nX-Spam-Score: 0\r\n/);
      expect(lunch).to.not.match(/X-Spam-Flag/);
      expect(lunch).to.match(/\r\n\r\nPizza at one\?\r\n-- \r\nScanned by Postern\.\r\n$/);
      expect(html).to.not.contain('Scanned by Postern');
      expect(html).to.not.contain('X-Disclaimer');
    } finally {
      await client.logout();
    }
  });

  it('Archive is read-only over IMAP: EXAMINE works, SELECT and APPEND get NO [NOPERM]', async () => {
    const client = imap('alice', 'alice-pw');
    await client.connect();
    try {
      expect((await client.mailboxOpen('Archive', { readOnly: true })).exists).to.equal(0);
      const select = (await client.mailboxOpen('Archive').catch((e: unknown) => e)) as { serverResponseCode?: string; responseText?: string };
      expect(select.serverResponseCode).to.equal('NOPERM');
      expect(select.responseText).to.equal('Archive is read-only: use EXAMINE');
      const append = (await client.append('Archive', 'Subject: x\r\n\r\ny\r\n').catch((e: unknown) => e)) as { serverResponseCode?: string };
      expect(append.serverResponseCode).to.equal('NOPERM');
    } finally {
      await client.logout();
    }
  });

  it('mallory is locked: IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR [AUTH], though the password is right', async () => {
    const client = imap('mallory', 'mallory-pw');
    const err = (await client.connect().catch((e: unknown) => e)) as { serverResponseCode?: string; authenticationFailed?: boolean };
    expect(err.authenticationFailed).to.equal(true);
    expect(err.serverResponseCode).to.equal('AUTHENTICATIONFAILED');
    client.close();
    const pop = await LineClient.connect(port('pop3s'), { tls: { ca: certs.ca.cert, servername: 'localhost' } });
    try {
      await pop.expect(/^\+OK /);
      await pop.command('USER mallory', /^\+OK/);
      expect(await pop.command('PASS mallory-pw', /^[+-]/)).to.deep.equal(['-ERR [AUTH] account locked, ask your administrator']);
    } finally {
      await pop.close();
    }
  });
});
