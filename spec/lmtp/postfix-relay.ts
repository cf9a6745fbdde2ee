/**
 * A private Postfix instance that relays into Postern's LMTP, for the LMTP interop spec. Like bench/refs'
 * reference instance it touches neither /etc nor the system service (`postfix -c <dir>`, its own queue, data and
 * log), and must be started as root (Postfix's master). Mail for example.com is "local": local(8) hands every
 * mailbox delivery to `mailbox_transport` (here `lmtp:inet:…` or `lmtp:unix:…`) whether or not the user exists in
 * the passwd database; nothing leaves the machine (`default_transport = error`).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { launchPostfix, POSTFIX_DAEMONS, preparePostfix } from '../../bench/refs/postfix-instance.js';
import { installedAndRoot } from '../support/tool.js';

const run = promisify(execFile);

/**
 * True when a private Postfix can run here: the `postfix` command exists and this process is root (Postfix's master
 * must start as root; CI runs as root). Specs skip otherwise (`.ci/run` installs postfix).
 */
export function postfixUsable(): Promise<boolean> {
  return installedAndRoot('postfix', ['-c', '/nonexistent', 'status']);
}

/** A running relay. */
export interface PostfixRelay {
  /** Plain SMTP port on 127.0.0.1 (no TLS: loopback only). */
  readonly port: number;
  /** The instance's log so far (postlogd writes it a moment after the event: poll it). */
  log(): Promise<string>;
  /** `postqueue -f`: retries every deferred message now. */
  flush(): Promise<void>;
  /** `postfix stop`, then SIGKILL if master outlives 10 s. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Writes `<dir>/postfix/` and starts Postfix with `mailbox_transport = <transport>` (e.g. `lmtp:inet:127.0.0.1:3024`,
 * `lmtp:unix:/run/postern/lmtp.sock`). `dir` must be traversable by the `postfix` user.
 * @throws when Postfix does not start or greet within 20 s (with the log tail).
 */
export async function startPostfixRelay(dir: string, transport: string): Promise<PostfixRelay> {
  return launchRelay(dir, [
    'mydestination = example.com',
    // Postern decides which recipients exist (550 5.1.1 at RCPT); Postfix accepts any local part.
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    `mailbox_transport = ${transport}`,
    // STARTTLS to Postern when offered (not verified: a private test CA).
    'lmtp_tls_security_level = may',
  ]);
}

/**
 * Starts Postfix as the MTA that relays mail for example.com to Postern's SMTP listener on 127.0.0.1:`smtpPort`, as an
 * Internet MTA delivers to an MX: STARTTLS required and the certificate verified against `caFile` for the name
 * `localhost` (a TLS policy of `secure`, so a failed handshake or a wrong certificate defers the mail instead of
 * sending it in the clear). `caFile` must be readable by the `postfix` user.
 */
export async function startPostfixSmtpRelay(dir: string, smtpPort: number, caFile: string): Promise<PostfixRelay> {
  const nexthop = `[127.0.0.1]:${smtpPort}`;
  return launchRelay(dir, [
    'mydestination =',
    'relay_domains = example.com',
    `transport_maps = inline:{ example.com=smtp:${nexthop} }`,
    `smtp_tls_CAfile = ${caFile}`,
    `smtp_tls_policy_maps = inline:{ { ${nexthop} = secure match=localhost } }`,
    'smtp_tls_loglevel = 1',
  ]);
}

/** Writes main.cf (the shared lines, `lines`, nothing leaving the machine) and master.cf, then starts the instance. */
async function launchRelay(dir: string, lines: readonly string[]): Promise<PostfixRelay> {
  const { conf, queue, port, logFile, mainCf } = await preparePostfix(dir);
  const tail = ['default_transport = error:no outbound mail from this test instance', ''];
  await writeFile(join(conf, 'main.cf'), [...mainCf('relay.test'), ...lines, ...tail].join('\n'));
  const services = [`127.0.0.1:${port} inet n - n - - smtpd`, ...POSTFIX_DAEMONS, 'lmtp unix - - n - - lmtp', 'smtp unix - - n - - smtp'];
  await writeFile(join(conf, 'master.cf'), services.join('\n') + '\n');
  const log = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');
  const { stop } = await launchPostfix(conf, queue, port, logFile);
  const flush = async (): Promise<void> => {
    await run('postqueue', ['-c', conf, '-f'], { timeout: 30_000 });
  };
  return { port, log, flush, stop };
}
