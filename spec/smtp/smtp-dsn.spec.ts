/**
 * DSN (RFC 3461) with `smtp.dsn`: EHLO lists it, MAIL takes RET and ENVID, RCPT takes NOTIFY and ORCPT, hooks see the
 * requests and the store keeps them with the message (`envelope.dsn`). Played by Python's smtplib and nodemailer,
 * which send these parameters only to a server that lists DSN; the refusals are checked byte for byte. Without
 * `smtp.dsn` (the default) nothing changes: no DSN keyword, and the parameters get 555.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { RcptParams } from '../../lib/smtp/smtp-backend.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { python } from '../support/python.js';

describe('smtp: DSN (RFC 3461) with smtp.dsn', function () {
  this.timeout(60_000);
  let server: RunningMailServer;
  let plain: RunningMailServer;
  const seen: RcptParams[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    server = await startMailServer({
      protocols: ['smtp'],
      users: ['alice:secret@example.com', 'bob:secret@example.com'],
      smtp: { dsn: true },
      smtpHooks: [{ onRcptTo: async (_to, params) => void seen.push(params) }],
    });
    plain = await startMailServer({ protocols: ['smtp'], users: ['alice:secret@example.com'] });
  });
  after(async () => {
    await server?.stop();
    await plain?.stop();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.purge();
    seen.length = 0;
  });

  async function session(target: RunningMailServer): Promise<LineClient> {
    const c = await LineClient.connect(target.ports.smtp!);
    clients.push(c);
    await c.expect(/^220 /);
    return c;
  }

  it('lists DSN in EHLO only when smtp.dsn is on', async () => {
    const on = await session(server);
    expect(await on.command('EHLO client.test', /^250 /)).to.include('250-DSN');
    const off = await session(plain);
    expect(await off.command('EHLO client.test', /^250 /)).not.to.include('250-DSN');
  });

  it("Python's smtplib: RET, ENVID, NOTIFY and ORCPT reach the hooks and are stored with the message, xtext decoded", async () => {
    const script = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.ehlo('client.test')
assert s.has_extn('dsn')
s.sendmail('sender@client.test', ['alice@example.com', 'bob@example.com'], b'Subject: dsn\\r\\n\\r\\nhello\\r\\n',
  mail_options=['RET=HDRS', 'ENVID=QQ+2B314159'], rcpt_options=['NOTIFY=SUCCESS,failure', 'ORCPT=rfc822;al+2Bice@example.com'])
s.quit()
print('sent')
`;
    const out = await python(script, [String(server.ports.smtp)]);
    if (out === undefined) throw new Error('python3 is not installed (.ci/run installs it)');
    expect(out.trim()).to.equal('sent');
    const [message] = await server.waitForMessages(1);
    expect(message!.envelope!.dsn).to.deep.equal({
      ret: 'HDRS',
      envid: 'QQ+314159',
      recipients: [
        { notify: ['SUCCESS', 'FAILURE'], orcpt: { addressType: 'rfc822', address: 'al+ice@example.com' } },
        { notify: ['SUCCESS', 'FAILURE'], orcpt: { addressType: 'rfc822', address: 'al+ice@example.com' } },
      ],
    });
    expect(seen).to.deep.equal([
      { notify: ['SUCCESS', 'FAILURE'], orcpt: { addressType: 'rfc822', address: 'al+ice@example.com' } },
      { notify: ['SUCCESS', 'FAILURE'], orcpt: { addressType: 'rfc822', address: 'al+ice@example.com' } },
    ]);
  });

  it("nodemailer's dsn option arrives as ENVID, RET=FULL, NOTIFY=NEVER and ORCPT", async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.ports.smtp, ignoreTLS: true });
    try {
      await t.sendMail({ from: 'sender@client.test', to: 'alice@example.com', subject: 'dsn', text: 'x', dsn: { id: 'msg-1', return: 'full', notify: 'never', recipient: 'alice@example.com' } });
    } finally {
      t.close();
    }
    const [message] = await server.waitForMessages(1);
    expect(message!.envelope!.dsn).to.deep.equal({ ret: 'FULL', envid: 'msg-1', recipients: [{ notify: ['NEVER'], orcpt: { addressType: 'rfc822', address: 'alice@example.com' } }] });
  });

  it("the README's example: nodemailer with id, return 'headers' and notify ['failure'], no ORCPT", async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.ports.smtp, ignoreTLS: true });
    try {
      await t.sendMail({ from: 'sender@client.test', to: 'alice@example.com', subject: 'dsn', text: 'x', dsn: { id: 'order-42', return: 'headers', notify: ['failure'] } });
    } finally {
      t.close();
    }
    const [m] = await server.waitForMessages(1);
    expect(m!.envelope?.dsn).to.deep.equal({ ret: 'HDRS', envid: 'order-42', recipients: [{ notify: ['FAILURE'] }] });
  });

  it('the Maildir store keeps envelope.dsn on disk: a server started again on the directory reads it back', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-dsn-'));
    try {
      const first = await startMailServer({ protocols: ['smtp'], store: `maildir:${dir}`, users: ['alice:secret@example.com'], smtp: { dsn: true } });
      try {
        const t = nodemailer.createTransport({ host: '127.0.0.1', port: first.ports.smtp, ignoreTLS: true });
        await t.sendMail({ from: 'sender@client.test', to: 'alice@example.com', subject: 'kept', text: 'x', dsn: { id: 'E1', return: 'full', notify: ['success', 'delay'], recipient: 'alice@example.com' } });
        t.close();
        await first.waitForMessages(1);
      } finally {
        await first.stop();
      }
      const again = await startMailServer({ protocols: ['smtp'], store: `maildir:${dir}` });
      try {
        const [m] = await again.receivedMessages();
        expect(m!.envelope!.dsn).to.deep.equal({ ret: 'FULL', envid: 'E1', recipients: [{ notify: ['SUCCESS', 'DELAY'], orcpt: { addressType: 'rfc822', address: 'alice@example.com' } }] });
      } finally {
        await again.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps {} for recipients without parameters beside one with, and stores no dsn for a transaction without any', async () => {
    const c = await session(server);
    await c.command('EHLO client.test', /^250 /);
    await c.command('MAIL FROM:<sender@client.test>', /^250 /);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('RCPT TO:<bob@example.com> NOTIFY=DELAY', /^250 /);
    await c.command('DATA', /^354 /);
    await c.command('Subject: mixed\r\n\r\nx\r\n.', /^250 /);
    await c.command('MAIL FROM:<sender@client.test>', /^250 /);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('DATA', /^354 /);
    await c.command('Subject: none\r\n\r\nx\r\n.', /^250 /);
    const messages = await server.waitForMessages(3);
    const mixed = messages.filter((m) => m.subject === 'mixed');
    expect(mixed.map((m) => m.envelope!.dsn)).to.deep.equal([{ recipients: [{}, { notify: ['DELAY'] }] }, { recipients: [{}, { notify: ['DELAY'] }] }]);
    expect(messages.find((m) => m.subject === 'none')!.envelope).not.to.have.property('dsn');
  });

  it('refuses malformed DSN parameters with 501 5.5.4 and the rule, and the transaction goes on', async () => {
    const c = await session(server);
    await c.command('EHLO client.test', /^250 /);
    const refusals: [string, string][] = [
      ['MAIL FROM:<s@client.test> RET=BODY', '501 5.5.4 RET must be FULL or HDRS'],
      ['MAIL FROM:<s@client.test> RET', '501 5.5.4 RET must be FULL or HDRS'],
      [`MAIL FROM:<s@client.test> ENVID=${'x'.repeat(101)}`, '501 5.5.4 ENVID must be 1 to 100 printable US-ASCII characters (xtext)'],
      ['MAIL FROM:<s@client.test> ENVID=a+20b', '501 5.5.4 ENVID must be 1 to 100 printable US-ASCII characters (xtext)'],
      ['MAIL FROM:<s@client.test> ENVID=a+zz', '501 5.5.4 Bad xtext encoding'],
      ['MAIL FROM:<s@client.test> RET=FULL RET=HDRS', '501 5.5.4 Duplicate parameter RET'],
    ];
    for (const [line, reply] of refusals) expect(await c.command(line, /^\d{3} /), line).to.deep.equal([reply]);
    await c.command('MAIL FROM:<s@client.test> RET=hdrs', /^250 /);
    const rcpt: [string, string][] = [
      ['RCPT TO:<alice@example.com> NOTIFY=NEVER,SUCCESS', '501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE and DELAY'],
      ['RCPT TO:<alice@example.com> NOTIFY=SOMETIMES', '501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE and DELAY'],
      ['RCPT TO:<alice@example.com> NOTIFY=SUCCESS,SUCCESS', '501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE and DELAY'],
      ['RCPT TO:<alice@example.com> NOTIFY=', '501 5.5.4 Bad parameter syntax'],
      ['RCPT TO:<alice@example.com> ORCPT=alice@example.com', '501 5.5.4 ORCPT must be addr-type;xtext (e.g. rfc822;alice@example.com)'],
      ['RCPT TO:<alice@example.com> ORCPT=rfc_822;alice@example.com', '501 5.5.4 ORCPT must be addr-type;xtext (e.g. rfc822;alice@example.com)'],
      ['RCPT TO:<alice@example.com> ORCPT=rfc822;al+zzice@example.com', '501 5.5.4 Bad xtext encoding'],
      [`RCPT TO:<alice@example.com> ORCPT=rfc822;${'a'.repeat(495)}@x.test`, '501 5.5.4 ORCPT must be addr-type;xtext (e.g. rfc822;alice@example.com)'],
      ['RCPT TO:<alice@example.com> XFOO=1', '555 5.5.4 RCPT parameter XFOO not recognized'],
    ];
    for (const [line, reply] of rcpt) expect(await c.command(line, /^\d{3} /), line).to.deep.equal([reply]);
    expect(await c.command('RCPT TO:<alice@example.com> NOTIFY=never ORCPT=RFC822;alice@example.com', /^\d{3} /)).to.deep.equal(['250 2.1.5 Recipient <alice@example.com> OK']);
    expect(seen).to.deep.equal([{ notify: ['NEVER'], orcpt: { addressType: 'rfc822', address: 'alice@example.com' } }]);
  });

  it('without smtp.dsn (the default) the four parameters are unknown ones: 555 5.5.4', async () => {
    const c = await session(plain);
    await c.command('EHLO client.test', /^250 /);
    expect(await c.command('MAIL FROM:<s@client.test> RET=FULL', /^\d{3} /)).to.deep.equal(['555 5.5.4 MAIL parameter RET not recognized']);
    expect(await c.command('MAIL FROM:<s@client.test> ENVID=x', /^\d{3} /)).to.deep.equal(['555 5.5.4 MAIL parameter ENVID not recognized']);
    await c.command('MAIL FROM:<s@client.test>', /^250 /);
    expect(await c.command('RCPT TO:<alice@example.com> NOTIFY=NEVER', /^\d{3} /)).to.deep.equal(['555 5.5.4 RCPT parameter NOTIFY not recognized']);
    expect(await c.command('RCPT TO:<alice@example.com> ORCPT=rfc822;alice@example.com', /^\d{3} /)).to.deep.equal(['555 5.5.4 RCPT parameter ORCPT not recognized']);
  });
});
