/**
 * The collectors behind {@link PosternMetrics}' hot series: {@link SeriesHistogram} (one labelled histogram series
 * per command or store operation, observed without prom-client's per-call label work) and {@link Tally} (counts
 * published as a Counter or Gauge at scrape time). Split out of `postern-metrics.ts`, their only user.
 */
import type { Counter, Gauge, Registry } from 'prom-client';

/** One value of a {@link SeriesHistogram}'s data, in prom-client's shape. */
interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/** A {@link SeriesHistogram}'s data, in prom-client's shape. */
interface HistogramData {
  name: string;
  help: string;
  type: 'histogram';
  values: HistogramValue[];
  aggregator: 'sum';
}

/** One labelled series of a {@link SeriesHistogram}: observations per bucket (not cumulative), their sum and count. */
export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
  /** The histogram's {@link SeriesHistogram.generation} it was made in. */
  readonly generation: number;
}

/**
 * A Prometheus histogram kept as plain numbers per series and registered in a prom-client {@link Registry} as a
 * metric of its own (issue 15: prom-client's `Histogram#observe` validates and hashes the labels on every call, once
 * per command). `get()` returns what prom-client's Histogram returns (same values, labels, order and aggregator), so
 * the text exposition, `getMetricsAsJSON` and the cluster's sum are unchanged.
 */
export class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private all = new Map<string, HistogramSeries>();
  /** Bumped by {@link reset}: series of an earlier generation are no longer counted. */
  private generation = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of `labels` (label values in the metric's label order), made with no observations on first use. */
  series(labels: Readonly<Record<string, string>>): HistogramSeries {
    const key = Object.values(labels).join('\0');
    let s = this.all.get(key);
    if (s === undefined) {
      s = { labels, buckets: new Float64Array(this.bounds.length), sum: 0, count: 0, generation: this.generation };
      this.all.set(key, s);
    }
    return s;
  }

  /** False once {@link reset} dropped the series (callers that keep series look them up again). */
  holds(series: HistogramSeries): boolean {
    return series.generation === this.generation;
  }

  /** One observation: the first bucket whose upper bound is ≥ `value` (none: only the `+Inf` count), as prom-client. */
  observe(series: HistogramSeries, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) series.buckets[i]!++;
    series.sum += value;
    series.count += 1;
  }

  /**
   * prom-client's metric interface for the text exposition: the cumulative buckets, `+Inf`, `_sum` and `_count` of
   * every series, with the series' labels as `sharedLabels` (so default labels go where prom-client puts them).
   */
  async getForPromString(): Promise<HistogramData> {
    const values: HistogramValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.all.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.buckets[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucketName, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucketName, exemplar: null });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** prom-client's metric interface (JSON, the cluster's sum): as {@link getForPromString}, labels merged. */
  async get(): Promise<HistogramData> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  /** prom-client's `Registry#resetMetrics`: every series dropped. */
  reset(): void {
    this.all = new Map();
    this.generation++;
  }
}
/**
 * Series of one metric counted as plain numbers, keyed by their label values, and copied into the prom-client metric
 * by its `collect()` when the registry is scraped. A counter is reset and re-filled with the totals (they only grow);
 * a gauge is set.
 */
export class Tally<L extends string> {
  private readonly all = new Map<string, { readonly labels: Partial<Record<L, string>>; n: number }>();

  /** The series under `key` (created at 0 with `labels`); bump its `n`. */
  series(key: string, labels: Partial<Record<L, string>>): { n: number } {
    let s = this.all.get(key);
    if (s === undefined) {
      s = { labels, n: 0 };
      this.all.set(key, s);
    }
    return s;
  }

  publishCounter(counter: Counter<L>): void {
    counter.reset();
    for (const s of this.all.values()) counter.inc(s.labels, s.n);
  }

  publishGauge(gauge: Gauge<L>): void {
    for (const s of this.all.values()) gauge.set(s.labels, s.n);
  }
}

