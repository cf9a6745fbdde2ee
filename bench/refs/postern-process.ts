/**
 * Postern as the references run: a separate process (`node dist/lib/cli/main.js`, the release build), so its CPU is
 * read from `/proc` exactly like Postfix's and Dovecot's, and the benchmark client does not share its event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { REF_USER } from './postfix-instance.js';
import { pollUntil, stopProcess, treeCpuMs } from './processes.js';

/** The CLI entry point of this build. */
const CLI = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));

/** What to start. */
export interface PosternProcessOptions {
  /** `memory` or `maildir:PATH` (`--store`). The Maildir store fsyncs by default. */
  readonly store: string;
  /** Listeners (`--only`), e.g. `['smtp']` or `['imap', 'imaps', 'pop3s']`. */
  readonly listeners: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
  /** `--allow-insecure-auth` (the imaptest plaintext run logs in without STARTTLS, as it does on Dovecot). */
  readonly allowInsecureAuth?: boolean;
}

/** A running Postern process. */
export interface PosternProcess {
  /** Port per started listener name. */
  readonly ports: Readonly<Record<string, number>>;
  readonly pid: number;
  /** CPU ms used so far by the process. */
  cpuMs(): number;
  /** SIGTERM (graceful close), SIGKILL after 10 s; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `postern --store … --only … --user alice:secret@example.com` with every listener on port 0 and reads the
 * ports from its ready lines. The caller must `stop()` it in a `finally`.
 * @throws when the process exits or prints no ready line for every listener within 30 s.
 */
export async function startPosternProcess(options: PosternProcessOptions): Promise<PosternProcess> {
  const args = [
    CLI,
    '--store',
    options.store,
    '--only',
    options.listeners.join(','),
    ...options.listeners.flatMap((l) => [`--${l}-port`, '0']),
    '--cert',
    options.certFile,
    '--key',
    options.keyFile,
    '--user',
    `${REF_USER.username}:${REF_USER.password}@${REF_USER.address.split('@')[1]}`,
    '--log-level',
    'error',
    // Every bench client comes from 127.0.0.1; Postfix exempts $mynetworks from its per-client limits the same way.
    '--max-connections-per-address',
    '0',
    '--max-connections-per-address-total',
    '0',
    ...(options.allowInsecureAuth ? ['--allow-insecure-auth'] : []),
  ];
  // BENCH_POSTERN_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server (written at its SIGTERM exit).
  const nodeArgs = (process.env.BENCH_POSTERN_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', () => undefined);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const stop = (): Promise<void> => stopProcess(child);
  const ports: Record<string, number> = {};
  try {
    await pollUntil(
      'postern ready lines',
      () => {
        if (child.exitCode !== null) throw new Error(`postern exited with ${child.exitCode}: ${err.trim()}`);
        for (const m of out.matchAll(/^postern: (\w+) ready on [^\n]*:(\d+) /gm)) ports[m[1]] = Number(m[2]);
        return options.listeners.every((l) => ports[l] !== undefined) ? true : undefined;
      },
      30_000,
      20,
    );
  } catch (e) {
    await stop();
    throw new Error(`postern did not start: ${(e as Error).message}\n${err}`);
  }
  const pid = child.pid ?? 0;
  return { ports, pid, cpuMs: () => treeCpuMs(pid), stop };
}
