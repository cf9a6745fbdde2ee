/**
 * Dovecot's dsync as the IMAP client: `doveadm backup -R … imapc:` migrates a mailbox out of Postern over IMAPS (the
 * certificate verified), the way an operator moves users from one server to another. Dovecot's imapc is a strict
 * client (LIST with special-use, STATUS, SELECT, UID FETCH of flags, sizes, headers and bodies); the copy must keep
 * every folder (a hierarchy and a non-ASCII name in modified UTF-7), UIDVALIDITY and UIDs, flags and keywords, and
 * every byte of each message.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { accountIds, pollUntil, stopProcess } from '../../bench/refs/processes.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { installedAndRoot } from '../support/tool.js';

const run = promisify(execFile);

/** What one folder holds, as either side reports it. */
interface Folder {
  readonly uidValidity: number;
  readonly uidNext: number;
  readonly messages: ReadonlyArray<{ uid: number; flags: string[]; subject: string }>;
}

describe('imap: Dovecot dsync migrates a mailbox out of Postern (imapc over IMAPS)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningMailServer | undefined;
  let dovecot: ChildProcess | undefined;

  before(async function () {
    // dovecot-core missing (.ci/run installs dovecot-imapd) or not root (Dovecot's master starts as root; CI is root).
    if (!(await installedAndRoot('doveadm', ['help']))) this.skip();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-dsync-'));
    await chmod(dir, 0o755);
  });
  afterEach(async () => {
    await stopProcess(dovecot);
    dovecot = undefined;
    await server?.stop();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes a Dovecot configuration that only runs auth (no listeners) and points imapc at Postern's IMAPS port. */
  async function startDovecot(imapsPort: number, ca: string): Promise<string> {
    const nobody = accountIds('nobody');
    const home = path.join(dir, 'home');
    await mkdir(home);
    await chown(home, nobody.uid, nobody.gid);
    await writeFile(path.join(dir, 'ca.pem'), ca, { mode: 0o644 });
    const conf = path.join(dir, 'dovecot.conf');
    await writeFile(
      conf,
      [
        `base_dir = ${path.join(dir, 'run')}`,
        `state_dir = ${path.join(dir, 'state')}`,
        `log_path = ${path.join(dir, 'dovecot.log')}`,
        'protocols =',
        'ssl = no',
        'default_internal_user = nobody',
        'default_login_user = nobody',
        'first_valid_uid = 1',
        'passdb {\n  driver = static\n  args = password=unused\n}',
        `userdb {\n  driver = static\n  args = uid=${nobody.uid} gid=${nobody.gid} home=${home}/%u\n}`,
        'mail_location = maildir:~/Maildir',
        'namespace inbox {\n  inbox = yes\n  separator = /\n}',
        `ssl_client_ca_file = ${path.join(dir, 'ca.pem')}`,
        'imapc_host = localhost',
        `imapc_port = ${imapsPort}`,
        'imapc_ssl = imaps',
        'imapc_ssl_verify = yes',
        'imapc_user = alice',
        'imapc_password = secret',
        'imapc_features = rfc822.size fetch-headers',
        '',
      ].join('\n'),
    );
    dovecot = spawn('dovecot', ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    dovecot.on('error', () => undefined);
    await pollUntil('Dovecot auth socket', () => (existsSync(path.join(dir, 'run', 'auth-userdb')) ? true : undefined), 20_000, 50);
    return conf;
  }

  /** `doveadm -c conf ARGS…`, its stdout. */
  async function doveadm(conf: string, args: string[]): Promise<string> {
    const { stdout } = await run('doveadm', ['-c', conf, ...args], { timeout: 45_000, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  }

  /** doveadm's `-f tab` output as one record per row, keyed by its header line's names. */
  function table(output: string): Array<Record<string, string>> {
    const [header, ...rows] = output.replace(/\n$/, '').split('\n');
    const names = header!.split('\t');
    return rows.map((row) => Object.fromEntries(row.split('\t').map((v, i) => [names[i]!, v])));
  }

  /** Each folder of alice on Postern as imapflow sees it. */
  async function postern(s: RunningMailServer): Promise<Map<string, Folder>> {
    const client = new ImapFlow({ host: '127.0.0.1', port: s.ports.imaps!, secure: true, tls: { ca: s.ca, servername: 'localhost' }, auth: { user: 'alice', pass: 'secret' }, logger: false });
    await client.connect();
    try {
      const out = new Map<string, Folder>();
      for (const box of await client.list()) {
        const lock = await client.getMailboxLock(box.path, { readOnly: true });
        try {
          const mailbox = client.mailbox as { uidValidity: bigint; uidNext: number; exists: number };
          const messages: Array<{ uid: number; flags: string[]; subject: string }> = [];
          if (mailbox.exists > 0) {
            for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) {
              messages.push({ uid: m.uid, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(), subject: m.envelope?.subject ?? '' });
            }
          }
          out.set(box.path, { uidValidity: Number(mailbox.uidValidity), uidNext: mailbox.uidNext, messages });
        } finally {
          lock.release();
        }
      }
      return out;
    } finally {
      await client.logout();
    }
  }

  it('copies every folder with its UIDVALIDITY, UIDs, flags, keywords and bytes', async () => {
    server = await startMailServer({ protocols: ['imaps'], users: ['alice:secret@example.com'] });
    const s = server;
    const client = new ImapFlow({ host: '127.0.0.1', port: s.ports.imaps!, secure: true, tls: { ca: s.ca, servername: 'localhost' }, auth: { user: 'alice', pass: 'secret' }, logger: false });
    await client.connect();
    const big = `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n\r\n${`${'y'.repeat(998)}\r\n`.repeat(1100)}`;
    const small = (subject: string): string => `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/ /g, '.')}@example.com>\r\n\r\nhello ${subject}\r\n`;
    try {
      for (const box of ['Archive/2025', 'Ärger', 'Work']) await client.mailboxCreate(box);
      await client.append('INBOX', small('first'), ['\\Seen']);
      await client.append('INBOX', small('second'), ['\\Answered', '$Forwarded']);
      await client.append('INBOX', small('third'), []);
      await client.mailboxOpen('INBOX');
      expect(await client.messageDelete('1', { uid: true })).to.equal(true); // the copy must keep UIDs 2 and 3, not renumber
      await client.mailboxClose();
      await client.append('INBOX', small('flagged but deleted'), ['\\Flagged', '\\Deleted']);
      await client.append('Archive/2025', small('archived'), ['\\Seen', 'Important']);
      await client.append('Ärger', small('umlaut folder'), ['\\Flagged']);
      await client.append('Work', big, ['\\Draft']);
    } finally {
      await client.logout();
    }
    const before = await postern(s);
    expect(before.get('INBOX')!.messages).to.deep.equal([
      { uid: 2, flags: ['$Forwarded', '\\Answered'], subject: 'second' },
      { uid: 3, flags: [], subject: 'third' },
      { uid: 4, flags: ['\\Deleted', '\\Flagged'], subject: 'flagged but deleted' },
    ]);
    const conf = await startDovecot(s.ports.imaps!, s.ca);
    await doveadm(conf, ['backup', '-R', '-u', 'alice', 'imapc:']);
    // Folders, UIDVALIDITY and UIDNEXT, as Dovecot now has them.
    const status = table(await doveadm(conf, ['-f', 'tab', 'mailbox', 'status', '-u', 'alice', 'uidvalidity uidnext messages', '*']));
    const copied = new Map(status.map((r) => [r.mailbox!, { uidValidity: Number(r.uidvalidity), uidNext: Number(r.uidnext), messages: Number(r.messages) }] as const));
    expect([...copied.keys()].sort()).to.deep.equal([...before.keys()].sort());
    expect([...copied.keys()]).to.include.members(['Archive/2025', 'Ärger', 'Work', 'INBOX']);
    for (const [name, folder] of before) {
      expect(copied.get(name), name).to.deep.equal({ uidValidity: folder.uidValidity, uidNext: folder.uidNext, messages: folder.messages.length });
    }
    // Every message's UID, flags and keywords, and its exact bytes (Dovecot counts them with CRLF as the virtual size).
    for (const [name, folder] of before) {
      if (folder.messages.length === 0) continue;
      const rows = table(await doveadm(conf, ['-f', 'tab', 'fetch', '-u', 'alice', 'uid flags hdr.subject', 'mailbox', name, 'all']));
      expect(
        rows.map((r) => ({ uid: Number(r.uid), flags: r.flags!.split(' ').filter((f) => f !== '' && f !== '\\Recent').sort(), subject: r['hdr.subject']!.trim() })),
        name,
      ).to.deep.equal(folder.messages);
    }
    const [work] = table(await doveadm(conf, ['-f', 'tab', 'fetch', '-u', 'alice', 'size.virtual', 'mailbox', 'Work', 'all']));
    expect(Number(work!['size.virtual'])).to.equal(Buffer.byteLength(big));
    const text = await doveadm(conf, ['fetch', '-u', 'alice', 'text', 'mailbox', 'INBOX', 'uid', '2']);
    expect(text).to.contain('hello second');
  });
});
