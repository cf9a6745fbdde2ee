/**
 * Issue 15's CPU goals counted in instructions (callgrind, `refs/callgrind.ts`) rather than in `/proc` CPU time: the
 * same servers, certificate and clients as `tlsCost` and `smtpHotpath`, but each server runs under callgrind, so a
 * ratio does not move with the machine's load. What it leaves out: the kernel's work (system calls, page faults) and
 * cache misses, which `/proc` CPU includes; under callgrind V8's optimizing compiler also runs more often per operation
 * than in a real run (the process is ~50x slower, and time-driven collections drop compiled code), which adds the same
 * kind of cost to every Node server measured here.
 *
 * Servers, each in its own process: `bare` (`tlsCost`'s reference: a `tls.createServer` that writes the greeting),
 * `mail minimum` (bare plus what any mail server does per connection: reads, an idle timeout, Nagle off, one log
 * line at close), the `postern` command (default log level), nodemailer's `smtp-server` (`smtpHotpath`'s reference)
 * and the floor (`refs/floor-smtp.ts`). Goals are checked on the instructions outside V8's optimizing compilers, whose
 * share under callgrind (a quarter of a connection's count in a short run; 0–5 K instructions in the steady state counted
 * here) is an artefact of the slowdown (see `refs/callgrind.ts`);
 * each note gives both. `BENCH_CG_CONNECTIONS` (default 1,000) resumed/full connections are counted after
 * `BENCH_CG_WARMUP` (default 5,000) resumed and a quarter as many full ones, `BENCH_CG_TRANSACTIONS` (default 1,000)
 * transactions after twice as many; pipelined messages: 1,000 after 1,500.
 *
 * The counts are of a server in its steady state, as `tlsCost`'s (4,000 connections of each kind before it measures):
 * code that runs once per connection reaches V8's optimizing compiler only after a few thousand connections
 * (`--trace-opt` under callgrind still showed Postern's `startServerTlsOr`, `secured` and `handOver` and Node's
 * `Duplex` and `ReadableState` compiled for the first time between the 2,000th and the 3,000th connection). Until then
 * it runs in V8's interpreter and baseline tier, through the inline caches' builtins, which a long-running server does
 * not pay; the more JavaScript a server runs per connection, the more that early phase weighs. The earlier defaults
 * (300 after 600, stop 31) measured it: resumed 1.12–1.13 there, 1.06–1.08 in the steady state (`bench/RESULTS.md`, stop 32).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DevCertificates } from '../lib/core/dev-certificates.js';
import { iterations, SMOKE } from './harness.js';
import { callgrindProblem, CountedProcess, type InstructionCount } from './refs/callgrind.js';
import { freePort, stopProcess, workDir, writeServerPem } from './refs/processes.js';
import { concurrentSenders, pipelinedSession } from './refs/smtp-load.js';
import { REFERENCE_SERVER } from './smtp-hotpath.bench.js';
import { testMessage, type NotedResult } from './smtp-transaction.bench.js';
import { BARE_SERVER, greetOnce } from './tls-cost.bench.js';

const POSTERN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const FLOOR = fileURLToPath(new URL('./refs/floor-smtp.js', import.meta.url));
/** The project root, so that `node -e` finds smtp-server in node_modules. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Bare node:tls plus what any mail server must do per connection: read (a `'data'` listener), an idle timeout, Nagle
 * off (replies are small and must not wait), and one log line written at close. What Postern costs over this is its
 * own per-connection work.
 */
