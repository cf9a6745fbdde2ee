/**
 * "Delivered" notices (RFC 3461 §5.2.2) with `smtp.dsn`: a recipient whose RCPT said NOTIFY=SUCCESS is reported to
 * a local sender in one RFC 3464 report in the sender's INBOX. Python's smtplib sends (SMTP and LMTP), Python's
 * imaplib fetches the report and its email package parses it as a mail client would; the cases that must send
 * nothing, a sender that is not local, a rebound DsnNoticeSender and a failing one are checked too.
 */
import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseCliArgs } from '../../lib/cli/cli-args.js';
import { Logger } from '../../lib/log/logger.js';
import { deliveredNotice, DsnNoticeSender, successNoticeRecipients, type DsnNotice, type LocalDsnNoticeSender } from '../../lib/smtp/dsn-notices.js';
import type { Envelope } from '../../lib/smtp/smtp-backend.js';
import { parseDsnRelayUrl, RelayDsnNoticeSender, type DsnRelayOptions } from '../../lib/smtp/dsn-relay.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { python } from '../support/python.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { usageMessage } from '../cli/cli-process.js';

/** Sends one message with smtplib (`lmtp`: smtplib.LMTP) and prints each recipient's refusal, if any. */
const SEND = `
import smtplib, sys, json
port, lmtp, sender, rcpts, mail_opts, rcpt_opts = int(sys.argv[1]), sys.argv[2] == 'lmtp', sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5]), json.loads(sys.argv[6])
s = smtplib.LMTP('127.0.0.1', port) if lmtp else smtplib.SMTP('127.0.0.1', port, timeout=10)
s.ehlo('client.test')
s.mail(sender, mail_opts)
for r, opts in zip(rcpts, rcpt_opts):
    code, text = s.rcpt(r, opts)
    assert code == 250, (code, text)
code, text = s.data(b'From: <' + sender.encode() + b'>\\r\\nSubject: report me\\r\\nMessage-ID: <m1@client.test>\\r\\n\\r\\nhello\\r\\n')
print(code)
s.quit()
`;

/** Logs in to IMAP as argv[2] and prints the INBOX's last message parsed by Python's email package, as JSON. */
const READ_REPORT = `
import imaplib, sys, json, email
from email import policy
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], 'secret')
typ, data = c.select('INBOX')
n = int(data[0])
typ, data = c.fetch(str(n), '(RFC822)')
m = email.message_from_bytes(data[0][1], policy=policy.compat32)
parts = m.get_payload()
status = parts[1].get_payload()
print(json.dumps({
  'count': n,
  'returnPath': m['Return-Path'], 'from': m['From'], 'to': m['To'], 'subject': m['Subject'], 'autoSubmitted': m['Auto-Submitted'],
  'type': m.get_content_type(), 'reportType': m.get_param('report-type'),
  'parts': [p.get_content_type() for p in parts],
  'perMessage': dict(status[0].items()),
  'perRecipient': [dict(r.items()) for r in status[1:]],
  'headers': parts[2].get_payload(),
}))
c.logout()
`;

interface Report {
  count: number;
  returnPath: string;
  from: string;
  to: string;
  subject: string;
  autoSubmitted: string;
  type: string;
  reportType: string;
  parts: string[];
  perMessage: Record<string, string>;
  perRecipient: Array<Record<string, string>>;
  headers: string;
}

