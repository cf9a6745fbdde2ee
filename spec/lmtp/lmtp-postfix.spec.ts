import { expect } from 'chai';
import { chmod } from 'node:fs/promises';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { pollUntil } from '../../bench/refs/processes.js';
import { allMessages } from '../../lib/test-double/store-queries.js';
import { testCertificates } from '../support/certs.js';
import { startLmtp, storedByUser, type LmtpFixture } from './lmtp-harness.js';
import { postfixUsable, startPostfixRelay, type PostfixRelay } from './postfix-relay.js';

/**
 * Postfix (Debian's package) as the MTA in front, handing local mail to Postern over LMTP the way it hands it to
 * Dovecot or Cyrus (`mailbox_transport = lmtp:…`); the mail is then read over IMAPS by imapflow.
 */
describe('lmtp: Postfix relays into Postern, mail read over IMAP', function () {
  this.timeout(60_000);
  let f: LmtpFixture | undefined;
  let relay: PostfixRelay | undefined;
  before(async function () {
    if (!(await postfixUsable())) this.skip(); // postfix missing (.ci/run installs it) or not root (Postfix's master needs it)
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
    await f?.close();
    f = undefined;
  });

  async function send(port: number, to: string[], subject: string): Promise<void> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    try {
      await transport.sendMail({ from: 'sender@remote.test', to, subject, text: `hello over ${subject}` });
    } finally {
      transport.close();
    }
  }

  async function imapSubjects(fixture: LmtpFixture, user: string): Promise<{ subject: string; source: string }[]> {
    const certs = await testCertificates();
    const client = new ImapFlow({ host: '127.0.0.1', port: fixture.port('imaps'), secure: true, tls: { ca: certs.ca.cert, servername: 'localhost' }, auth: { user, pass: 'secret' }, logger: false });
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      const out: { subject: string; source: string }[] = [];
      for await (const m of client.fetch('1:*', { envelope: true, source: true })) out.push({ subject: m.envelope?.subject ?? '', source: m.source?.toString('utf8') ?? '' });
      return out;
    } finally {
      await client.logout();
    }
  }

  it('mailbox_transport = lmtp:inet: delivers over STARTTLS; a full mailbox bounces only its own recipient (552 5.2.2)', async () => {
    f = await startLmtp({ only: ['lmtp', 'imaps'] });
    await chmod(f.dir, 0o755);
    relay = await startPostfixRelay(f.dir, `lmtp:inet:127.0.0.1:${f.port('lmtp')}`);
    await send(relay.port, ['alice@example.com', 'bob@example.com'], 'lmtp-inet');
    const fixture = f;
    await pollUntil('alice to get the message', async () => ((await storedByUser(fixture.store)).alice?.length ? true : undefined));
    const [msg] = await imapSubjects(f, 'alice');
    expect(msg.subject).to.equal('lmtp-inet');
    // Postfix's trace header, then Postern's: LHLO from Postfix, over TLS.
    expect(msg.source).to.match(/Received: from mx\.relay\.test \(\[127\.0\.0\.1\]\)\r\n\tby lmtp\.test with LMTPS \(TLSv1\.[23]:/);
    expect(msg.source).to.match(/Received: from [^\r\n]*\r\n\tby mx\.relay\.test \(Postfix\)/);
    // Both lines, whichever Postfix writes first (waiting for one and asserting the other raced in smtp-postfix).
    const log = await pollUntil('the bounce of bob and the delivery to alice in the Postfix log', async () => {
      const text = await relay!.log();
      return /to=<bob@example\.com>.*status=bounced.*552 5\.2\.2/.test(text) && /to=<alice@example\.com>.*status=sent/.test(text) ? text : undefined;
    });
    expect(log).to.match(/to=<alice@example\.com>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent \(250 2\.0\.0 <alice@example\.com> Message accepted/);
    expect((await storedByUser(f.store)).bob).to.equal(undefined);
  });

  it('with lmtp.dsn, Postfix passes a DSN request on over LMTP: ENVID, RET, NOTIFY and its ORCPT are stored with the message', async () => {
    f = await startLmtp({ only: ['lmtp'], lmtp: { dsn: true } });
    await chmod(f.dir, 0o755);
    relay = await startPostfixRelay(f.dir, `lmtp:inet:127.0.0.1:${f.port('lmtp')}`);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, secure: false, ignoreTLS: true });
    try {
      await transport.sendMail({ from: 'sender@remote.test', to: 'carol@example.com', subject: 'dsn', text: 'x', dsn: { id: 'lmtp-7', return: 'full', notify: ['delay', 'failure'] } });
    } finally {
      transport.close();
    }
    const store = f.store;
    const [row] = await pollUntil('carol to get the message', async () => {
      const rows = await allMessages(store);
      return rows.length > 0 ? rows : undefined;
    });
    expect(row!.message.envelope?.protocol).to.equal('lmtp');
    expect(row!.message.envelope?.dsn).to.deep.equal({ ret: 'FULL', envid: 'lmtp-7', recipients: [{ notify: ['FAILURE', 'DELAY'], orcpt: { addressType: 'rfc822', address: 'carol@example.com' } }] });
  });

  it('mailbox_transport = lmtp:unix: delivers over the Unix socket (--lmtp-socket)', async () => {
    f = await startLmtp({ only: ['imaps'], lmtp: { socketMode: 0o666 } }, [], true);
    await chmod(f.dir, 0o755);
    expect(f.ready.map((r) => r.name)).to.deep.equal(['imaps', 'lmtp-socket']);
    relay = await startPostfixRelay(f.dir, `lmtp:unix:${f.socketPath}`);
    await send(relay.port, ['carol@example.com'], 'lmtp-unix');
    const fixture = f;
    await pollUntil('carol to get the message', async () => ((await storedByUser(fixture.store)).carol?.length ? true : undefined));
    const [msg] = await imapSubjects(f, 'carol');
    expect(msg.subject).to.equal('lmtp-unix');
    expect(msg.source).to.match(/Received: from mx\.relay\.test\r\n\tby lmtp\.test with LMTP id /);
  });
});
