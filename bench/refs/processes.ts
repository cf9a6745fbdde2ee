/**
 * Process plumbing for the reference benchmarks: CPU time of a server's whole process tree from `/proc`, free
 * loopback ports, a private work directory, and bounded waits. Linux only (the references are Debian packages).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';

/** Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on every Linux we run on). */
const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime + cutime + cstime in ticks: the process, plus its children it has reaped. */
  readonly ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // exited between readdir and read
  }
  // proc(5): "pid (comm) state ppid …"; comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const num = (field: number): number => Number(fields[field - 3]);
  return { pid, ppid: num(4), ticks: num(14) + num(15) + num(16) + num(17) };
}

/**
 * CPU milliseconds (user + system) used so far by the process `root` and every live descendant, including what
 * their already reaped children used. A server that forks workers (Postfix, Dovecot) is charged for all of them;
 * take the difference of two readings around the measured work. Resolution is one clock tick (10 ms), so measure
 * work that takes well over that.
 */
export function treeCpuMs(root: number): number {
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.set(s.pid, s);
  }
  const children = new Map<number, number[]>();
  for (const s of stats.values()) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  let ticks = 0;
  const stack = [root];
  const seen = new Set<number>();
  // Bounded: each pid is visited once.
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    ticks += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** True while `/proc/<pid>` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A free TCP port on 127.0.0.1 (bound to port 0, read back, released: a tiny race that loopback benches accept). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Polls `check` every `everyMs` until it returns a value other than `undefined`, or throws after `timeoutMs`
 * with `what` in the message. Used only where no event exists to await (a file appearing, a foreign daemon's port).
 */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** What {@link spawnLogged} starts and waits for. */
export interface LoggedSpawn {
  /** Receives the child's stdout and stderr (truncated first). */
  readonly logFile: string;
  /** Matched against the whole file; the child is ready once it matches. */
  readonly ready: RegExp;
  /** Names the child in errors. */
  readonly what: string;
  readonly cwd?: string;
  /** 30 s unless given. */
  readonly timeoutMs?: number;
}

/**
 * Starts `command args` with its stdout and stderr written to a file, and resolves once `ready` matches the file.
 * A file, not a pipe: the benchmarks' clients run in this process, and a pipe would charge them a wakeup and a read
 * for every line a server logs (Postern logs a line per connection and per message at its default level, the
 * references nothing), which slows the clients of the server that logs and only theirs. On a timeout or an early
 * exit the child is killed and the error quotes the end of its log.
 */
export async function spawnLogged(command: string, args: readonly string[], options: LoggedSpawn): Promise<ChildProcess> {
  const fd = openSync(options.logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  child.on('error', () => undefined); // reported below as an exit
  const exited = once(child, 'exit').then(([code, signal]) => `exited (${String(code ?? signal)})`);
  const ready = pollUntil(options.what, () => (options.ready.test(readFileSync(options.logFile, 'utf8')) ? 'ready' : undefined), options.timeoutMs ?? 30_000, 20).catch(
    (err: unknown) => (err as Error).message,
  );
  const outcome = await Promise.race([ready, exited]);
  if (outcome === 'ready') return child;
  child.kill('SIGKILL');
  const log = readFileSync(options.logFile, 'utf8');
  throw new Error(`${options.what} did not start: ${outcome}\n${log.slice(-2000)}`);
}

/**
 * Stops a child the benchmarks started: SIGTERM (a graceful close), SIGKILL after 10 s, and resolves once it has
 * exited. Does nothing for a child that already exited or was killed by a signal.
 */
export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A private directory under the system temp dir, world-traversable (0755) so that the references' unprivileged
 * workers (postfix, nobody) can reach their own subdirectories. `remove()` deletes it with everything inside.
 */
export async function workDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `postern-${prefix}-`));
  await chmod(path, 0o755);
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Which reference binaries are missing, and whether we are root (Postfix's master must start as root). */
export function referenceProblems(): string[] {
  const problems: string[] = [];
  if (process.platform !== 'linux') problems.push('the reference benchmarks need Linux (/proc)');
  for (const bin of ['/usr/sbin/postfix', '/usr/sbin/dovecot']) if (!existsSync(bin)) problems.push(`${bin} is missing`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) problems.push('they must run as root (Postfix and Dovecot start as root and drop privileges)');
  return problems;
}

/**
 * Throws a loud error naming what is missing, so a CI machine without the references fails instead of skipping.
 * Call before starting any reference.
 */
export function requireReferences(): void {
  const problems = referenceProblems();
  if (problems.length > 0) {
    throw new Error(
      `reference servers unavailable: ${problems.join('; ')}. Install them with ` +
        '`DEBIAN_FRONTEND=noninteractive apt-get install -y postfix dovecot-imapd dovecot-pop3d` and run as root, ' +
        'or leave these benchmarks out with BENCH_ONLY.',
    );
  }
}

/** Numeric uid/gid of a system account (from `id`), e.g. `nobody`. */
export function accountIds(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** Writes the bench server certificate and key as PEM files into `dir` (key 0600, read by root) and returns their paths. */
export async function writeServerPem(dir: string, certs: DevCertificates): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server-key.pem');
  await writeFile(certFile, certs.server.cert, { mode: 0o644 });
  await writeFile(keyFile, certs.server.key, { mode: 0o600 });
  return { certFile, keyFile };
}