describe('smtp: DSN "delivered" notices (RFC 3461 §5.2.2, RFC 3464)', function () {
  this.timeout(60_000);
  let server: RunningMailServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  const USERS = ['alice:secret@example.com', 'bob:secret@example.com', 'carol:secret@example.com'];
  const start = async (options: Parameters<typeof startMailServer>[0] = {}): Promise<RunningMailServer> =>
    (server = await startMailServer({ protocols: ['smtp', 'imap', 'lmtp'], users: USERS, smtp: { dsn: true, hostname: 'mx.example.com' }, lmtp: { dsn: true, hostname: 'mx.example.com' }, allowInsecureAuth: true, ...options }));

  async function send(s: RunningMailServer, sender: string, rcpts: string[], mailOptions: string[], rcptOptions: string[][], via: 'smtp' | 'lmtp' = 'smtp'): Promise<string> {
    const port = via === 'lmtp' ? s.ports.lmtp! : s.ports.smtp!;
    const out = await python(SEND, [String(port), via, sender, JSON.stringify(rcpts), JSON.stringify(mailOptions), JSON.stringify(rcptOptions)]);
    if (out === undefined) throw new Error('python3 is not installed (.ci/run installs it)');
    return out.trim();
  }
  const readReport = async (s: RunningMailServer, user: string): Promise<Report> => JSON.parse((await python(READ_REPORT, [String(s.ports.imap), user]))!) as Report;
  const inbox = async (s: RunningMailServer, user: string): Promise<string[]> => (await s.receivedMessages()).filter((m) => m.username === user).map((m) => m.subject ?? '');

  it('reports to a local sender, in its INBOX, the recipients that asked for SUCCESS: one RFC 3464 report, read over IMAP', async () => {
    const s = await start();
    const sent = await send(s, 'bob@example.com', ['alice@example.com', 'carol@example.com', 'Alice@Example.com'], ['RET=FULL', 'ENVID=order+2B42'], [
      ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;alice+2Balias@example.com'],
      ['NOTIFY=FAILURE'],
      ['NOTIFY=SUCCESS'],
    ]);
    expect(sent).to.equal('250');
    await s.waitForMessages(3); // alice, carol and bob's report (Alice@Example.com is alice's copy)
    const report = await readReport(s, 'bob');
    expect(report).to.deep.include({
      count: 1,
      returnPath: '<>',
      from: 'Mail Delivery System <MAILER-DAEMON@mx.example.com>',
      to: '<bob@example.com>',
      subject: 'Successful Mail Delivery Report',
      autoSubmitted: 'auto-replied',
      type: 'multipart/report',
      reportType: 'delivery-status',
    });
    expect(report.parts).to.deep.equal(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(report.perMessage).to.include({ 'Reporting-MTA': 'dns; mx.example.com', 'Original-Envelope-Id': 'order+42' });
    expect(new Date(report.perMessage['Arrival-Date']!).getTime()).to.be.closeTo(Date.now(), 60_000);
    expect(report.perRecipient).to.deep.equal([
      { 'Original-Recipient': 'rfc822; alice+alias@example.com', 'Final-Recipient': 'rfc822; alice@example.com', Action: 'delivered', Status: '2.0.0' },
      { 'Final-Recipient': 'rfc822; Alice@Example.com', Action: 'delivered', Status: '2.0.0' },
    ]);
    // Only the headers come back on success, whatever RET says (RFC 3461 §4.3).
    expect(report.headers).to.contain('Subject: report me').and.contain('Message-ID: <m1@client.test>').and.not.contain('hello');
  });

  it('makes a message/global-delivery-status report with utf-8 address types for SMTPUTF8 addresses (RFC 6533)', () => {
    const peer = { id: 'c1', protocol: 'smtp', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security: { tls: false, policyErrors: 0 } } as const;
    const base = { mailParams: { smtpUtf8: true }, helo: 'client.test', protocol: 'UTF8SMTP', peer };
    const utf8 = deliveredNotice({
      hostname: 'mx.example.com',
      envelope: { ...base, mailFrom: 'bøb@exämple.com', rcptTo: ['ålice@example.com', 'carol@example.com'], rcptParams: [{ notify: ['SUCCESS'] }, { notify: ['SUCCESS'] }] },
      delivered: [0, 1],
      message: Buffer.from('Subject: hej\r\n\r\nbody\r\n'),
      arrivedAt: new Date('2026-12-01T12:00:00Z'),
    }).raw.toString('utf8');
    expect(utf8).to.contain('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n');
    expect(utf8).to.contain('Content-Type: message/global-delivery-status\r\nContent-Transfer-Encoding: 8bit\r\n');
    expect(utf8).to.contain('\r\nFinal-Recipient: utf-8; ålice@example.com\r\n').and.contain('\r\nFinal-Recipient: rfc822; carol@example.com\r\n');
    expect(utf8).to.contain('To: <bøb@exämple.com>\r\n').and.contain('Date: Tue, 01 Dec 2026 12:00:00 +0000\r\n');
    const ascii = deliveredNotice({
      hostname: 'mx.example.com',
      envelope: { ...base, mailFrom: 'bob@example.com', rcptTo: ['alice@example.com'], rcptParams: [{ notify: ['SUCCESS'] }] },
      delivered: [0],
      message: Buffer.from('Subject: hej\r\n\r\nbody\r\n'),
      arrivedAt: new Date(),
    }).raw.toString('utf8');
    expect(ascii).to.contain('Content-Type: text/plain; charset=us-ascii\r\n\r\n').and.contain('Content-Type: message/delivery-status\r\n\r\n');
  });

  it('sends nothing for NOTIFY=FAILURE, NEVER, no NOTIFY, or the null sender <>', async () => {
    const log = new RecordingLogger();
    const s = await start({ modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))] });
    expect(await send(s, 'bob@example.com', ['alice@example.com', 'carol@example.com'], [], [['NOTIFY=FAILURE,DELAY'], ['NOTIFY=NEVER']])).to.equal('250');
    expect(await send(s, 'bob@example.com', ['alice@example.com'], [], [[]])).to.equal('250');
    expect(await send(s, '', ['alice@example.com'], [], [['NOTIFY=SUCCESS']])).to.equal('250');
    await s.waitForMessages(4);
    expect(await inbox(s, 'bob')).to.deep.equal([]);
    expect(log.records.filter((r) => r.message.startsWith('delivery notice'))).to.deep.equal([]);
  });

  it('LMTP: one report for the recipients delivered, after the per-recipient replies', async () => {
    const s = await start();
    expect(await send(s, 'carol@example.com', ['alice@example.com', 'bob@example.com'], ['ENVID=lmtp-1'], [['NOTIFY=SUCCESS'], ['NOTIFY=SUCCESS']], 'lmtp')).to.equal('250');
    await s.waitForMessages(3);
    const report = await readReport(s, 'carol');
    expect(report.perMessage['Original-Envelope-Id']).to.equal('lmtp-1');
    expect(report.perRecipient.map((r) => r['Final-Recipient'])).to.deep.equal(['rfc822; alice@example.com', 'rfc822; bob@example.com']);
  });

  it('LMTP: leaves out a recipient refused at DATA (its user removed meanwhile: 550 5.1.1 for it alone)', async () => {
    const s = await start();
    s.setSmtpHooks([{ onData: async (body) => void (body.resume(), await s.store.users.remove!('bob')) }]);
    expect(await send(s, 'carol@example.com', ['alice@example.com', 'bob@example.com'], [], [['NOTIFY=SUCCESS'], ['NOTIFY=SUCCESS']], 'lmtp')).to.equal('250');
    await s.waitForMessages(2);
    const report = await readReport(s, 'carol');
    expect(report.perRecipient.map((r) => r['Final-Recipient'])).to.deep.equal(['rfc822; alice@example.com']);
  });

  it('with authDisabled, stores the report in a mailbox made for the sender, as every other message in that mode', async () => {
    const log = new RecordingLogger();
    const s = await start({ authDisabled: true, users: [], modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))] });
    expect(await send(s, 'app@shop.test', ['customer@example.com'], [], [['NOTIFY=SUCCESS']])).to.equal('250');
    const messages = await s.waitForMessages(2);
    expect(messages.map((m) => [m.username, m.subject]).sort()).to.deep.equal([
      ['app@shop.test', 'Successful Mail Delivery Report'],
      ['customer@example.com', 'report me'],
    ]);
    const stored = log.records.filter((r) => r.message.startsWith('delivery notice'));
    expect(stored.map((r) => [r.level, r.message])).to.deep.equal([['info', 'delivery notice stored']]);
    expect(stored[0]!.meta).to.include({ to: 'app@shop.test', recipients: 1, proto: 'dsn' });
  });

  it('logs (warn) a report for a sender that is not local instead of sending it; the message is delivered', async () => {
    const log = new RecordingLogger();
    const s = await start({ modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))] });
    expect(await send(s, 'someone@elsewhere.test', ['alice@example.com'], [], [['NOTIFY=SUCCESS']])).to.equal('250');
    expect(await inbox(s, 'alice')).to.deep.equal(['report me']);
    const line = log.records.find((r) => r.message.startsWith('delivery notice'));
    expect(line).to.deep.include({ level: 'warn', message: 'delivery notice not sent: the sender is not a local user and no DsnNoticeSender is bound' });
    expect(line!.meta).to.include({ to: 'someone@elsewhere.test', recipients: 1, proto: 'dsn' });
  });

  it('hands every report to a rebound DsnNoticeSender; one that fails is logged and the 250 stands', async () => {
    const notices: DsnNotice[] = [];
    let fail = false;
    const log = new RecordingLogger();
    const sender: DsnNoticeSender = {
      send: async (notice) => {
        if (fail) throw new Error('relay down');
        notices.push(notice);
      },
    };
    const s = await start({ modules: [new ContainerModule(({ rebind }) => (rebind(DsnNoticeSender).toConstantValue(sender), void rebind(Logger).toConstantValue(log)))] });
    expect(await send(s, 'someone@elsewhere.test', ['alice@example.com'], [], [['NOTIFY=SUCCESS']])).to.equal('250');
    expect(notices.map((n) => ({ to: n.to, recipients: n.recipients }))).to.deep.equal([{ to: 'someone@elsewhere.test', recipients: ['alice@example.com'] }]);
    expect(notices[0]!.raw.toString()).to.match(/^From: Mail Delivery System <MAILER-DAEMON@mx\.example\.com>\r\n/);
    fail = true;
    expect(await send(s, 'someone@elsewhere.test', ['alice@example.com'], [], [['NOTIFY=SUCCESS']])).to.equal('250');
    expect(await inbox(s, 'alice')).to.deep.equal(['report me', 'report me']);
    expect(log.records.find((r) => r.message === 'delivery notice failed')).to.deep.include({ level: 'warn', meta: { to: 'someone@elsewhere.test', reason: 'relay down', proto: 'smtp' } });
  });
});

