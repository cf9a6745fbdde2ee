/**
 * A private Dovecot instance for the mailbox benchmarks, from Debian's `dovecot-imapd`/`dovecot-pop3d`, that
 * touches neither /etc nor the system service: `dovecot -F -c <file>` as our child process with its own base_dir,
 * state_dir and log, a passwd-file with the bench user, Maildir under the temp dir (owned by `nobody`, the mail
 * uid), and IMAP, IMAPS, POP3S on free loopback ports with the bench certificate (TLS 1.2+). Everything else is
 * Dovecot's default.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REF_USER } from './postfix-instance.js';
import { ImapsWire } from './mailbox-wire.js';
import { accountIds, freePort, pollUntil, stopProcess, treeCpuMs } from './processes.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';

const run = promisify(execFile);

/** A running Dovecot. */
export interface DovecotInstance {
  /** Plaintext IMAP (with STARTTLS), IMAPS and POP3S ports on 127.0.0.1. */
  readonly ports: { readonly imap: number; readonly imaps: number; readonly pop3s: number };
  readonly pid: number;
  /** CPU ms used so far by the master and every login, auth and imap/pop3 process. */
  cpuMs(): number;
  /** SIGTERM to the master, SIGKILL after 10 s; idempotent. */
  stop(): Promise<void>;
}

/** `dovecot --version`, e.g. `2.3.19.1 (9b53102964)`. */
export function dovecotVersion(): string {
  try {
    return execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Writes `messages` as files into `<dir>/dovecot/mail/alice/cur/` the Maildir way (unique names with `S=` and
 * `W=` sizes, `:2,` with no flags, mtime = the internal date), owned by the mail uid. Call before
 * {@link startDovecot}; Dovecot assigns UIDs on first access.
 */
export async function writeDovecotMaildir(dir: string, messages: readonly Buffer[]): Promise<void> {
  const user = join(dir, 'dovecot', 'mail', REF_USER.username);
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(user, sub), { recursive: true });
  const start = Math.floor(Date.UTC(2024, 0, 1) / 1000);
  for (let i = 0; i < messages.length; i++) {
    const size = messages[i].length;
    // The files already hold CRLF line ends, so the virtual (CRLF) size W equals the file size S.
    const file = join(user, 'cur', `${start + i}.M${i}P${process.pid}.bench,S=${size},W=${size}:2,`);
    await writeFile(file, messages[i]);
    await utimes(file, start + i, start + i);
  }
  const nobody = accountIds('nobody');
  await run('chown', ['-R', `${nobody.uid}:${nobody.gid}`, join(dir, 'dovecot', 'mail')]);
}

/**
 * Writes the config into `<dir>/dovecot/` and starts Dovecot in the foreground as a child process; resolves once
 * a LOGIN over IMAPS succeeds (auth and login processes are up). The caller must `stop()` it in a `finally`.
 * @throws when Dovecot exits or does not accept a login within 20 s (the log tail is in the message).
 */
export async function startDovecot(dir: string, certs: DevCertificates, certFile: string, keyFile: string): Promise<DovecotInstance> {
  const base = join(dir, 'dovecot');
  const mail = join(base, 'mail');
  const nobody = accountIds('nobody');
  for (const d of [join(base, 'run'), join(base, 'state'), mail]) await mkdir(d, { recursive: true });
  await run('chown', [`${nobody.uid}:${nobody.gid}`, mail]);
  await writeFile(join(base, 'users'), `${REF_USER.username}:{PLAIN}${REF_USER.password}::::::\n`, { mode: 0o600 });
  // The auth process reads the passwd-file as the internal user.
  const internal = accountIds('dovecot');
  await run('chown', [`${internal.uid}:${internal.gid}`, join(base, 'users')]);
  const ports = { imap: await freePort(), imaps: await freePort(), pop3s: await freePort() };
  const log = join(base, 'dovecot.log');
  const dh = '/usr/share/dovecot/dh.pem';
  const conf = join(base, 'dovecot.conf');
  await writeFile(
    conf,
    `base_dir = ${join(base, 'run')}
state_dir = ${join(base, 'state')}
log_path = ${log}
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <${certFile}
ssl_key = <${keyFile}
ssl_min_protocol = TLSv1.2
${existsSync(dh) ? `ssl_dh = <${dh}` : ''}
# The imaptest stress logs in over plaintext on loopback too (Postern gets --allow-insecure-auth for it).
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${join(base, 'users')}
}
userdb {
  driver = static
  args = uid=${nobody.uid} gid=${nobody.gid} home=${mail}/%u
}
mail_location = maildir:${mail}/%u
service imap-login {
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = ${ports.imaps}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = ${ports.pop3s}
    ssl = yes
  }
}
`,
  );
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  child.on('error', () => undefined);
  const pid = child.pid ?? 0;
  const stop = (): Promise<void> => stopProcess(child);
  try {
    await pollUntil(
      'a Dovecot IMAPS login',
      async () => {
        if (child.exitCode !== null) throw new Error(`dovecot exited with ${child.exitCode}: ${stderr.trim()}`);
        const w = await ImapsWire.connect(ports.imaps, { ca: certs.ca.cert, servername: 'localhost' });
        try {
          await w.command(`LOGIN ${REF_USER.username} ${REF_USER.password}`);
          await w.command('LOGOUT');
          return true;
        } finally {
          w.destroy();
        }
      },
      20_000,
      100,
    );
  } catch (err) {
    await stop();
    const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-8).join('\n');
    throw new Error(`dovecot did not become ready: ${(err as Error).message}\n${stderr}${tail}`);
  }
  return { ports, pid, cpuMs: () => treeCpuMs(pid), stop };
}
