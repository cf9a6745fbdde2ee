import { expect } from 'chai';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { pollUntil } from '../../bench/refs/processes.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { postfixUsable, startPostfixSmtpRelay, type PostfixRelay } from '../lmtp/postfix-relay.js';

/**
 * Postern as the MX behind a real MTA: Debian's Postfix relays mail for example.com to the test double's SMTP
 * listener as it would to any Internet MX (ESMTP, PIPELINING, 8BITMIME, STARTTLS required and the certificate verified
 * for `localhost`). What Postfix logs is what an operator would read: the verified TLS connection, `status=sent`,
 * a bounce for Postern's 550, a deferral for its 451 and the delivery on the retry.
 */
describe('smtp: Postfix relays to Postern as to an MX (STARTTLS verified)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningMailServer | undefined;
  let relay: PostfixRelay | undefined;
  before(async function () {
    if (!(await postfixUsable())) this.skip(); // postfix missing (.ci/run installs it) or not root (Postfix's master needs it)
  });
  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-postfix-smtp-'));
    await chmod(dir, 0o755); // the postfix user reads the CA file and its own data directory under here
    const dsn = this.currentTest?.title.includes('DSN') === true;
    server = await startMailServer({ protocols: ['smtp', 'imaps'], users: ['alice:secret@example.com'], smtp: { hostname: 'mx.example.com', dsn } });
    const caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, server.ca, { mode: 0o644 });
    relay = await startPostfixSmtpRelay(dir, server.ports.smtp!, caFile);
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
    await server?.stop();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Hands a message to Postfix's smtpd (plain SMTP on loopback, as a local submitter would). */
  async function submit(to: string[], raw: string, from = 'sender@relay.test'): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: relay!.port, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ envelope: { from, to }, raw });
    } finally {
      t.close();
    }
  }

  /** Postfix's log once it matches `pattern` (postlogd writes a moment after the event). */
  const logMatching = (what: string, pattern: RegExp): Promise<string> =>
    pollUntil(what, async () => {
      const text = await relay!.log();
      return pattern.test(text) ? text : undefined;
    }, 20_000);

  it('delivers over verified STARTTLS with 8-bit text intact, and bounces the recipient Postern refuses with 550 5.1.1', async () => {
    const raw = 'From: sender@relay.test\r\nTo: alice@example.com\r\nSubject: via postfix\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße ✓ from Postfix\r\n';
    await submit(['alice@example.com', 'nobody@example.com'], raw);
    const [msg] = await server!.waitForMessages(1, 20_000);
    expect(msg!.subject).to.equal('via postfix');
    const source = msg!.raw.toString('utf8');
    expect(source).to.contain('\r\n\r\nGrüße ✓ from Postfix\r\n');
    // Postern's trace header names Postfix's EHLO and the TLS it negotiated; Postfix's own is below it.
    expect(source).to.match(/^Return-Path: <sender@relay\.test>\r\nReceived: from mx\.relay\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.com with ESMTPS \(TLSv1\.3:TLS_/);
    expect(source).to.match(/Received: from [^\r\n]*\r\n\tby mx\.relay\.test \(Postfix\)/);
    const port = server!.ports.smtp!;
    // Postfix logs the bounce at RCPT time and alice's delivery after DATA: wait for both lines.
    const log = await logMatching('the bounce of nobody and the delivery to alice', /to=<nobody@example\.com>.*status=bounced[^]*to=<alice@example\.com>.*status=sent|to=<alice@example\.com>.*status=sent[^]*to=<nobody@example\.com>.*status=bounced/);
    expect(log).to.match(new RegExp(`Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}: TLSv1\\.3`));
    expect(log).to.match(new RegExp(`to=<alice@example\\.com>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port},.*status=sent \\(250 2\\.0\\.0 `));
    expect(log).to.match(/to=<nobody@example\.com>.*status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 [^\n]*\(in reply to RCPT TO command\)\)/);
  });

  it('relays an internationalized sender with SMTPUTF8 (RFC 6531) and keeps it in Return-Path', async () => {
    const raw = 'From: Søren <søren@relay.test>\r\nTo: alice@example.com\r\nSubject: utf8 envelope\r\n\r\nhej\r\n';
    await submit(['alice@example.com'], raw, 'søren@relay.test');
    const [msg] = await server!.waitForMessages(1, 20_000);
    expect(msg!.raw.toString('utf8')).to.match(/^Return-Path: <søren@relay\.test>\r\nReceived: from mx\.relay\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.com with UTF8SMTPS /);
    await logMatching('the delivery', /to=<alice@example\.com>.*status=sent \(250 2\.0\.0 /);
  });

  it("passes a client's DSN requests on to Postern with DSN on: ENVID, RET, NOTIFY and the ORCPT Postfix adds", async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: relay!.port, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ from: 'sender@relay.test', to: 'alice@example.com', subject: 'dsn relayed', text: 'x', dsn: { id: 'relay-1', return: 'headers', notify: ['success', 'failure'] } });
    } finally {
      t.close();
    }
    const [msg] = await server!.waitForMessages(1, 20_000);
    expect(msg!.envelope!.dsn).to.deep.equal({ ret: 'HDRS', envid: 'relay-1', recipients: [{ notify: ['SUCCESS', 'FAILURE'], orcpt: { addressType: 'rfc822', address: 'alice@example.com' } }] });
    await logMatching('the delivery', /to=<alice@example\.com>.*status=sent \(250 2\.0\.0 /);
  });

  it("keeps a message Postern defers with 451 in Postfix's queue and delivers it on the retry, once", async () => {
    server!.chaos.set({ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 try again later' }] });
    await submit(['alice@example.com'], 'From: sender@relay.test\r\nTo: alice@example.com\r\nSubject: deferred\r\n\r\nlater\r\n');
    await logMatching('the deferral', /to=<alice@example\.com>.*status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.3\.0 try again later \(in reply to RCPT TO command\)\)/);
    expect(await server!.receivedMessages()).to.deep.equal([]);
    server!.chaos.clear();
    // The deferral is logged before the queue manager has moved the message to the deferred queue; a flush that comes
    // first finds nothing to do. Flush again until the message arrives (a flush never delivers a message twice).
    const msg = await pollUntil('the delivery after postqueue -f', async () => {
      await relay!.flush();
      return (await server!.waitForMessages(1, 2_000).catch(() => undefined))?.[0];
    }, 30_000);
    expect(msg.subject).to.equal('deferred');
    await logMatching('the delivery on the retry', /to=<alice@example\.com>.*status=sent \(250 2\.0\.0 /);
    expect(await server!.receivedMessages()).to.have.length(1);
  });
});
