/**
 * Runs every benchmark and prints Postern's cost against its reference as a ratio.
 * `npm run bench` (full) or `npm run bench:smoke` (CI: a few iterations, proves they run).
 * `BENCH_ONLY=<part of a function name>` runs a subset (e.g. `BENCH_ONLY=smtp`).
 * Exits non-zero only when a benchmark fails to run, never for a ratio: ratios are read by people.
 */
import 'reflect-metadata';
import { generateDevCertificates, type DevCertificates } from '../lib/core/dev-certificates.js';
import { format, SMOKE, type BenchResult } from './harness.js';
import { tlsHandshake } from './tls-handshake.bench.js';
import { tlsCost } from './tls-cost.bench.js';
import { instructionCounts } from './instructions.bench.js';
import { smtpHotpath } from './smtp-hotpath.bench.js';
import { pipelining } from './pipelining.bench.js';
import { sessionMemory } from './session-memory.bench.js';
import { storedMessageMemory } from './stored-memory.bench.js';
import { smtpTransaction } from './smtp-transaction.bench.js';
import { smtpBody } from './smtp-body.bench.js';
import { imapFetch } from './imap-fetch.bench.js';
import { maildirStore } from './maildir-store.bench.js';
import { postgresIdle } from './postgres-idle.bench.js';
import { postgresDelivery } from './postgres-delivery.bench.js';
import { workersThroughput } from './workers.bench.js';
import { startImport, startSecondServer, receivedMessagesRepeat } from './start.bench.js';
import { refsDelivery } from './maildir-delivery.bench.js';
import { refsMailbox } from './maildir-mailbox.bench.js';

/** Each benchmark gives one result, or several when one run measures more than one thing. */
const benches: Array<(certs: DevCertificates) => Promise<BenchResult | readonly BenchResult[]>> = [
  tlsHandshake,
  tlsCost,
  smtpHotpath,
  instructionCounts,
  pipelining,
  sessionMemory,
  storedMessageMemory,
  smtpTransaction,
  smtpBody,
  imapFetch,
  maildirStore,
  postgresIdle,
  postgresDelivery,
  workersThroughput,
  startImport,
  startSecondServer,
  receivedMessagesRepeat,
  refsDelivery,
  refsMailbox,
];

async function main(): Promise<void> {
  const certs = await generateDevCertificates();
  console.log(`postern benchmarks${SMOKE ? ' (smoke)' : ''}, node ${process.version}`);
  const results: BenchResult[] = [];
  // BENCH_ONLY=smtp runs only the benchmarks whose function name contains "smtp".
  const only = process.env.BENCH_ONLY;
  for (const bench of benches.filter((b) => !only || b.name.includes(only))) {
    for (const r of [await bench(certs)].flat()) {
      results.push(r);
      console.log(format(r));
      if ('note' in r && typeof r.note === 'string') console.log(`  ${r.note}`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