const MAIL_MINIMUM_SERVER = `
const tls = require('node:tls'), fs = require('node:fs');
const [cert, key, port, logFile] = process.argv.slice(1);
const log = fs.openSync(logFile, 'w');
const server = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), minVersion: 'TLSv1.2' }, (s) => {
  s.on('error', () => {});
  s.setNoDelay(true);
  s.setTimeout(300000);
  s.on('timeout', () => s.destroy());
  s.on('data', () => {});
  const start = Date.now();
  const remote = s.remoteAddress + ':' + s.remotePort;
  s.on('close', () => fs.writeSync(log, new Date().toISOString() + ' info connection closed remote=' + remote + ' tls=' + s.getProtocol() + ' ms=' + (Date.now() - start) + '\\n'));
  s.write('220 localhost ESMTP ready\\r\\n');
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/** `n` sequential connections that read the greeting and close: resumed with one ticket, or full handshakes. */
async function greetings(port: number, ca: string, n: number, resumed: boolean): Promise<void> {
  const session = resumed ? (await greetOnce(port, ca, { wantTicket: true })).session : undefined;
  for (let i = 0; i < n; i++) {
    const r = await greetOnce(port, ca, { session });
    if (resumed && !r.reused) throw new Error('a resumed handshake was expected');
  }
}

/** A count divided by the operations it covers. */
function per(count: InstructionCount, n: number): InstructionCount {
  return { all: count.all / n, compiler: count.compiler / n };
}

/** The instructions outside the optimizing compilers' own functions (see `refs/callgrind.ts`). */
function withoutCompiler(count: InstructionCount): number {
  return count.all - count.compiler;
}

/** Instructions per connection, resumed and full, of one greeting server: warmed up, then counted. */
async function perConnection(server: CountedProcess, port: number, ca: string, warm: number, n: number): Promise<{ resumed: InstructionCount; full: InstructionCount }> {
  await greetings(port, ca, warm, true);
  await greetings(port, ca, Math.ceil(warm / 4), false);
  const resumed = per(await server.count(() => greetings(port, ca, n, true)), n);
  const full = per(await server.count(() => greetings(port, ca, n, false)), n);
  return { resumed, full };
}

const thousands = (n: number): string => Math.round(n).toLocaleString('en');

/** `what a / b = ratio` without the compilers, then the same with them, for each pair. */
function ratioNote(parts: ReadonlyArray<readonly [string, InstructionCount, InstructionCount]>): string {
  const without = parts.map(([what, a, b]) => `${what} ${thousands(withoutCompiler(a))} / ${thousands(withoutCompiler(b))} = ${(withoutCompiler(a) / withoutCompiler(b)).toFixed(3)}`);
  const all = parts.map(([what, a, b]) => `${what} ${(a.all / b.all).toFixed(3)} (compiler ${thousands(a.compiler)} / ${thousands(b.compiler)})`);
  return `without the optimizing compiler: ${without.join('; ')}\n  with it: ${all.join('; ')}`;
}

/** A result whose goal is checked on the instructions without the optimizing compilers. */
function counted(name: string, unit: string, subject: InstructionCount, reference: InstructionCount, referenceName: string, goal: number, note: string): NotedResult {
  return { name, unit, subject: withoutCompiler(subject), reference: withoutCompiler(reference), referenceName, goal, note };
}

/**
 * Issue 15's goals as instruction ratios (goal values the issue's: handshake ≤ 1.1x bare node:tls, a transaction's CPU
 * ≤ 0.8x smtp-server's, pipelined speed ≥ 1.5x smtp-server's, read as instructions per message ≤ 1/1.5). Skipped, with
 * a line saying so, where valgrind is not installed (outside CI: `.ci/run` installs it).
 */
export async function instructionCounts(certs: DevCertificates): Promise<NotedResult[]> {
  const problem = callgrindProblem();
  if (problem !== undefined) {
    if (process.env.CI === 'true') throw new Error(`instructionCounts: ${problem}`);
    console.log(`instruction counts: skipped, ${problem}`);
    return [];
  }
  const connections = iterations(Number(process.env.BENCH_CG_CONNECTIONS ?? 1000), 4);
  const warm = iterations(Number(process.env.BENCH_CG_WARMUP ?? 5000), 8);
  const transactions = iterations(Number(process.env.BENCH_CG_TRANSACTIONS ?? 1000), 3);
  const pipelined = iterations(1000, 10);
  const dir = await workDir('postern-instructions-');
  const started: CountedProcess[] = [];
  const start = async (name: string, args: (port: number) => string[], ready: RegExp): Promise<{ server: CountedProcess; port: number }> => {
    const port = await freePort();
    const server = await CountedProcess.start(dir.path, name, args(port), ready, { cwd: ROOT });
    started.push(server);
    return { server, port };
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.splice(0).map((s) => stopProcess(s.child)));
  };
  try {
    const { certFile, keyFile } = await writeServerPem(dir.path, certs);
    const ca = certs.ca.cert;

    // The handshake: bare, mail minimum and Postern, one at a time (each is alone on the machine while counted).
    const handshakes = new Map<string, { resumed: InstructionCount; full: InstructionCount }>();
    for (const [name, args, ready] of [
      ['bare', (p: number) => ['-e', BARE_SERVER, certFile, keyFile, String(p)], /^ready$/m],
      ['mail minimum', (p: number) => ['-e', MAIL_MINIMUM_SERVER, certFile, keyFile, String(p), join(dir.path, 'minimum-connections.log')], /^ready$/m],
      ['postern', (p: number) => [POSTERN, '--only', 'smtps', '--smtps-port', String(p), '--cert', certFile, '--key', keyFile, '--auth-disabled', '--max-connections-per-address', '0'], /^postern: smtps ready on/m],
    ] as const) {
      const { server, port } = await start(name, args, ready);
      handshakes.set(name, await perConnection(server, port, ca, warm, connections));
      await stopAll();
    }

    // SMTP: whole STARTTLS transactions (concurrency 1) and one pipelined session of 10 KB messages.
    const small = testMessage(10 * 1024);
    const batch = (n: number): Buffer[] => Array.from({ length: n }, () => small);
    const smtp = new Map<string, { transaction: InstructionCount; message: InstructionCount }>();
    for (const [name, args, ready] of [
      ['smtp-server', (p: number, s: number) => ['-e', REFERENCE_SERVER, certFile, keyFile, String(p), String(s)], /^ready$/m],
      ['floor', (p: number, s: number) => [FLOOR, certFile, keyFile, String(p), String(s)], /^ready$/m],
      [
        'postern',
        (p: number) => [POSTERN, '--store', 'memory', '--only', 'smtp', '--smtp-port', String(p), '--cert', certFile, '--key', keyFile, '--user', 'alice:secret@example.com', '--max-connections-per-address', '0'],
        /^postern: smtp ready on/m,
      ],
    ] as const) {
      const secure = await freePort();
      const { server, port } = await start(`${name} smtp`, (p) => args(p, secure), ready);
      await concurrentSenders(port, certs, 1, transactions * 2, small);
      const transaction = per(await server.count(() => concurrentSenders(port, certs, 1, transactions, small)), transactions);
      await pipelinedSession(port, certs, batch(Math.ceil(pipelined * 1.5)));
      const message = per(await server.count(() => pipelinedSession(port, certs, batch(pipelined))), pipelined);
      smtp.set(name, { transaction, message });
      await stopAll();
    }

    const bare = handshakes.get('bare')!;
    const minimum = handshakes.get('mail minimum')!;
    const postern = handshakes.get('postern')!;
    const reference = smtp.get('smtp-server')!;
    const floor = smtp.get('floor')!;
    const ours = smtp.get('postern')!;
    const unit = (what: string): string => `${what} (${SMOKE ? 'smoke, ' : ''}instructions without the optimizing compiler, callgrind)`;
    return [
      ...(['resumed', 'full'] as const).map((kind) =>
        counted(`TLS 1.3 ${kind} handshake + greeting, instructions`, unit('connection'), postern[kind], bare[kind], 'bare node:tls', 1.1, ratioNote([
          ['postern / bare', postern[kind], bare[kind]],
          ['mail minimum / bare', minimum[kind], bare[kind]],
          ['postern / mail minimum', postern[kind], minimum[kind]],
        ])),
      ),
      counted('SMTP STARTTLS transaction 10 KB, instructions', unit('transaction'), ours.transaction, reference.transaction, 'smtp-server', 0.8, ratioNote([
        ['postern / smtp-server', ours.transaction, reference.transaction],
        ['floor / smtp-server', floor.transaction, reference.transaction],
        ['postern / floor', ours.transaction, floor.transaction],
      ])),
      counted('SMTP pipelined 10 KB, instructions', unit('message'), ours.message, reference.message, 'smtp-server', Number((1 / 1.5).toFixed(2)), ratioNote([
        ['postern / smtp-server', ours.message, reference.message],
        ['floor / smtp-server', floor.message, reference.message],
        ['postern / floor', ours.message, floor.message],
      ])),
    ];
  } finally {
    await stopAll();
    await dir.remove();
  }
}
