/**
 * Tiny benchmark harness: every benchmark measures Postern and a reference doing the same work in the same
 * run, and reports the ratio (machine speed cancels out). `BENCH_SMOKE=1` shrinks every loop to a few
 * iterations so CI only proves the benchmarks still run.
 */
export interface BenchResult {
  readonly name: string;
  /** What one measured unit is (e.g. "handshake", "MB"). */
  readonly unit: string;
  /** Postern's cost per unit (ms or bytes). */
  readonly subject: number;
  /** The reference's cost per unit. */
  readonly reference: number;
  /** What the reference is. */
  readonly referenceName: string;
  /** Goal: subject / reference should stay below this. */
  readonly goal: number;
  /** What the subject is, when it is not Postern (e.g. a ceiling measured with a minimal server). */
  readonly subjectName?: string;
  /**
   * The ratio compared with the goal, when the benchmark has a better one than `subject / reference` (the median of
   * per-round ratios of interleaved rounds, which cancels the machine's drift between rounds).
   */
  readonly ratio?: number;
}

/** True when running the CI smoke (few iterations). */
export const SMOKE = process.env.BENCH_SMOKE === '1';

/** `full` normally, `smoke` under BENCH_SMOKE=1. */
export function iterations(full: number, smoke = 3): number {
  return SMOKE ? smoke : full;
}

/** Runs `fn` `n` times sequentially and returns milliseconds per run (after `warmup` unmeasured runs). */
export async function timePerRun(n: number, fn: () => Promise<void>, warmup = Math.min(5, n)): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1e6 / n;
}

/**
 * Formats one result line. A smoke run's loops are too short for a ratio to say anything (a heap growth over 40
 * messages, a CPU reading of a few /proc ticks), so its lines say so instead of "ok" or "OVER GOAL".
 */
export function format(r: BenchResult): string {
  const ratio = r.ratio ?? r.subject / r.reference;
  const ok = SMOKE ? '(smoke: too few iterations to compare)' : ratio <= r.goal ? 'ok' : 'OVER GOAL';
  return `${r.name.padEnd(34)} ${r.subjectName ?? 'postern'} ${r.subject.toPrecision(3)} vs ${r.referenceName} ${r.reference.toPrecision(3)} per ${r.unit}  ratio ${ratio.toFixed(2)} (goal ≤ ${r.goal}) ${ok}`;
}
