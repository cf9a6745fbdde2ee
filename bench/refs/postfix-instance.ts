/**
 * A private Postfix instance for the delivery benchmarks, from Debian's `postfix` package, that touches neither
 * /etc nor the system service: `postfix -c <dir>` with its own main.cf/master.cf, queue_directory,
 * data_directory and log file, all inside a temp dir. Durability is Postfix's default: cleanup(8) fsyncs the
 * queue file before smtpd answers `250`. virtual(8) then delivers into `<dir>/vmail/alice/` (Maildir); only
 * alice@example.com is accepted. smtpd offers STARTTLS (TLS 1.2+) with the bench certificate on a free loopback
 * port and does no reverse DNS lookup, like Postern.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chown, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { accountIds, freePort, isAlive, pollUntil, treeCpuMs } from './processes.js';

const run = promisify(execFile);

/** The one mailbox user every reference and Postern accept. */
export const REF_USER = { username: 'alice', password: 'secret', address: 'alice@example.com' } as const;

/** A running Postfix instance. */
export interface PostfixInstance {
  /** STARTTLS SMTP port on 127.0.0.1. */
  readonly port: number;
  /** PID of master(8); its process tree holds every Postfix daemon of this instance. */
  readonly pid: number;
  /** CPU ms used so far by master and all its daemons (smtpd, cleanup, qmgr, virtual, …). */
  cpuMs(): number;
  /** Messages delivered into alice's Maildir so far (`new/`). */
  delivered(): Promise<number>;
  /** Stops the instance (`postfix stop`, then SIGKILL if master outlives 10 s). Idempotent. */
  stop(): Promise<void>;
}