describe('smtp: the "delivered" report, byte for byte (deliveredNotice, successNoticeRecipients)', () => {
  const envelope = (over: Partial<Envelope> = {}): Envelope => ({
    mailFrom: 'bob@example.com',
    mailParams: { smtpUtf8: false, envid: 'order+42' },
    rcptTo: ['alice@example.com', 'carol@example.com', 'Alice@Example.com'],
    rcptParams: [{ notify: ['SUCCESS', 'FAILURE'], orcpt: { addressType: 'rfc822', address: 'alice+alias@example.com' } }, { notify: ['FAILURE'] }, { notify: ['DELAY', 'SUCCESS'] }],
    helo: 'client.test',
    protocol: 'ESMTP',
    peer: {} as Envelope['peer'], // not read by the report
    ...over,
  });
  const arrivedAt = new Date(Date.UTC(2026, 11, 1, 23, 5, 9));
  /** The notice's text with its random boundary and Message-ID replaced by BOUNDARY and ID (each checked for shape). */
  const text = (notice: DsnNotice): string => {
    const raw = notice.raw.toString('utf8');
    const boundary = /boundary="(=_postern_dsn_[0-9a-f]{24})"/.exec(raw)![1]!;
    const id = /^Message-ID: <([0-9a-f]{24})\.dsn@/m.exec(raw)![1]!;
    return raw.split(boundary).join('BOUNDARY').split(id).join('ID');
  };
  const head = (headers: string[]): string[] => [
    'From: Mail Delivery System <MAILER-DAEMON@mx.example.com>',
    'To: <bob@example.com>',
    'Subject: Successful Mail Delivery Report',
    'Date: Tue, 01 Dec 2026 23:05:09 +0000',
    'Message-ID: <ID.dsn@mx.example.com>',
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"',
    '',
    'This is a MIME-encapsulated message.',
    '',
    '--BOUNDARY',
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'This is the mail system at host mx.example.com.',
    '',
    'Your message was delivered to the following recipients:',
    '',
    '  <alice@example.com>: delivered to the mailbox',
    '  <Alice@Example.com>: delivered to the mailbox',
    '',
    '--BOUNDARY',
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    ...headers,
  ];

  it('picks the recipients whose NOTIFY has SUCCESS, in RCPT order; none without parameters or for the null sender', () => {
    expect(successNoticeRecipients(envelope())).to.deep.equal([0, 2]);
    expect(successNoticeRecipients(envelope({ rcptParams: [{}, { notify: ['SUCCESS'] }, { orcpt: { addressType: 'rfc822', address: 'x@y' } }] }))).to.deep.equal([1]);
    expect(successNoticeRecipients(envelope({ rcptParams: undefined }))).to.deep.equal([]);
    expect(successNoticeRecipients(envelope({ mailFrom: '' }))).to.deep.equal([]);
  });

  it('is an RFC 3464 report: every header, the human part, the per-message and per-recipient fields, the header block', () => {
    const message = Buffer.from('From: <bob@example.com>\r\nSubject: report me\r\n\r\nhello\r\n\r\nbye\r\n');
    const notice = deliveredNotice({ hostname: 'mx.example.com', envelope: envelope(), delivered: [0, 2], message, arrivedAt });
    expect(notice.to).to.equal('bob@example.com');
    expect(notice.recipients).to.deep.equal(['alice@example.com', 'Alice@Example.com']);
    expect(text(notice)).to.equal(
      [
        ...head([
          'Reporting-MTA: dns; mx.example.com',
          'Original-Envelope-Id: order+42',
          'Arrival-Date: Tue, 01 Dec 2026 23:05:09 +0000',
          '',
          'Original-Recipient: rfc822; alice+alias@example.com',
          'Final-Recipient: rfc822; alice@example.com',
          'Action: delivered',
          'Status: 2.0.0',
          '',
          'Final-Recipient: rfc822; Alice@Example.com',
          'Action: delivered',
          'Status: 2.0.0',
          '',
          '--BOUNDARY',
          'Content-Description: Message headers',
          'Content-Type: text/rfc822-headers',
          '',
          'From: <bob@example.com>',
          'Subject: report me',
          '',
          '--BOUNDARY--',
          '',
        ]),
      ].join('\r\n'),
    );
    const again = deliveredNotice({ hostname: 'mx.example.com', envelope: envelope(), delivered: [0, 2], message, arrivedAt }).raw.toString();
    expect(/boundary="([^"]+)"/.exec(again)![1], 'a new boundary each time').not.to.equal(/boundary="([^"]+)"/.exec(notice.raw.toString())![1]);
    expect(/^Message-ID: (.*)$/m.exec(again)![1], 'a new Message-ID each time').not.to.equal(/^Message-ID: (.*)$/m.exec(notice.raw.toString())![1]);
  });

  it('without ENVID has no Original-Envelope-Id; a message with no blank line returns whole; DEL is still 7-bit', () => {
    const message = Buffer.from('Subject: only headers\x7f\r\nX-A: 1\r\n');
    const notice = deliveredNotice({ hostname: 'mx.example.com', envelope: envelope({ mailParams: { smtpUtf8: false } }), delivered: [0, 2], message, arrivedAt });
    expect(text(notice)).to.contain(
      ['', 'Reporting-MTA: dns; mx.example.com', 'Arrival-Date: Tue, 01 Dec 2026 23:05:09 +0000', '', 'Original-Recipient: rfc822; alice+alias@example.com', ''].join('\r\n'),
    );
    expect(text(notice)).to.match(/\r\nContent-Type: text\/rfc822-headers\r\n\r\nSubject: only headers\x7f\r\nX-A: 1\r\n\r\n--BOUNDARY--\r\n$/);
  });

  it('returns UTF-8 headers (SMTPUTF8) as message/global-headers, 8bit (RFC 6533 §3.5)', () => {
    const message = Buffer.from('Subject: Grüße\r\n\r\nbody\r\n', 'utf8');
    const notice = deliveredNotice({ hostname: 'mx.example.com', envelope: envelope(), delivered: [2], message, arrivedAt });
    expect(text(notice)).to.match(/\r\n--BOUNDARY\r\nContent-Description: Message headers\r\nContent-Type: message\/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: Grüße\r\n\r\n--BOUNDARY--\r\n$/);
    expect(notice.raw.includes(Buffer.from('Grüße', 'utf8'))).to.equal(true);
  });
});

