import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import type { PosternProcess } from '../cli/cli-process.js';
import { ALICE, sendTo, smtpTo, startOnRoot, tlsArgs } from './maildir-process-harness.js';

describe('MaildirMailStore: two postern processes on one root', function () {
  this.timeout(60_000);
  let certs: DevCertificates;
  let dir: string;
  let root: string;
  let tls: string[];
  let a: PosternProcess;
  let b: PosternProcess;
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-maildir-procs-'));
    tls = await tlsArgs(dir, certs);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    root = await mkdtemp(path.join(dir, 'root-'));
    [a, b] = await Promise.all([startOnRoot(root, tls), startOnRoot(root, tls)]);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all([a, b].map((p) => p.stop('SIGKILL')));
  });

  const pop3 = async (p: PosternProcess): Promise<LineClient> => {
    const c = await LineClient.connect(p.ports.pop3s!, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
    clients.push(c);
    await c.expect(/^\+OK/);
    return c;
  };

  it('gives unique, increasing UIDs to concurrent deliveries through both processes', async () => {
    const perProcess = 15;
    const transports = [smtpTo(a.ports.smtp!, certs, true), smtpTo(b.ports.smtp!, certs, true)];
    try {
      await Promise.all(
        transports.flatMap((t, i) => Array.from({ length: perProcess }, (_, n) => sendTo(t, `via ${i ? 'B' : 'A'} #${n}`))),
      );
    } finally {
      for (const t of transports) t.close();
    }
    const reader = new MaildirMailStore({ root });
    const view = await reader.openUser(ALICE.login);
    const messages = await view.messages('INBOX', { peek: true });
    const subjects = await Promise.all(messages.map(async (m) => /^Subject: (.*)$/m.exec((await m.raw()).toString())![1]!.trim()));
    expect(subjects).to.have.length(2 * perProcess);
    expect(new Set(subjects).size).to.equal(2 * perProcess);
    const uids = messages.map((m) => m.uid);
    expect(uids).to.deep.equal([...uids].sort((x, y) => x - y));
    expect(new Set(uids).size).to.equal(uids.length);
    expect(uids[uids.length - 1]).to.equal(2 * perProcess); // no UID lost or handed out twice
    await view.release();
    await reader.close();
  });

  it('shows IMAP IDLE on process B a delivery made through process A', async () => {
    const imap = new ImapFlow({
      host: '127.0.0.1',
      port: b.ports.imaps!,
      secure: true,
      tls: { ca: [certs.ca.cert], servername: 'localhost' },
      auth: { user: ALICE.login, pass: ALICE.password },
      logger: false,
    });
    imap.on('error', () => undefined);
    await imap.connect();
    try {
      const box = await imap.mailboxOpen('INBOX');
      expect(box.exists).to.equal(0);
      const seen = new Promise<number>((resolve) => imap.on('exists', (data: { count: number }) => resolve(data.count)));
      const idling = imap.idle();
      const transport = smtpTo(a.ports.smtp!, certs);
      await sendTo(transport, 'seen over there');
      transport.close();
      expect(await seen).to.equal(1);
      await imap.noop(); // ends IDLE
      await idling;
      const fetched = await imap.fetchOne('1', { envelope: true, uid: true });
      expect(fetched && fetched.envelope?.subject).to.equal('seen over there');
      expect(fetched && fetched.uid).to.equal(1);
    } finally {
      await imap.logout();
    }
  });

  it('refuses the POP3 maildrop on process B with [IN-USE] while process A holds it, and grants it after QUIT', async () => {
    const first = await pop3(a);
    await first.command(`USER ${ALICE.login}`, /^\+OK/);
    await first.command(`PASS ${ALICE.password}`, /^\+OK/);
    const second = await pop3(b);
    await second.command(`USER ${ALICE.login}`, /^\+OK/);
    expect(await second.command(`PASS ${ALICE.password}`, /^-ERR/)).to.deep.equal(['-ERR [IN-USE] maildrop already locked by another session']);
    await first.command('QUIT', /^\+OK/);
    await first.closed();
    const transport = smtpTo(a.ports.smtp!, certs);
    await sendTo(transport, 'fetched over there');
    // Large enough for RETR to stream it from the store: 20,000 lines, some starting with a dot.
    const lines = Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? `.dotted ${i}` : `line ${i} ${'w'.repeat(20)}`));
    await transport.sendMail({ from: 'bob@remote.test', to: ALICE.address, subject: 'big one', text: lines.join('\r\n') + '\r\n' });
    transport.close();
    const third = await pop3(b);
    await third.command(`USER ${ALICE.login}`, /^\+OK/);
    await third.command(`PASS ${ALICE.password}`, /^\+OK/);
    expect((await third.command('RETR 1', /^\.$/)).join('\n')).to.contain('Subject: fetched over there');
    const big = await third.command('RETR 2', /^\.$/);
    const body = big.slice(big.indexOf('') + 1, -1).map((line) => (line.startsWith('..') ? line.slice(1) : line));
    expect(body.filter((line) => /^\.?(dotted|line) \d+/.test(line))).to.deep.equal(lines);
  });

  it('frees the maildrop lock of a process killed with SIGKILL', async () => {
    const holder = await pop3(a);
    await holder.command(`USER ${ALICE.login}`, /^\+OK/);
    await holder.command(`PASS ${ALICE.password}`, /^\+OK/);
    await a.stop('SIGKILL');
    const next = await pop3(b);
    await next.command(`USER ${ALICE.login}`, /^\+OK/);
    await next.command(`PASS ${ALICE.password}`, /^\+OK/);
  });
});

describe('MaildirMailStore: users.json shared by processes on one root', function () {
  this.timeout(60_000);
  let certs: DevCertificates;
  let dir: string;
  let procs: PosternProcess[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-maildir-users-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(procs.splice(0).map((p) => p.stop('SIGKILL')));
  });

  it('keeps the users of two processes started at once with different --user flags, and each serves the other\'s', async () => {
    const root = await mkdtemp(path.join(dir, 'root-'));
    const tls = await tlsArgs(dir, certs);
    // Started together: both add their users at the same moment; without the users lock one write drops the other's.
    procs = await Promise.all([
      startOnRoot(root, tls, ['--user', 'carol:carol-pw@example.test', '--user', 'dave:dave-pw@example.test']),
      startOnRoot(root, tls, ['--user', 'erin:erin-pw@example.test', '--user', 'frank:frank-pw@example.test']),
    ]);
    const [a, b] = procs as [PosternProcess, PosternProcess];
    const file = JSON.parse(await readFile(path.join(root, 'users.json'), 'utf8')) as { users: { username: string }[] };
    expect(file.users.map((u) => u.username).sort()).to.deep.equal(['alice', 'carol', 'dave', 'erin', 'frank']);
    // Each process knows the users the other added: RCPT on A for B's user, IMAP login on B as A's user.
    const smtp = await LineClient.connect(a.ports.smtp!);
    clients.push(smtp);
    await smtp.expect(/^220 /);
    await smtp.command('EHLO client.test', /^250 /);
    await smtp.command('MAIL FROM:<x@remote.test>', /^250 /);
    expect(await smtp.command('RCPT TO:<erin@example.test>', /^\d{3} /)).to.deep.equal(['250 2.1.5 Recipient <erin@example.test> OK']);
    const imap = await LineClient.connect(b.ports.imaps!, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
    clients.push(imap);
    await imap.expect(/^\* OK /);
    expect((await imap.command('a LOGIN carol carol-pw', /^a /)).at(-1)).to.match(/^a OK /);
  });
});
