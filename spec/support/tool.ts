/** Runs a third-party command-line tool (a real mail client) for the interop specs. */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** How one run ended. */
export interface ToolRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** What {@link runTool} accepts besides the command line. */
export interface ToolOptions {
  /** Written to the tool's stdin, which is then closed (closed at once when absent). */
  readonly input?: string;
  /** Added to the environment (e.g. a private `HOME`, so that no user configuration is read or written). */
  readonly env?: Readonly<Record<string, string>>;
  /** Killed (SIGKILL) after this long; default 20 s. Every tool here talks to loopback only. */
  readonly timeoutMs?: number;
}

/** What {@link mbsyncConfig} writes: one IMAP account over TLS with the test CA, a local Maildir, one channel. */
export interface MbsyncConfig {
  readonly port: number;
  readonly ssl: 'STARTTLS' | 'IMAPS';
  readonly user: string;
  readonly pass: string;
  /** The CA file that verifies the server's certificate (for the name `localhost`). */
  readonly ca: string;
  /** The local Maildir++ root (its INBOX is `<local>/INBOX`). */
  readonly local: string;
  /** The channel's own lines after Far/Near (`Patterns *`, `Create Both`, …). */
  readonly channel: readonly string[];
}

/** An mbsync (isync 1.4) configuration file's text; sections end at a blank line. */
export function mbsyncConfig(o: MbsyncConfig): string {
  return [
    ...['IMAPAccount postern', 'Host localhost', `Port ${o.port}`, `User ${o.user}`, `Pass ${o.pass}`, `SSLType ${o.ssl}`, 'SSLVersions TLSv1.2 TLSv1.3', `CertificateFile ${o.ca}`, ''],
    ...['IMAPStore remote', 'Account postern', ''],
    ...['MaildirStore local', `Path ${o.local}/`, `Inbox ${o.local}/INBOX`, 'SubFolders Verbatim', ''],
    ...['Channel all', 'Far :remote:', 'Near :local:', ...o.channel, ''],
  ].join('\n');
}

/**
 * Writes `<dir>/mbsyncrc` for alice's INBOX over IMAPS into the Maildir `<dir>/mail` (created), trusting `ca` (a file),
 * and returns its path: the SCRAM specs' mbsync run (`mbsync -V -c RC -a`).
 */
export async function mbsyncInboxConfig(dir: string, port: number, pass: string, ca: string): Promise<string> {
  const local = path.join(dir, 'mail');
  await mkdir(local, { recursive: true });
  const rc = path.join(dir, 'mbsyncrc');
  await writeFile(rc, mbsyncConfig({ port, ssl: 'IMAPS', user: 'alice', pass, ca, local, channel: ['Patterns INBOX', 'Create Near', 'SyncState *'] }));
  return rc;
}

/**
 * True when `command` is installed and this process is root: what a daemon needs whose master starts as root (Postfix,
 * Dovecot; CI runs as root). `args` is any invocation that returns quickly; its exit code does not matter.
 */
export async function installedAndRoot(command: string, args: readonly string[]): Promise<boolean> {
  return (await runTool(command, args, { timeoutMs: 10_000 })) !== undefined && process.getuid?.() === 0;
}

/**
 * Runs `command args…`; resolves its exit code and output, or undefined when the command is not installed (the caller
 * marks its spec pending; `.ci/run` installs every tool, and `CI=true` forbids pending specs).
 */
export function runTool(command: string, args: readonly string[], options: ToolOptions = {}): Promise<ToolRun | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined); // the tool may exit before reading its input
    child.stdin.end(options.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') resolve(undefined);
      else reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