/** A loopback port nothing listens on (bound once, then closed). */
function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

describe('smtp: DSN notices through a relay (dsnRelay, --dsn-relay)', function () {
  this.timeout(60_000);
  let relay: RunningMailServer;
  let server: RunningMailServer | undefined;
  let log: RecordingLogger;
  before(async () => {
    relay = await startMailServer({ protocols: ['smtp'], authDisabled: true });
  });
  after(async () => relay.stop());
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    await relay.purge();
  });

  const start = async (url: string, queue: Omit<DsnRelayOptions, 'url' | 'ca'> = {}): Promise<RunningMailServer> => {
    log = new RecordingLogger();
    return (server = await startMailServer({
      protocols: ['smtp'],
      users: ['alice:secret@example.com', 'bob:secret@example.com'],
      smtp: { dsn: true, hostname: 'mx.example.com' },
      dsnRelay: { url, ca: relay.ca, ...queue },
      modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))],
    }));
  };
  const send = async (s: RunningMailServer, sender: string): Promise<string> =>
    (await python(SEND, [String(s.ports.smtp), 'smtp', sender, JSON.stringify(['alice@example.com']), '[]', JSON.stringify([['NOTIFY=SUCCESS']])]))!.trim();

  // For RelayDsnNoticeSender on its own: a local sender where no sender is local, and a notice in deliveredNotice's shape.
  const notLocal = { isLocal: async () => false } as unknown as LocalDsnNoticeSender;
  const dsnNotice = (to: string, requireTls = false): DsnNotice => ({
    to,
    recipients: ['alice@example.com'],
    raw: Buffer.from(`From: <mailer-daemon@mx.example.com>\r\nTo: <${to}>\r\nSubject: Successful Mail Delivery Report\r\n\r\nreport\r\n`, 'latin1'),
    ...(requireTls ? { requireTls: true as const } : {}),
  });

  it('relays the report for a sender that is not local from <> over verified STARTTLS (nodemailer), and keeps a local one here', async () => {
    const s = await start(`smtp://127.0.0.1:${relay.ports.smtp}`);
    expect(await send(s, 'app@elsewhere.test')).to.equal('250');
    const [report] = await relay.waitForMessages(1);
    expect(report).to.deep.include({ username: 'app@elsewhere.test', subject: 'Successful Mail Delivery Report' });
    expect(report!.envelope).to.deep.include({ mailFrom: '', rcptTo: ['app@elsewhere.test'] });
    expect(report!.envelope!.tls?.protocol).to.equal('TLSv1.3');
    expect((await log.next('delivery notice relayed')).meta).to.include({ to: 'app@elsewhere.test', relay: `127.0.0.1:${relay.ports.smtp}` });
    expect(await send(s, 'bob@example.com')).to.equal('250');
    await s.waitForMessage((m) => m.username === 'bob' && m.subject === 'Successful Mail Delivery Report');
    expect(await relay.receivedMessages()).to.have.length(1);
  });

  it('smtps:// with a user: implicit TLS from the first byte, logged in to the relay as that user (AUTH over TLS)', async () => {
    const secure = await startMailServer({ protocols: ['smtps'], authDisabled: true });
    try {
      log = new RecordingLogger();
      server = await startMailServer({
        protocols: ['smtp'],
        users: ['alice:secret@example.com'],
        smtp: { dsn: true, hostname: 'mx.example.com' },
        dsnRelay: { url: `smtps://dsn%40mx:p%3Ass@127.0.0.1:${secure.ports.smtps}`, ca: secure.ca },
        modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))],
      });
      expect(await send(server, 'app@elsewhere.test')).to.equal('250');
      const [report] = await secure.waitForMessages(1);
      expect(report).to.deep.include({ username: 'app@elsewhere.test', subject: 'Successful Mail Delivery Report' });
      expect(report!.envelope).to.deep.include({ mailFrom: '', rcptTo: ['app@elsewhere.test'], authUser: 'dsn@mx' });
      expect(report!.envelope!.tls?.protocol).to.equal('TLSv1.3');
      expect((await log.next('delivery notice relayed')).meta).to.include({ to: 'app@elsewhere.test', recipients: 1, relay: `127.0.0.1:${secure.ports.smtps}` });
    } finally {
      await secure.stop();
    }
  });

  it('logs a relay that cannot be reached (delivery notice failed, ECONNREFUSED, a retry planned) and the 250 stands', async () => {
    const closed = await freePort();
    const s = await start(`smtp://127.0.0.1:${closed}`, { retryDelaysMs: [60_000] });
    expect(await send(s, 'app@elsewhere.test')).to.equal('250');
    expect((await s.receivedMessages()).map((m) => m.username)).to.deep.equal(['alice']);
    const failed = await log.next('delivery notice failed');
    expect(failed.meta).to.include({ to: 'app@elsewhere.test', attempt: 1, retryInMs: 60_000 });
    expect(failed.level).to.equal('warn');
    expect(String(failed.meta.reason)).to.contain('ECONNREFUSED');
    // The report waits for its retry in memory; a shutdown says it is lost.
    await s.stop();
    server = undefined;
    expect(log.find('warn', 'delivery notices not relayed').map((r) => r.meta)).to.deep.equal([{ proto: 'dsn', count: 1, to: 'app@elsewhere.test' }]);
  });

  it('answers 250 without waiting for the relay: one that accepts and never greets holds the report, not the client', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const s = await start(`smtp://127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
      const t0 = Date.now();
      expect(await send(s, 'app@elsewhere.test')).to.equal('250');
      // nodemailer waits 30 s for a greeting: the client's 250 came long before that.
      expect(Date.now() - t0).to.be.below(10_000);
      expect(log.find('delivery notice relayed')).to.deep.equal([]);
      expect(log.find('delivery notice failed')).to.deep.equal([]);
      await s.stop();
      server = undefined;
      expect(log.find('warn', 'delivery notices not relayed').map((r) => r.meta)).to.deep.equal([{ proto: 'dsn', count: 1, to: 'app@elsewhere.test' }]);
    } finally {
      silent.close();
    }
  });

  it('retries a relay that was down and relays the report once it is up', async () => {
    const port = await freePort();
    const s = await start(`smtp://127.0.0.1:${port}`, { retryDelaysMs: [500, 500, 500, 500, 500, 500] });
    expect(await send(s, 'app@elsewhere.test')).to.equal('250');
    expect((await log.next('delivery notice failed')).meta).to.include({ to: 'app@elsewhere.test', attempt: 1 });
    const late = await startMailServer({ protocols: ['smtp'], authDisabled: true, ports: { smtp: port } }); // the process's development CA, as `relay`'s
    try {
      const relayed = await log.next('delivery notice relayed', 10_000);
      expect(relayed.meta.attempt).to.be.within(2, 7);
      const [report] = await late.waitForMessages(1);
      expect(report!.username).to.equal('app@elsewhere.test');
      expect(report!.raw.toString('latin1')).to.match(/^Return-Path: <>\r\n/);
    } finally {
      await late.stop();
    }
  });

  it('drops a report the relay refuses with a 5xx reply, without a retry', async () => {
    let sessions = 0;
    // A relay that refuses the null sender: 550 to MAIL FROM:<>.
    const refusing = net.createServer((socket) => {
      sessions++;
      socket.on('error', () => undefined);
      socket.write('220 refusing.test ESMTP\r\n');
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        let end: number;
        while ((end = buffered.indexOf('\r\n')) >= 0) {
          const line = buffered.slice(0, end).toUpperCase();
          buffered = buffered.slice(end + 2);
          if (line.startsWith('EHLO') || line.startsWith('HELO')) socket.write('250 refusing.test\r\n');
          else if (line.startsWith('MAIL')) socket.write('550 5.7.1 No reports here\r\n');
          else if (line.startsWith('QUIT')) socket.end('221 2.0.0 Bye\r\n');
          else socket.write('503 5.5.1 Bad sequence\r\n');
        }
      });
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    try {
      const s = await start(`smtp://127.0.0.1:${(refusing.address() as net.AddressInfo).port}`, { retryDelaysMs: [100, 100] });
      expect(await send(s, 'app@elsewhere.test')).to.equal('250');
      const dropped = await log.next('delivery notice dropped');
      expect(dropped.meta).to.include({ to: 'app@elsewhere.test', attempts: 1, refused: true });
      expect(String(dropped.meta.reason)).to.contain('550 5.7.1 No reports here');
      await new Promise((r) => setTimeout(r, 400));
      expect(sessions).to.equal(1);
      expect(log.find('delivery notice failed')).to.deep.equal([]);
    } finally {
      refusing.close();
    }
  });

  it('gives a report up after its last retry, and holds no more than maxQueued', async () => {
    const closed = await freePort();
    // Waits long enough that the first report is still queued when the second arrives (python starts in ~0.1 s).
    const s = await start(`smtp://127.0.0.1:${closed}`, { retryDelaysMs: [1_000, 1_000], maxQueued: 1 });
    expect(await send(s, 'app@elsewhere.test')).to.equal('250');
    expect(await send(s, 'other@elsewhere.test')).to.equal('250');
    const dropped = (): Array<Record<string, unknown>> => log.find('warn', 'delivery notice dropped').map((r) => r.meta);
    // The second report found the queue full (the first waits for its retries), then the first ran out of them.
    for (let i = 0; i < 200 && dropped().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(dropped()[0]).to.include({ to: 'other@elsewhere.test', reason: 'queue full', max: 1, attempts: 0 });
    expect(dropped()[1]).to.include({ to: 'app@elsewhere.test', attempts: 3 });
    expect(String(dropped()[1]!.reason)).to.contain('ECONNREFUSED');
    expect(log.find('delivery notice failed').map((r) => r.meta.attempt)).to.deep.equal([1, 2]);
  });

  it('relays the report on a REQUIRETLS message under REQUIRETLS (RFC 8689 §5), and drops it at a relay that does not offer it', async () => {
    const relayVia = async (url: string, ca: string): Promise<void> => {
      const sender = new RelayDsnNoticeSender(notLocal, { url, ca, retryDelaysMs: [] }, log);
      await sender.send(dsnNotice('tls@elsewhere.test', true));
      await sender.send(dsnNotice('plain@elsewhere.test'));
      expect(sender.queued).to.equal(2);
      for (let i = 0; i < 200 && sender.queued > 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(sender.queued).to.equal(0);
      await sender.close();
    };
    log = new RecordingLogger();
    await relayVia(`smtp://127.0.0.1:${relay.ports.smtp}`, relay.ca);
    const reports = await relay.waitForMessages(2);
    expect(reports.map((m) => [m.username, m.envelope!.mailFrom, m.envelope!.requireTls])).to.deep.equal([
      ['tls@elsewhere.test', '', true],
      ['plain@elsewhere.test', '', undefined],
    ]);
    expect(log.find('info', 'delivery notice relayed').map((r) => r.meta)).to.deep.equal(
      ['tls@elsewhere.test', 'plain@elsewhere.test'].map((to) => ({ to, recipients: 1, relay: `127.0.0.1:${relay.ports.smtp}`, attempt: 1 })),
    );
    const without = await startMailServer({ protocols: ['smtp'], authDisabled: true, smtp: { requireTlsExtension: false } });
    try {
      log = new RecordingLogger();
      await relayVia(`smtp://127.0.0.1:${without.ports.smtp}`, without.ca);
      expect((await without.receivedMessages()).map((m) => m.username)).to.deep.equal(['plain@elsewhere.test']);
      expect(log.find('warn', 'delivery notice dropped').map((r) => r.meta)).to.deep.equal([
        { to: 'tls@elsewhere.test', reason: 'Server does not support REQUIRETLS extension (RFC 8689)', attempts: 1 },
      ]);
    } finally {
      await without.stop();
    }
  });

  it('stores a local sender\'s notice through the local sender before send() resolves, and queues nothing for the relay', async () => {
    const stored: string[] = [];
    const local = {
      isLocal: async (address: string) => address === 'bob@example.com',
      send: async (n: DsnNotice) => {
        await new Promise((r) => setTimeout(r, 10));
        stored.push(n.to);
      },
    } as unknown as LocalDsnNoticeSender;
    log = new RecordingLogger();
    const sender = new RelayDsnNoticeSender(local, { url: `smtp://127.0.0.1:${await freePort()}` }, log);
    await sender.send(dsnNotice('bob@example.com'));
    expect(stored).to.deep.equal(['bob@example.com']);
    expect(sender.queued).to.equal(0);
    await sender.close();
    expect(log.records).to.deep.equal([]);
  });

  it('gives up an attempt on a relay that greets and then stalls (timeoutMs; nodemailer alone would wait 10 min); the report waits for its retry', async () => {
    // Greets, then answers nothing.
    const stalling = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('220 stalling.test ESMTP\r\n');
    });
    await new Promise<void>((r) => stalling.listen(0, '127.0.0.1', r));
    try {
      log = new RecordingLogger();
      const port = (stalling.address() as net.AddressInfo).port;
      const sender = new RelayDsnNoticeSender(notLocal, { url: `smtp://127.0.0.1:${port}`, retryDelaysMs: [60_000], timeoutMs: 300 }, log);
      const t0 = Date.now();
      await sender.send(dsnNotice('app@elsewhere.test'));
      expect((await log.next('delivery notice failed', 10_000)).meta).to.deep.equal({ to: 'app@elsewhere.test', reason: 'Timeout', attempt: 1, retryInMs: 60_000 });
      expect(Date.now() - t0).to.be.within(250, 5_000);
      expect(sender.queued).to.equal(1);
      await sender.close();
      expect(log.find('warn', 'delivery notices not relayed').map((r) => r.meta)).to.deep.equal([{ count: 1, to: 'app@elsewhere.test' }]);
    } finally {
      stalling.close();
    }
  });

  it('reads smtp:// and smtps:// URLs with their default ports and credentials, and refuses anything else without echoing a password', () => {
    expect(parseDsnRelayUrl('smtp://mx.example.com')).to.deep.equal({ host: 'mx.example.com', port: 25, secure: false });
    expect(parseDsnRelayUrl('smtps://u%40x:p%3Aw@[::1]')).to.deep.equal({ host: '::1', port: 465, secure: true, auth: { user: 'u@x', pass: 'p:w' } });
    expect(parseDsnRelayUrl('smtp://127.0.0.1:2525/')).to.deep.equal({ host: '127.0.0.1', port: 2525, secure: false });
    const refused = (url: string): string => {
      try {
        parseDsnRelayUrl(url);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(refused('http://u:hunter2@relay')).to.equal('expected smtp://HOST[:PORT] or smtps://HOST[:PORT], not a http: URL');
    expect(refused('relay:25')).to.equal('expected smtp://HOST[:PORT] or smtps://HOST[:PORT], not a relay: URL');
    expect(refused('not a url')).to.equal('expected smtp://HOST[:PORT] or smtps://HOST[:PORT]');
    expect(refused('smtp://u:hunter2@relay/x')).to.equal('the relay URL takes no path, query or fragment');
    expect(refused('smtp://relay?tls=no')).to.equal('the relay URL takes no path, query or fragment');
    expect(refused('smtp://relay#x')).to.equal('the relay URL takes no path, query or fragment');
    expect(refused('smtp://')).to.equal('the relay URL names no host');
  });

  it('postern: --dsn-relay needs --dsn, --dsn-relay-ca needs --dsn-relay (and is read as the CA), a bad URL is a usage error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-dsn-relay-'));
    try {
      const caFile = path.join(dir, 'relay-ca.pem');
      await writeFile(caFile, relay.ca);
      const usage = (args: string[]): string => usageMessage(() => parseCliArgs(args));
      expect(usage(['--dsn-relay', 'smtp://relay'])).to.equal('--dsn-relay needs --dsn (it carries the notices DSN asks for)');
      expect(usage(['--dsn-relay-ca', 'ca.pem'])).to.equal('--dsn-relay-ca needs --dsn-relay');
      expect(usage(['--dsn', '--dsn-relay', 'ftp://u:hunter2@relay'])).to.equal('--dsn-relay: expected smtp://HOST[:PORT] or smtps://HOST[:PORT], not a ftp: URL');
      expect(parseCliArgs(['--dsn', '--dsn-relay', 'smtp://relay:2525']).config.dsnRelay).to.deep.equal({ url: 'smtp://relay:2525' });
      expect(parseCliArgs(['--dsn', '--dsn-relay', 'smtp://relay:2525', '--dsn-relay-ca', caFile]).config.dsnRelay).to.deep.equal({ url: 'smtp://relay:2525', ca: relay.ca });
      expect(usage(['--dsn', '--dsn-relay', 'smtp://relay', '--dsn-relay-ca', `${caFile}.missing`])).to.equal(`--dsn-relay-ca: cannot read ${caFile}.missing (ENOENT)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
