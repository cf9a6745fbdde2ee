/** One Prometheus sample: name, help, type and value. */
export interface MetricSample {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly value: number;
}

/**
 * Renders samples in the Prometheus text exposition format 0.0.4 (`# HELP`, `# TYPE`, `name value`). Used by
 * `GET /metrics` until a shared metrics registry is available on the container.
 */
export function prometheusText(samples: readonly MetricSample[]): string {
  return samples.map((s) => `# HELP ${s.name} ${s.help}\n# TYPE ${s.name} ${s.type}\n${s.name} ${Number.isFinite(s.value) ? s.value : 0}\n`).join('');
}

/** Content type of {@link prometheusText}. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
