/**
 * Runs every benchmark and prints Postern's cost against its reference as a ratio.
 * `npm run bench` (full) or `npm run bench:smoke` (CI: a few iterations, proves they run).
 * Exits non-zero only when a benchmark fails to run, never for a ratio: ratios are read by people.
 */
import 'reflect-metadata';
import { generateDevCertificates } from '../lib/core/dev-certificates.js';
import { format, SMOKE, type BenchResult } from './harness.js';
import { tlsHandshake } from './tls-handshake.bench.js';
import { pipelining } from './pipelining.bench.js';
import { sessionMemory } from './session-memory.bench.js';

const benches = [tlsHandshake, pipelining, sessionMemory];

async function main(): Promise<void> {
  const certs = await generateDevCertificates();
  console.log(`postern benchmarks${SMOKE ? ' (smoke)' : ''}, node ${process.version}`);
  const results: BenchResult[] = [];
  for (const bench of benches) {
    const r = await bench(certs);
    results.push(r);
    console.log(format(r));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
