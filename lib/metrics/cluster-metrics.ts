/**
 * Metrics of `postern --workers N` as one set: prom-client's own cluster support (`AggregatorRegistry`) asks every
 * worker for its registry over the cluster IPC channel and adds them up (counters, gauges and histogram buckets are
 * summed: connections open, accepted, messages… of the whole cluster). The primary serves the sum on
 * `--metrics-port`; a worker's HTTP `/metrics` asks the primary for it.
 */
import type { ServiceIdentifier } from 'inversify';
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

/** Something that renders Prometheus text: a prom-client `Registry`, or the cluster's sum. */
export interface MetricsSource {
  /** The exposition text (format 0.0.4). */
  metrics(): Promise<string>;
  /** Its `content-type`. */
  readonly contentType: string;
}

/**
 * DI token of the {@link MetricsSource} that the HTTP listener's `/metrics` serves below its own gauges. Unbound,
 * it serves the container's `MetricsRegistry`; a cluster worker binds the cluster's sum here.
 */
export const MetricsSource = Symbol.for('postern.MetricsSource') as ServiceIdentifier<MetricsSource>;

/** Prometheus text format 0.0.4, what prom-client's default registry serves. */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

function promClient(): typeof import('prom-client') {
  return createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
}

/**
 * In the primary: a source that collects every live worker's registry and sums them (prom-client waits up to 5 s for
 * the workers, then fails the scrape). Each call is one round over IPC.
 */
export function clusterMetricsSource(): MetricsSource {
  const aggregator = new (promClient().AggregatorRegistry)();
  return { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() };
}

/**
 * In a worker: answer the primary's collection rounds with `registry` (prom-client's default is its global one).
 * prom-client adds its IPC listener when the first `AggregatorRegistry` is made, in a worker as in the primary.
 */
export function serveToCluster(registry: Registry): void {
  const { AggregatorRegistry } = promClient();
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}
