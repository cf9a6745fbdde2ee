/**
 * Runs Dovecot's imaptest (https://github.com/dovecot/imaptest, release-2.3.21) against a Postern it starts, and prints
 * a pass/fail table. `npm run imaptest`; the binary comes from `IMAPTEST=/path/to/imaptest` (this project neither
 * ships nor builds it). Without `IMAPTEST` it says so and exits 0: skipped, not passed.
 *
 * - Scripted mode (default): every test file of `IMAPTEST_TESTS` (default: `tests/` beside the binary) runs on its
 *   own, against the memory store and the Maildir store, over the plaintext listener (imaptest has no STARTTLS, so
 *   LOGIN is allowed before TLS there) and the implicit-TLS listener (`ssl=any-cert`).
 * - `--stress`: imaptest's random stress mode (`clients=10 secs=30` unless `IMAPTEST_ARGS` overrides) on INBOX,
 *   plain and TLS, printing the command counts and every `Error:` line.
 * - `--store memory|maildir`, `--tls plain|tls`, `--only name,name` narrow the run.
 *
 * Exits 1 when a scripted test fails or a stress run reports an error line, 2 when the runner itself fails.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { startMailServer } from '../lib/test-double/start-mail-server.js';

const USERS = [
  { username: 'imaptest1', password: 'imaptest-pass', addresses: ['imaptest1@example.test'] },
  { username: 'imaptest2', password: 'imaptest-pass', addresses: ['imaptest2@example.test'] },
];
/** One scripted test finishes in well under a second; 30 s means it hangs on a reply that never comes. */
const TEST_TIMEOUT_MS = 30_000;

type Outcome = 'pass' | 'FAIL' | 'skip' | 'TIMEOUT';
interface Target {
  readonly store: 'memory' | 'maildir';
  readonly tls: 'plain' | 'tls';
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Runs the binary once; resolves its combined output, killing it (its own pid only) after `timeoutMs`. */
function runImaptest(bin: string, args: string[], timeoutMs: number): Promise<{ out: string; timedOut: boolean; code: number | null }> {
  return new Promise((resolve, reject) => {
    // Debian's dovecot-dev keeps libdovecot.so in /usr/lib/dovecot, outside the loader's default path.
    const libs = [process.env.LD_LIBRARY_PATH, '/usr/lib/dovecot'].filter(Boolean).join(':');
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LD_LIBRARY_PATH: libs } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ out, timedOut, code });
    });
  });
}

