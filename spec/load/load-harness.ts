/**
 * Shared pieces of the load-and-fault suite (issue 14): a `postern` child process with JSON logs, its RSS, TLS
 * client sessions that log in on each protocol, and percentile helpers. `LOAD_FULL=1` (set by `npm run load`)
 * selects the full sizes; without it every scenario runs a tiny version inside the default `npm test`.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { startPostern, type PosternProcess } from '../cli/cli-process.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

/** True under `npm run load`. */
export const FULL = process.env.LOAD_FULL === '1';

/** Users every load server has. */
export const USERS = { alice: 'secret', good: 'good secret' } as const;

/** A running server for a load scenario. */
export interface LoadServer {
  readonly proc: PosternProcess;
  readonly ports: Record<string, number>;
  readonly metricsUrl: string;
  readonly trust: tls.ConnectionOptions;
  /** Resident set size of the server process in KiB (from /proc). */
  rssKiB(): number;
  /** True while the process runs. */
  isAlive(): boolean;
  /** JSON log lines at level error so far. */
  errorLines(): string[];
  /** Scrapes /metrics into a map series → value. */
  scrape(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** Starts `postern` on port 0 everywhere with the test certificate, JSON warn-level logs and metrics. */
export async function startLoadServer(extra: string[] = []): Promise<LoadServer> {
  const certs = await testCertificates();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-load-'));
  await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
  await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
  // Port 0 for every listener, the HTTP one too (its default 8025 would collide with another run on the machine).
  const ports = ['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps', 'http'].flatMap((n) => [`--${n}-port`, '0']);
  const proc = startPostern([
    ...ports,
    '--cert', path.join(dir, 'server.pem'),
    '--key', path.join(dir, 'server-key.pem'),
    '--user', `alice:${USERS.alice}@example.test`,
    '--user', `good:${USERS.good}@example.test`,
    '--log-format', 'json',
    '--log-level', 'warn',
    '--metrics-port', '0',
    ...extra,
  ]);
  await proc.ready(6);
  const metricsUrl = proc.stdout.find((l) => l.startsWith('postern: metrics ready on '))!.slice('postern: metrics ready on '.length);
  return {
    proc,
    ports: proc.ports,
    metricsUrl,
    trust: { ca: certs.ca.cert, servername: 'localhost' },
    rssKiB: () => {
      const status = readFileSync(`/proc/${proc.child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    },
    isAlive: () => proc.child.exitCode === null && proc.child.signalCode === null,
    errorLines: () => proc.stderr.split('\n').filter((l) => l.includes('"level":"error"')),
    scrape: async () => {
      const text = await (await fetch(metricsUrl)).text();
      const m = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        m.set(line.slice(0, i), Number(line.slice(i + 1)));
      }
      return m;
    },
    close: async () => {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Sum of every series of `name` whose labels contain all of `labels` (e.g. `listener="imaps"`). */
export function total(m: Map<string, number>, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const [k, v] of m) if (k.startsWith(name + '{') && labels.every((l) => k.includes(l))) sum += v;
  return sum;
}

/** The protocol families a load session can use. */
export type Family = 'smtp' | 'pop3' | 'imap';

/**
 * Opens an implicit-TLS session on `family` and logs in; resolves the logged-in client. `localAddress` spreads
 * clients over loopback addresses (127.0.0.x) like many hosts would.
 */
export async function loginSession(server: LoadServer, family: Family, user: string, password: string, localAddress?: string): Promise<LineClient> {
  const c = await LineClient.connect(server.ports[`${family}s`], { tls: server.trust, localAddress, timeoutMs: 120_000 });
  try {
    if (family === 'smtp') {
      await c.expect(/^220 /);
      await c.command('EHLO load.test', /^250 /);
      const [r] = await c.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`, /^\d{3} /);
      if (!r.startsWith('235')) throw new Error(`smtp login: ${r}`);
    } else if (family === 'pop3') {
      await c.expect(/^\+OK/);
      await c.command(`USER ${user}`, /^[+-]/);
      const [r] = await c.command(`PASS ${password}`, /^[+-]/);
      if (!r.startsWith('+OK')) throw new Error(`pop3 login: ${r}`);
    } else {
      await c.expect(/^\* OK/);
      const lines = await c.command(`L LOGIN ${user} "${password}"`, /^L /);
      if (!lines[lines.length - 1].startsWith('L OK')) throw new Error(`imap login: ${lines.join(' | ')}`);
    }
    return c;
  } catch (err) {
    await c.close();
    throw err;
  }
}

/** Says goodbye politely on a logged-in session and waits for the close. */
export async function logout(c: LineClient, family: Family): Promise<void> {
  if (family === 'imap') c.line('Z LOGOUT');
  else c.line('QUIT');
  await c.closed().catch(() => undefined);
  await c.close();
}

/** Runs `tasks` with at most `limit` in flight; resolves their results in order. */
export async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

/** The p-th percentile (0–100) of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Prints one result line (collected into bench/RESULTS.md by hand after `npm run load`). */
export function report(name: string, values: Record<string, string | number>): void {
  if (!FULL && process.env.LOAD_REPORT !== '1') return;
  process.stdout.write(`      load: ${name}: ${Object.entries(values).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 100) / 100 : v}`).join(' ')}\n`);
}
