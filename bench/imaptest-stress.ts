/**
 * imaptest stress (`clients=10 secs=30`, its default mix of LOGIN, LIST, STATUS, SELECT, FETCH, STORE, EXPUNGE,
 * APPEND, LOGOUT with state checking) against Postern on the memory store, Postern on the Maildir store and Dovecot
 * (Maildir) from the Debian package, each over plaintext and over implicit TLS, in one run. Prints imaptest's
 * command totals, the server's process-tree CPU per command, and every `Error:` line imaptest reported.
 *
 * `npm run bench:imaptest` with `IMAPTEST=/path/to/imaptest`: the binary is NOT built or fetched here (it is
 * Dovecot's third-party tool; build it yourself against `dovecot-dev`). Unset or missing: says so and exits 0.
 * `IMAPTEST_SECS` overrides the 30 s per run, `IMAPTEST_CLIENTS` the 10 clients, `BENCH_SMOKE=1` runs 3 s each.
 * `IMAPTEST_TARGETS=maildir,dovecot` runs only the targets whose name contains one of the words (case-insensitive),
 * `IMAPTEST_TLS=0` / `=1` only plaintext / only TLS.
 * Needs root and Debian's dovecot packages, like the other reference benchmarks.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateDevCertificates } from '../lib/core/dev-certificates.js';
import { dovecotVersion, startDovecot } from './refs/dovecot-instance.js';
import { REF_USER } from './refs/postfix-instance.js';
import { startPosternProcess } from './refs/postern-process.js';
import { requireReferences, workDir, writeServerPem } from './refs/processes.js';
import { parseImaptest, type ImaptestErrorKind } from './refs/imaptest-output.js';
import { refMessage } from './refs/ref-messages.js';

/** One imaptest run's outcome. */
export interface StressResult {
  readonly target: string;
  readonly tls: boolean;
  /** imaptest's counter names (Logi, List, …) and their totals. */
  readonly totals: Readonly<Record<string, number>>;
  /** Sum of every counter. */
  readonly commands: number;
  /** Server CPU ms per counted command. */
  readonly cpuPerCommand: number;
  /** `Error:` lines by kind, with how often each appeared and one example. */
  readonly errors: readonly ImaptestErrorKind[];
}

/** Runs imaptest once; resolves its combined output (it exits 0 even when it reported errors). */
function runImaptest(bin: string, args: string[], secs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { env: { ...process.env, LD_LIBRARY_PATH: ['/usr/lib/dovecot', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') }, timeout: (secs + 60) * 1000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const out = `${stdout}\n${stderr}`;
        if (err && !out.includes('Totals:')) reject(new Error(`imaptest failed: ${err.message}\n${out.slice(-2000)}`));
        else resolve(out);
      },
    );
  });
}

/** Why the runner cannot run imaptest, or undefined when `IMAPTEST` names an executable. */
export function imaptestProblem(bin: string | undefined): string | undefined {
  if (!bin) return 'IMAPTEST is not set (IMAPTEST=/path/to/imaptest)';
  try {
    accessSync(bin, constants.X_OK);
    return undefined;
  } catch {
    return `IMAPTEST=${bin} is missing or not executable`;
  }
}

