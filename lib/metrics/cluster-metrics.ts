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

/** prom-client's cluster messages (its `lib/cluster.js`): the primary's collection request and a worker's answer. */
const GET_METRICS_REQ = 'prom-client:getMetricsReq';
const GET_METRICS_RES = 'prom-client:getMetricsRes';

/** The IPC channel a worker answers on: `process` in a cluster worker (a parameter for the spec). */
export interface MetricsChannel {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  readonly connected: boolean;
  send?(message: unknown, sendHandle: undefined, options: object, callback: (error: Error | null) => void): boolean;
}

/**
 * In a worker: answer the primary's collection rounds with `registry`, in prom-client's message format. prom-client's
 * own worker listener is not used: it calls `process.send` without a callback, so an answer that is ready after the
 * channel closed (a scrape while the worker drains) raises `ERR_IPC_CHANNEL_CLOSED` as an `'error'` event on `process`,
 * which kills the worker. Here an answer goes out only while the channel is connected, and a send that fails anyway
 * is dropped (the primary's round times out for that worker, as for a worker that died).
 */
export function serveToCluster(registry: Registry, channel: MetricsChannel = process as MetricsChannel): void {
  channel.on('message', (message) => {
    if (typeof message !== 'object' || message === null) return;
    const { type, requestId } = message as { type?: unknown; requestId?: unknown };
    if (type !== GET_METRICS_REQ) return;
    registry.getMetricsAsJSON().then(
      (metrics) => answer(channel, { type: GET_METRICS_RES, requestId, metrics: [metrics] }),
      (err: unknown) => answer(channel, { type: GET_METRICS_RES, requestId, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

function answer(channel: MetricsChannel, message: object): void {
  if (!channel.connected || !channel.send) return;
  channel.send(message, undefined, {}, () => undefined);
}