/** Starts Postern with the two imaptest users on the IMAP listeners; the caller stops it. */
async function startPostern(target: Target): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = target.store === 'maildir' ? mkdtempSync(join(tmpdir(), 'postern-imaptest-')) : undefined;
  const server = await startMailServer({
    protocols: ['imap', 'imaps'],
    users: USERS,
    allowInsecureAuth: true,
    store: dir ? `maildir:${dir}` : 'memory',
    log: { silent: true },
  });
  const port = target.tls === 'tls' ? server.ports.imaps : server.ports.imap;
  if (port === undefined) throw new Error('IMAP listener did not start');
  return {
    port,
    async stop() {
      await server.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function baseArgs(port: number, target: Target): string[] {
  const args = ['host=127.0.0.1', `port=${port}`, `user=${USERS[0].username}`, `user2=${USERS[1].username}`, `pass=${USERS[0].password}`];
  if (target.tls === 'tls') args.push('ssl=any-cert');
  return args;
}

function outcomeOf(r: { out: string; timedOut: boolean }): Outcome {
  if (r.timedOut) return 'TIMEOUT';
  const m = /(\d+) test groups: (\d+) failed, (\d+) skipped/.exec(r.out);
  if (!m) return 'FAIL';
  if (Number(m[2]) > 0) return 'FAIL';
  // A skipped group is not always counted as skipped by 2.3.21; it then ran no command at all.
  const ran = [...r.out.matchAll(/individual commands failed/g)].length > 0 && !/: 0\/0 individual[\s\S]*: 0\/0 individual/.test(r.out);
  return Number(m[3]) > 0 || !ran ? 'skip' : 'pass';
}

async function scripted(bin: string, testsDir: string, targets: Target[], only?: Set<string>): Promise<boolean> {
  const names = readdirSync(testsDir)
    .filter((n) => !n.endsWith('.mbox') && statSync(join(testsDir, n)).isFile())
    .filter((n) => !only || only.has(n))
    .sort();
  const results = new Map<string, Outcome[]>();
  const failures: string[] = [];
  for (const [t, target] of targets.entries()) {
    const server = await startPostern(target);
    try {
      for (const name of names) {
        const r = await runImaptest(bin, [...baseArgs(server.port, target), `test=${join(testsDir, name)}`], TEST_TIMEOUT_MS);
        const outcome = outcomeOf(r);
        if (!results.has(name)) results.set(name, []);
        (results.get(name) as Outcome[])[t] = outcome;
        if (outcome === 'FAIL' || outcome === 'TIMEOUT') failures.push(`--- ${name} (${target.store}/${target.tls})\n${r.out.trim()}`);
      }
    } finally {
      await server.stop();
    }
  }
  const cols = targets.map((t) => `${t.store}/${t.tls}`);
  console.log(`${'test'.padEnd(34)}${cols.map((c) => c.padEnd(15)).join('')}`);
  const totals = cols.map(() => ({ pass: 0, FAIL: 0, skip: 0, TIMEOUT: 0 }) as Record<Outcome, number>);
  for (const [name, outcomes] of results) {
    console.log(`${name.padEnd(34)}${outcomes.map((o) => o.padEnd(15)).join('')}`);
    outcomes.forEach((o, i) => totals[i][o]++);
  }
  for (const [i, c] of cols.entries()) {
    const n = totals[i];
    console.log(`${c}: ${n.pass} pass, ${n.FAIL} fail, ${n.TIMEOUT} timeout, ${n.skip} skipped (capability not advertised)`);
  }
  if (failures.length > 0 && process.env.IMAPTEST_VERBOSE !== '0') console.log(`\nFailures:\n${failures.join('\n')}`);
  return failures.length === 0;
}

async function stress(bin: string, testsDir: string, targets: Target[]): Promise<boolean> {
  const extra = (process.env.IMAPTEST_ARGS ?? 'clients=10 secs=30').split(/\s+/).filter(Boolean);
  let clean = true;
  for (const target of targets) {
    const server = await startPostern(target);
    try {
      // The messages APPENDed come from an mbox: IMAPTEST_MBOX, else the scripted tests' default.mbox.
      const mbox = process.env.IMAPTEST_MBOX ?? join(testsDir, 'default.mbox');
      const args = [...baseArgs(server.port, target).filter((a) => !a.startsWith('user2=')), 'box=INBOX', `mbox=${mbox}`, ...extra];
      const secs = Number(/secs=(\d+)/.exec(extra.join(' '))?.[1] ?? 30);
      const r = await runImaptest(bin, args, (secs + 60) * 1000);
      const errors = r.out.split('\n').filter((l) => /Error:|Panic:|Fatal:/.test(l));
      console.log(`=== stress ${target.store}/${target.tls}: ${extra.join(' ')}${r.timedOut ? ' (TIMED OUT)' : ''}`);
      // imaptest prints a header of command names, then one count line per interval, then the totals.
      console.log(r.out.split('\n').filter((l) => !/Error:/.test(l)).slice(-12).join('\n'));
      console.log(`error lines: ${errors.length}`);
      for (const e of [...new Set(errors)].slice(0, 20)) console.log(`  ${e}`);
      if (errors.length > 0 || r.timedOut) clean = false;
    } finally {
      await server.stop();
    }
  }
  return clean;
}

async function main(): Promise<void> {
  const bin = process.env.IMAPTEST;
  if (!bin) {
    console.log('imaptest: SKIPPED, IMAPTEST is not set (IMAPTEST=/path/to/a/built/imaptest npm run imaptest)');
    return;
  }
  const testsDir = process.env.IMAPTEST_TESTS ?? join(dirname(bin), 'tests');
  const stores = (arg('--store') ?? 'memory,maildir').split(',') as Array<Target['store']>;
  const modes = (arg('--tls') ?? 'plain,tls').split(',') as Array<Target['tls']>;
  const targets = stores.flatMap((store) => modes.map((tls) => ({ store, tls })));
  const only = arg('--only') ? new Set((arg('--only') as string).split(',')) : undefined;
  console.log(`imaptest ${basename(bin)} against Postern (${targets.map((t) => `${t.store}/${t.tls}`).join(', ')})`);
  const probe = await runImaptest(bin, ['--help'], TEST_TIMEOUT_MS);
  if (/error while loading shared libraries|not found/i.test(probe.out)) throw new Error(`cannot run ${bin}: ${probe.out.trim()}`);
  const ok = process.argv.includes('--stress') ? await stress(bin, testsDir, targets) : await scripted(bin, testsDir, targets, only);
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 2;
});