/** `postconf -d -h mail_version`, e.g. `3.7.11` (for the results header). */
export function postfixVersion(): string {
  try {
    return execFileSync('postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** A private instance's directories under `<dir>/postfix/`, its free port, and the main.cf lines every instance shares. */
export interface PostfixLayout {
  readonly base: string;
  readonly conf: string;
  readonly queue: string;
  readonly port: number;
  readonly logFile: string;
  /** The shared main.cf lines (own queue, data and log, loopback only, no lookups) for `mx.<domain>`. */
  mainCf(domain: string): string[];
}

/**
 * Creates `<dir>/postfix/{conf,queue,data}` (data owned by the `postfix` user) and picks a free loopback port; the
 * caller adds its own main.cf lines and master.cf, then {@link launchPostfix}.
 */
export async function preparePostfix(dir: string): Promise<PostfixLayout> {
  const base = join(dir, 'postfix');
  const conf = join(base, 'conf');
  const queue = join(base, 'queue');
  const data = join(base, 'data');
  const logFile = join(base, 'postfix.log');
  for (const d of [conf, queue, data]) await mkdir(d, { recursive: true });
  const ids = accountIds('postfix');
  await chown(data, ids.uid, ids.gid);
  const port = await freePort();
  const mainCf = (domain: string): string[] => [
    'compatibility_level = 3.6',
    `queue_directory = ${queue}`,
    `data_directory = ${data}`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = mx.${domain}`,
    `mydomain = ${domain}`,
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `maillog_file_prefixes = ${base}`,
    `maillog_file = ${logFile}`,
    'smtpd_peername_lookup = no',
  ];
  return { base, conf, queue, port, logFile, mainCf };
}

/**
 * Writes the configuration into `<dir>/postfix/` and starts Postfix. `certFile`/`keyFile` are PEM files readable
 * by root. The caller must `stop()` it (in a `finally`).
 * @throws when Postfix does not start or its port does not greet within 20 s (the log tail is in the message).
 */
export async function startPostfix(dir: string, certFile: string, keyFile: string): Promise<PostfixInstance> {
  const { base, conf, queue, port, logFile: log, mainCf } = await preparePostfix(dir);
  const vmail = join(base, 'vmail');
  await mkdir(vmail, { recursive: true });
  const nobody = accountIds('nobody');
  await chown(vmail, nobody.uid, nobody.gid);
  await writeFile(
    join(conf, 'main.cf'),
    [
      ...mainCf('bench.test'),
      'mydestination =',
      'smtpd_banner = $myhostname ESMTP',
      `smtpd_tls_cert_file = ${certFile}`,
      `smtpd_tls_key_file = ${keyFile}`,
      'smtpd_tls_security_level = may',
      'smtpd_tls_protocols = >=TLSv1.2',
      'virtual_mailbox_domains = example.com',
      `virtual_mailbox_base = ${vmail}`,
      `virtual_mailbox_maps = inline:{ ${REF_USER.address}=${REF_USER.username}/ }`,
      `virtual_uid_maps = static:${nobody.uid}`,
      `virtual_gid_maps = static:${nobody.gid}`,
      'virtual_minimum_uid = 1',
      'alias_maps =',
      'alias_database =',
      // 128 concurrent senders must not wait for a free smtpd (default_process_limit is 100).
      'default_process_limit = 200',
      '',
    ].join('\n'),
  );
  // Debian's master.cf without chroot, the smtpd on our port, and postlogd for maillog_file.
  const services = [
    `127.0.0.1:${port} inet n - n - 150 smtpd`,
    ...POSTFIX_DAEMONS,
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'virtual unix - n n - - virtual',
  ];
  await writeFile(join(conf, 'master.cf'), services.join('\n') + '\n');
  const { pid, stop } = await launchPostfix(conf, queue, port, log);
  const newDir = join(vmail, REF_USER.username, 'new');
  return {
    port,
    pid,
    cpuMs: () => treeCpuMs(pid),
    delivered: async () => (await readdir(newDir).catch(() => [])).length,
    stop,
  };
}

/**
 * The daemons every private instance runs (Debian's master.cf without chroot, and postlogd for `maillog_file`);
 * callers add their smtpd line and delivery agents.
 */
export const POSTFIX_DAEMONS: readonly string[] = [
  'pickup unix n - n 60 1 pickup',
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'tlsmgr unix - - n 1000? 1 tlsmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'flush unix n - n 1000? 0 flush',
  'proxymap unix - - n - - proxymap',
  'showq unix n - n - - showq',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'local unix - n n - - local',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
];

/**
 * Starts the instance whose main.cf/master.cf are in `conf` (`postfix -c conf start`), waits for master.pid in
 * `queue` and a `220` greeting on `port`, and returns master's PID with an idempotent `stop()` (`postfix stop`,
 * then SIGKILL if master outlives 10 s).
 * @throws when Postfix does not start or greet within 20 s (with the tail of `logFile`).
 */
export async function launchPostfix(conf: string, queue: string, port: number, logFile: string): Promise<{ pid: number; stop(): Promise<void> }> {
  const logTail = async (): Promise<string> => (await readFile(logFile, 'utf8').catch(() => '(no log)')).split('\n').slice(-8).join('\n');
  try {
    await run('postfix', ['-c', conf, 'start'], { timeout: 60_000 });
  } catch (err) {
    throw new Error(`postfix did not start: ${(err as Error).message.split('\n')[0]}\n${await logTail()}`);
  }
  let pid = 0;
  const stop = async (): Promise<void> => {
    if (pid === 0 || !isAlive(pid)) return;
    await run('postfix', ['-c', conf, 'stop'], { timeout: 30_000 }).catch(() => undefined);
    await pollUntil('postfix master to exit', () => (isAlive(pid) ? undefined : true), 10_000).catch(() => process.kill(pid, 'SIGKILL'));
  };
  try {
    pid = await pollUntil('postfix master.pid', async () => Number((await readFile(join(queue, 'pid', 'master.pid'), 'latin1')).trim()) || undefined);
    await pollUntil(`postfix greeting on port ${port}`, () => greets(port), 20_000, 50);
  } catch (err) {
    await stop();
    throw new Error(`postfix did not become ready: ${(err as Error).message}\n${await logTail()}`);
  }
  return { pid, stop };
}

/** Resolves true once `port` answers with a `220` line; undefined while it does not (yet). */
export function greets(port: number, expect = /^220 /): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (v: true | undefined): void => {
      s.destroy();
      resolve(v);
    };
    s.on('error', () => done(undefined));
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n')) done(expect.test(text) ? true : undefined);
    });
    s.setTimeout(2000, () => done(undefined));
  });
}
