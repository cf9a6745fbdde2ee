/**
 * The `postern` command as an operator runs it (Maildir store, users with scrypt-hashed passwords) against the
 * command-line mail clients people point at a real server: msmtp and s-nail (submission), mpop and fetchmail (POP3 and
 * IMAP retrieval) and mbsync (two-way IMAP synchronisation). Each goes over STARTTLS/STLS or implicit TLS with the
 * test CA, and what it did is checked from the other side (imapflow, or the files it wrote).
 */
import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';
import { mbsyncConfig, runTool, type ToolRun } from '../support/tool.js';
import { startPostern, type PosternProcess } from './cli-process.js';

const ANY_PORTS = ['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps', 'http'].flatMap((n) => [`--${n}-port`, '0']);
const MESSAGE = 'From: alice@example.com\nTo: alice@example.com\nSubject: SUBJECT\n\nfirst line\n.a line that starts with a dot\nlast line\n';

/** One message as imapflow sees it. */
interface Seen {
  readonly uid: number;
  readonly subject: string;
  readonly flags: string[];
  readonly source: string;
}

describe('cli: real mail clients against the postern command (Maildir store)', function () {
  this.timeout(60_000);
  let certs: DevCertificates;
  let dir: string;
  let work: string;
  let p: PosternProcess;
  let runs = 0;

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-clients-'));
    await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
    await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
    await writeFile(path.join(dir, 'ca.pem'), certs.ca.cert);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    work = path.join(dir, `run-${++runs}`);
    await mkdir(path.join(work, 'home'), { recursive: true });
    const cert = ['--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem')];
    p = startPostern([...ANY_PORTS, ...cert, '--user', 'alice:secret@example.com', '--store', `maildir:${path.join(work, 'store')}`]);
    await p.ready(7);
  });
  afterEach(async () => {
    await p.stop();
  });

  const ca = (): string => path.join(dir, 'ca.pem');
  const env = (): Record<string, string> => ({ HOME: path.join(work, 'home') });

  /** Runs a client tool; pending when it is not installed (`.ci/run` installs it). */
  async function tool(ctx: Mocha.Context, command: string, args: readonly string[], input?: string): Promise<ToolRun> {
    const run = await runTool(command, args, { input, env: env() });
    if (run === undefined) ctx.skip();
    return run!;
  }

  /** Delivers `subject` to alice over STARTTLS with nodemailer. */
  async function deliver(subject: string): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: p.ports.smtp, requireTLS: true, auth: { user: 'alice', pass: 'secret' }, tls: { ca: certs.ca.cert, servername: 'localhost' } });
    try {
      await t.sendMail({ envelope: { from: 'alice@example.com', to: ['alice@example.com'] }, raw: MESSAGE.replace('SUBJECT', subject) });
    } finally {
      t.close();
    }
  }

  /** The messages of `mailbox`, in UID order, as imapflow reads them over implicit TLS. */
  async function mailbox(name = 'INBOX'): Promise<Seen[]> {
    const client = new ImapFlow({ host: '127.0.0.1', port: p.ports.imaps!, secure: true, tls: { ca: certs.ca.cert, servername: 'localhost' }, auth: { user: 'alice', pass: 'secret' }, logger: false });
    await client.connect();
    try {
      const lock = await client.getMailboxLock(name);
      try {
        const seen: Seen[] = [];
        if ((client.mailbox as { exists: number }).exists === 0) return seen;
        for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true, source: true })) {
          seen.push({ uid: m.uid, subject: m.envelope?.subject ?? '', flags: [...(m.flags ?? [])].sort(), source: m.source?.toString('utf8') ?? '' });
        }
        return seen;
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  }

  /** The server's log lines that report a failed login (stderr, info level). */
  const failedLogins = (): string[] => p.stderr.split('\n').filter((l) => / auth failed /.test(l));

  describe('msmtp', () => {
    const msmtp = (port: number, extra: readonly string[]): string[] => [
      '--host=localhost',
      `--port=${port}`,
      '--tls=on',
      `--tls-trust-file=${ca()}`,
      '--user=alice',
      '--from=alice@example.com',
      ...extra,
      'alice@example.com',
    ];

    it('submits over STARTTLS (AUTH PLAIN) and implicit TLS (AUTH LOGIN); a line starting with a dot arrives as written', async function () {
      const starttls = await tool(this, 'msmtp', msmtp(p.ports.smtp!, ['--tls-starttls=on', '--auth=on', '--passwordeval=echo secret']), MESSAGE.replace('SUBJECT', 'msmtp starttls'));
      expect(starttls.code, starttls.stderr).to.equal(0);
      const implicit = await tool(this, 'msmtp', msmtp(p.ports.smtps!, ['--tls-starttls=off', '--auth=login', '--passwordeval=echo secret']), MESSAGE.replace('SUBJECT', 'msmtp implicit'));
      expect(implicit.code, implicit.stderr).to.equal(0);
      const inbox = await mailbox();
      expect(inbox.map((m) => m.subject)).to.deep.equal(['msmtp starttls', 'msmtp implicit']);
      expect(inbox[0]!.source).to.contain('\r\nfirst line\r\n.a line that starts with a dot\r\nlast line\r\n');
      expect(inbox[0]!.source).to.match(/with ESMTPSA \(TLSv1\.3:/);
    });

    it('is refused with 535 5.7.8 for a wrong password, and finds no AUTH before STARTTLS', async function () {
      const wrong = await tool(this, 'msmtp', msmtp(p.ports.smtps!, ['--tls-starttls=off', '--auth=plain', '--passwordeval=echo wrong']), MESSAGE);
      expect(wrong.code).to.equal(77); // EX_NOPERM
      expect(wrong.stderr).to.contain('server message: 535 5.7.8 Authentication credentials invalid');
      const plain = await tool(this, 'msmtp', [...msmtp(p.ports.smtp!, ['--auth=on', '--passwordeval=echo secret'])].map((a) => (a === '--tls=on' ? '--tls=off' : a)), MESSAGE);
      expect(plain.code).to.equal(69); // EX_UNAVAILABLE
      expect(plain.stderr).to.contain('the server does not support authentication');
      expect(await mailbox()).to.deep.equal([]);
    });

    it('finds no CRAM-MD5 on a store that keeps only password hashes (it could never succeed)', async function () {
      const cram = await tool(this, 'msmtp', msmtp(p.ports.smtp!, ['--tls-starttls=on', '--auth=cram-md5', '--passwordeval=echo secret']), MESSAGE);
      expect(cram.code).to.equal(69);
      expect(cram.stderr).to.contain('the server does not support authentication method CRAM-MD5');
      expect(failedLogins()).to.deep.equal([]);
    });
  });

  describe('mpop', () => {
    const mpop = (port: number, extra: readonly string[]): string[] => [
      '--host=localhost',
      `--port=${port}`,
      '--tls=on',
      `--tls-trust-file=${ca()}`,
      '--user=alice',
      '--passwordeval=echo secret',
      `--uidls-file=${path.join(work, 'uidls')}`,
      ...extra,
    ];

    it('retrieves over STLS (USER/PASS) keeping the mail, then over implicit TLS (AUTH PLAIN) deleting it', async function () {
      await deliver('pop one');
      await deliver('pop two');
      const box = path.join(work, 'pop-maildir');
      for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(box, sub), { recursive: true });
      const keep = await tool(this, 'mpop', mpop(p.ports.pop3!, ['--tls-starttls=on', '--auth=user', `--delivery=maildir,${box}`, '--keep=on']));
      expect(keep.code, keep.stderr).to.equal(0);
      const files = await readdir(path.join(box, 'new'));
      const texts = await Promise.all(files.map((f) => readFile(path.join(box, 'new', f), 'utf8')));
      expect(texts.map((t) => /^Subject: (.*)$/m.exec(t)?.[1]).sort()).to.deep.equal(['pop one', 'pop two']);
      expect(texts[0]).to.contain('\n.a line that starts with a dot\n'); // dot-unstuffed by the client, as sent
      expect((await mailbox()).length).to.equal(2);
      const mbox = path.join(work, 'pop.mbox');
      const take = await tool(this, 'mpop', mpop(p.ports.pop3s!, ['--tls-starttls=off', '--auth=plain', `--delivery=mbox,${mbox}`, '--keep=off', '--only-new=off']));
      expect(take.code, take.stderr).to.equal(0);
      expect((await readFile(mbox, 'utf8')).match(/^From /gm)).to.have.length(2);
      expect(await mailbox(), 'DELE then QUIT removed both').to.deep.equal([]);
    });

    it('finds no APOP on a store that keeps only password hashes', async function () {
      const apop = await tool(this, 'mpop', mpop(p.ports.pop3s!, ['--tls-starttls=off', '--auth=apop', `--delivery=mbox,${path.join(work, 'x.mbox')}`]));
      expect(apop.code).to.equal(69);
      expect(apop.stderr).to.contain('POP3 server does not support authentication method APOP');
    });
  });

  describe('fetchmail', () => {
    /** Runs fetchmail with a private rc file (it insists on mode 0600) and an MDA that appends to `out`. */
    async function fetchmail(ctx: Mocha.Context, poll: string, out: string, implicitTls = false): Promise<ToolRun> {
      const rc = path.join(work, 'fetchmailrc');
      const tls = `${implicitTls ? 'ssl ' : ''}sslproto tls1.2+ sslcertck sslcertfile "${ca()}"`;
      await writeFile(rc, `${poll}\n  user "alice" password "secret" ${tls}\n  keep mda "/bin/sh -c 'cat >> ${out}'"\n`);
      await chmod(rc, 0o600);
      return tool(ctx, 'fetchmail', ['-f', rc, '-v', '--nosyslog', '-i', path.join(work, 'fetchids'), '--pidfile', path.join(work, 'fetchmail.pid')]);
    }

    it('fetches over IMAP STARTTLS and POP3 implicit TLS, logging in at its first attempt', async function () {
      await deliver('fetch one');
      await deliver('fetch two');
      const imapOut = path.join(work, 'imap.out');
      const imap = await fetchmail(this, `poll localhost service ${p.ports.imap} protocol IMAP`, imapOut);
      expect(imap.code, imap.stdout + imap.stderr).to.equal(0);
      expect(imap.stdout + imap.stderr).to.contain('2 messages for alice at localhost');
      expect((await readFile(imapOut, 'utf8')).match(/^Subject: fetch (one|two)$/gm)).to.deep.equal(['Subject: fetch one', 'Subject: fetch two']);
      const popOut = path.join(work, 'pop.out');
      const pop = await fetchmail(this, `poll localhost service ${p.ports.pop3s} protocol POP3 uidl`, popOut, true);
      expect(pop.code, pop.stdout + pop.stderr).to.equal(0);
      expect((await readFile(popOut, 'utf8')).match(/^Subject: fetch (one|two)$/gm)).to.have.length(2);
      // fetchmail tries CRAM-MD5 first when it is offered: were it offered without the secret to check it, each poll
      // would cost a refused login, its delay, and a step towards the account's lockout.
      expect(imap.stdout + imap.stderr).not.to.contain('AUTHENTICATE CRAM-MD5');
      expect(failedLogins()).to.deep.equal([]);
      expect((await mailbox()).map((m) => m.flags)).to.deep.equal([['\\Seen'], ['\\Seen']]); // IMAP fetch marks them read
    });

    it('fetches over POP3 STLS, upgrading before anything of the login leaves, at its first attempt', async function () {
      await deliver('stls one');
      const out = path.join(work, 'stls.out');
      const run = await fetchmail(this, `poll localhost service ${p.ports.pop3} protocol POP3 uidl`, out);
      const log = run.stdout + run.stderr;
      expect(run.code, log).to.equal(0);
      expect(log).to.contain('upgrade to TLS succeeded');
      const upgrade = log.indexOf('POP3> STLS');
      expect(upgrade, log).to.be.greaterThan(0);
      // Nothing of the login (USER, PASS, APOP, AUTH) goes out before the upgrade; after it, exactly one login.
      expect(log.slice(0, upgrade)).not.to.match(/POP3> (USER|PASS|APOP|AUTH)/);
      expect(log.slice(upgrade).match(/POP3< \+OK maildrop locked/g)).to.have.length(1);
      expect((await readFile(out, 'utf8')).match(/^Subject: stls one$/gm)).to.have.length(1);
      expect(failedLogins()).to.deep.equal([]);
    });
  });

  describe('mbsync (isync)', () => {
    it('pulls every folder over STARTTLS, pushes a new draft, a flag and an expunge back, then pulls new mail over IMAPS', async function () {
      await deliver('sync one');
      await deliver('sync two');
      const local = path.join(work, 'mbsync');
      await mkdir(local);
      const rc = path.join(work, 'mbsyncrc');
      const config = (ssl: 'STARTTLS' | 'IMAPS', port: number): string =>
        mbsyncConfig({ port, ssl, user: 'alice', pass: 'secret', ca: ca(), local, channel: ['Patterns *', 'Create Both', 'Expunge Both', 'SyncState *'] });
      await writeFile(rc, config('STARTTLS', p.ports.imap!));
      const first = await tool(this, 'mbsync', ['-c', rc, '-a']);
      expect(first.code, first.stderr).to.equal(0);
      expect((await readdir(local)).sort()).to.deep.equal(['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
      // Unread mail lands in new/ (Maildir), with the server UID and no flags in the name (`,U=<uid>:2,`).
      const pulled = (await readdir(path.join(local, 'INBOX', 'new'))).sort();
      expect(pulled.map((f) => /,U=(\d+):2,$/.exec(f)?.[1]), pulled.join(' ')).to.deep.equal(['1', '2']);
      // Locally: flag and read the first message, trash the second (Maildir flag T: expunged on both sides), write a draft.
      await rename(path.join(local, 'INBOX', 'new', pulled[0]!), path.join(local, 'INBOX', 'cur', `${pulled[0]!}FS`));
      await rename(path.join(local, 'INBOX', 'new', pulled[1]!), path.join(local, 'INBOX', 'cur', `${pulled[1]!}T`));
      await writeFile(path.join(local, 'Drafts', 'cur', '100.local:2,D'), 'From: alice@example.com\nTo: bob@example.com\nSubject: a local draft\n\ndraft\n');
      const second = await tool(this, 'mbsync', ['-c', rc, '-a']);
      expect(second.code, second.stderr).to.equal(0);
      const inbox = await mailbox();
      expect(inbox.map((m) => [m.subject, m.flags])).to.deep.equal([['sync one', ['\\Flagged', '\\Seen']]]);
      expect((await mailbox('Drafts')).map((m) => [m.subject, m.flags])).to.deep.equal([['a local draft', ['\\Draft']]]);
      // The draft got its server UID through UIDPLUS (APPENDUID): mbsync records it in the file name.
      expect(await readdir(path.join(local, 'Drafts', 'cur'))).to.deep.equal([`100.local,U=${(await mailbox('Drafts'))[0]!.uid}:2,D`]);
      await deliver('sync three');
      await writeFile(rc, config('IMAPS', p.ports.imaps!));
      const third = await tool(this, 'mbsync', ['-c', rc, '-a']);
      expect(third.code, third.stderr).to.equal(0);
      const now = await Promise.all((await readdir(path.join(local, 'INBOX', 'new'))).map((f) => readFile(path.join(local, 'INBOX', 'new', f), 'utf8')));
      expect(now.map((t) => /^Subject: (.*)$/m.exec(t)?.[1])).to.deep.equal(['sync three']);
    });
  });

  describe('s-nail', () => {
    /** s-nail with no resource files (`-:/`), v15 URLs with the password in them, and the test CA only. */
    const snail = (extra: readonly string[]): string[] => ['-:/', '-Sv15-compat', '-Sttycharset=utf-8', `-Stls-ca-file=${ca()}`, '-Stls-ca-no-defaults', ...extra];

    it('sends over implicit TLS and STARTTLS, then lists the mailbox over IMAPS', async function () {
      const send = (mta: readonly string[], subject: string): Promise<ToolRun> => tool(this, 's-nail', snail(['-Ssendwait', '-Sfrom=alice@example.com', ...mta, '-s', subject, 'alice@example.com']), 'body\n');
      const implicit = await send([`-Smta=smtps://alice:secret@localhost:${p.ports.smtps}`], 'nail implicit');
      expect(implicit.code, implicit.stderr).to.equal(0);
      const starttls = await send([`-Smta=smtp://alice:secret@localhost:${p.ports.smtp}`, '-Ssmtp-use-starttls'], 'nail starttls');
      expect(starttls.code, starttls.stderr).to.equal(0);
      const list = await tool(this, 's-nail', snail(['-N', '-f', `imaps://alice:secret@localhost:${p.ports.imaps}/INBOX`]), 'headers\nquit\n');
      expect(list.code, list.stderr).to.equal(0);
      expect(list.stdout).to.match(/ 1 alice@example\.com .* nail implicit/);
      expect(list.stdout).to.match(/ 2 alice@example\.com .* nail starttls/);
      expect((await mailbox()).map((m) => m.subject)).to.deep.equal(['nail implicit', 'nail starttls']);
    });
  });
});