async function main(): Promise<void> {
  const bin = process.env.IMAPTEST;
  const problem = imaptestProblem(bin);
  if (problem !== undefined || bin === undefined) {
    console.log(`imaptest stress: SKIPPED, ${problem}`);
    return;
  }
  requireReferences();
  const secs = process.env.BENCH_SMOKE === '1' ? 3 : Number(process.env.IMAPTEST_SECS ?? 30);
  const clients = Number(process.env.IMAPTEST_CLIENTS ?? 10);
  console.log(`imaptest stress: clients=${clients} secs=${secs}, node ${process.version}, Dovecot ${dovecotVersion()}`);
  const certs = await generateDevCertificates();
  const dir = await workDir('imaptest');
  const results: StressResult[] = [];
  try {
    const pem = await writeServerPem(dir.path, certs);
    // imaptest APPENDs messages taken from an mbox file.
    const mbox = join(dir.path, 'source.mbox');
    const parts: string[] = [];
    for (let i = 0; i < 50; i++) parts.push(`From bob@example.com Mon Jan  1 10:00:00 2024\r\n${refMessage(i, 1024 + (i % 10) * 512).toString('latin1')}\r\n`);
    await writeFile(mbox, parts.join(''));
    let run = 0;
    const only = (process.env.IMAPTEST_TARGETS ?? '').toLowerCase().split(',').filter(Boolean);
    const targets = ['Postern memory', 'Postern Maildir', 'Dovecot Maildir'].filter((t) => only.length === 0 || only.some((w) => t.toLowerCase().includes(w)));
    const modes = process.env.IMAPTEST_TLS === '0' ? [false] : process.env.IMAPTEST_TLS === '1' ? [true] : [false, true];
    for (const target of targets) {
      for (const tls of modes) {
        const runDir = join(dir.path, `run-${++run}`);
        await mkdir(runDir, { mode: 0o755 });
        let stop: () => Promise<void> = async () => undefined;
        try {
          let port: number;
          let cpuMs: () => number;
          if (target.startsWith('Postern')) {
            const p = await startPosternProcess({
              store: target === 'Postern memory' ? 'memory' : `maildir:${join(runDir, 'postern')}`,
              listeners: [tls ? 'imaps' : 'imap'],
              allowInsecureAuth: !tls,
              ...pem,
            });
            stop = () => p.stop();
            port = tls ? p.ports.imaps : p.ports.imap;
            cpuMs = () => p.cpuMs();
          } else {
            const d = await startDovecot(runDir, certs, pem.certFile, pem.keyFile);
            stop = () => d.stop();
            port = tls ? d.ports.imaps : d.ports.imap;
            cpuMs = () => d.cpuMs();
          }
          const args = [
            'host=127.0.0.1',
            `port=${port}`,
            `user=${REF_USER.username}`,
            `pass=${REF_USER.password}`,
            `mbox=${mbox}`,
            `clients=${clients}`,
            `secs=${secs}`,
            ...(tls ? ['ssl=any-cert'] : []),
          ];
          const cpu0 = cpuMs();
          const output = await runImaptest(bin, args, secs);
          const cpu = cpuMs() - cpu0;
          const { totals, errors } = parseImaptest(output);
          const commands = Object.values(totals).reduce((a, b) => a + b, 0);
          const r: StressResult = { target, tls, totals, commands, cpuPerCommand: commands > 0 ? cpu / commands : NaN, errors };
          results.push(r);
          const cols = Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ');
          console.log(`${`${target}, ${tls ? 'TLS' : 'plain'}`.padEnd(24)} ${String(commands).padStart(7)} commands (${(commands / secs).toFixed(0)}/s), CPU ${r.cpuPerCommand.toFixed(2)} ms/command; ${cols}`);
          const errorCount = errors.reduce((a, e) => a + e.count, 0);
          console.log(errorCount === 0 ? '  no Error: lines' : `  ${errorCount} Error: lines`);
          for (const e of errors) console.log(`  ${e.count} x ${e.kind}, e.g. ${e.example}`);
        } finally {
          await stop();
        }
      }
    }
  } finally {
    await dir.remove();
  }
  const dovecot = (tls: boolean): number => results.find((r) => r.target === 'Dovecot Maildir' && r.tls === tls)?.commands ?? NaN;
  console.log('\nratios against Dovecot (commands in the same time; issue 9 goal for the Maildir store: >= 1.0):');
  for (const r of results.filter((x) => x.target !== 'Dovecot Maildir')) {
    console.log(`  ${r.target}, ${r.tls ? 'TLS' : 'plain'}: ${(r.commands / dovecot(r.tls)).toFixed(2)}x`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
