import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** dist/lib/cli/main.js, the `postern` executable. */
export const POSTERN_BIN = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));

/** A running `postern` process with its output so far. */
export interface PosternProcess {
  readonly child: ChildProcess;
  readonly stdout: string[];
  stderr: string;
  /** name → port from the ready lines. */
  readonly ports: Record<string, number>;
  /** Resolves once `count` ready lines were printed (rejects if the process exits first or after `timeoutMs`). */
  ready(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves the exit code. */
  exited(): Promise<number | null>;
  /** Sends a signal and resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `postern` with `args` (and `env` added to this process's environment). The caller stops it (afterEach). */
export function startPostern(args: string[], env: NodeJS.ProcessEnv = {}): PosternProcess {
  const child = spawn(process.execPath, [POSTERN_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const stdout: string[] = [];
  const ports: Record<string, number> = {};
  let partial = '';
  const waiters: Array<() => void> = [];
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code))); // after stdio drained
  const proc: PosternProcess = {
    child,
    stdout,
    stderr: '',
    ports,
    ready: (count, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): boolean => {
          if (Object.keys(ports).length >= count) {
            resolve();
            return true;
          }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(() => reject(new Error(`postern not ready: ${stdout.join(' | ')} ${proc.stderr}`)), timeoutMs);
        void exit.then((code) => {
          clearTimeout(timer);
          reject(new Error(`postern exited with ${code}: ${proc.stderr}`));
        });
        waiters.push(() => {
          if (check()) clearTimeout(timer);
        });
      }),
    exited: () => exit,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    let i: number;
    while ((i = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      stdout.push(line);
      const m = /^postern: (\w+) ready on .*:(\d+) /.exec(line);
      if (m) ports[m[1]] = Number(m[2]);
      for (const w of waiters) w();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (proc.stderr += d));
  return proc;
}

/** Runs `postern` to completion (for flags that exit at once) and returns its exit code and output. */
export async function runPostern(args: string[], timeoutMs = 15_000, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startPostern(args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited();
  clearTimeout(timer);
  return { code, stdout: p.stdout.join('\n'), stderr: p.stderr };
}

/**
 * JSON log records the process (and its workers, which share its stderr) has written so far: complete lines only,
 * a line that is not one JSON record is skipped.
 */
export function records(p: PosternProcess): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of p.stderr.slice(0, p.stderr.lastIndexOf('\n') + 1).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a whole record (e.g. two processes' lines cut into each other)
    }
  }
  return out;
}

/** Resolves once a stderr JSON record matches (bounded by `timeoutMs`). */
export async function logged(p: PosternProcess, match: (r: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const found = records(p).find(match);
  if (found) return found;
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      const r = records(p).find(match);
      if (r) {
        cleanup();
        resolve(r);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not logged within ${timeoutMs} ms: ${p.stderr.slice(-2000)}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      p.child.stderr!.off('data', onData);
    };
    p.child.stderr!.on('data', onData);
  });
}

/** The message of the UsageError `fn` throws (failing the spec when it throws something else, or nothing). */
export function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect((err as Error).name, String(err)).to.equal('UsageError');
    return (err as Error).message;
  }
  throw new Error('no UsageError');
}
