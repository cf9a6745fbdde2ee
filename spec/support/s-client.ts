/** Runs `openssl s_client -msg` once and reports what the server's handshake contained (spec helper). */
import { execFile, spawn } from 'node:child_process';

/** What one s_client run saw. */
export interface SClientRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the server sent a CertificateRequest (s_client -msg logs every handshake message, TLS 1.3 ones decrypted). */
  readonly certificateRequested: boolean;
  /** The subject line of the server certificate s_client printed (`subject=CN = …`). */
  readonly subject?: string;
}

/** Upper bound for one run; a loopback handshake takes milliseconds. */
const RUN_LIMIT_MS = 15_000;

/** True when the `openssl` binary runs. */
export function hasOpenssl(): Promise<boolean> {
  return new Promise((resolve) => execFile('openssl', ['version'], (err) => resolve(!err)));
}

/**
 * Connects to 127.0.0.1:`port` with `openssl s_client -msg` plus `args` (`-starttls smtp`, `-servername x`,
 * `-CAfile f`), sends nothing and ends stdin, so s_client closes once the handshake is over.
 */
export function sClient(port: number, args: readonly string[]): Promise<SClientRun> {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-msg', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        certificateRequested: /Handshake \[length [0-9a-f]+\], CertificateRequest/.test(stdout),
        subject: /^subject=(.*)$/m.exec(stdout)?.[1],
      });
    });
  });
}
