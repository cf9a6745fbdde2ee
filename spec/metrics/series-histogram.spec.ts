/**
 * Issue 15: PosternMetrics keeps its command and store-operation histograms as plain numbers per series. What a
 * scrape shows must be what prom-client's own Histogram shows for the same observations: text exposition, JSON
 * (the cluster's sum reads it) and a reset.
 */
import { expect } from 'chai';
import { Histogram, Registry } from 'prom-client';
import { PosternMetrics } from '../../lib/metrics/postern-metrics.js';

/** Seconds on, below, between and above the buckets (0.0005 … 10 s), twice for one series. */
const OBSERVATIONS: readonly [string, string, number][] = [
  ['smtp', 'EHLO', 0.0001],
  ['smtp', 'EHLO', 0.0005],
  ['smtp', 'MAIL', 0.003],
  ['imap', 'SELECT', 0.26],
  ['smtp', 'EHLO', 12],
  ['pop3', 'STAT', 10],
  ['smtp', 'MAIL', 0],
];

/** The same metric as prom-client's Histogram, in a registry of its own, given the same observations. */
async function reference(defaultLabels?: Record<string, string>): Promise<Registry> {
  const registry = new Registry();
  if (defaultLabels) registry.setDefaultLabels(defaultLabels);
  const h = new Histogram({
    name: 'postern_command_duration_seconds',
    help: 'Time from a command line to its reply being queued, by protocol and command.',
    labelNames: ['protocol', 'command'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  for (const [protocol, command, s] of OBSERVATIONS) h.labels({ protocol, command }).observe(s);
  return registry;
}

function ours(defaultLabels?: Record<string, string>): { metrics: PosternMetrics; registry: Registry } {
  const registry = new Registry();
  if (defaultLabels) registry.setDefaultLabels(defaultLabels);
  const metrics = new PosternMetrics(registry);
  for (const [protocol, command, s] of OBSERVATIONS) metrics.command(protocol, command, s);
  return { metrics, registry };
}

describe('metrics: the command histogram kept as plain numbers', () => {
  it("scrapes as prom-client's Histogram does, in text and as JSON, with and without default labels", async () => {
    for (const labels of [undefined, { app: 'spec' }]) {
      const { registry } = ours(labels);
      const want = await reference(labels);
      const name = 'postern_command_duration_seconds';
      expect(await registry.getSingleMetricAsString(name)).to.equal(await want.getSingleMetricAsString(name));
      const json = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
      const wantJson = (await want.getMetricsAsJSON()).find((m) => m.name === name);
      expect(JSON.parse(JSON.stringify(json))).to.deep.equal(JSON.parse(JSON.stringify(wantJson)));
    }
  });

  it('drops every series on resetMetrics and counts again from there', async () => {
    const { metrics, registry } = ours();
    registry.resetMetrics();
    expect(await registry.getSingleMetricAsString('postern_command_duration_seconds')).to.not.contain('_count');
    metrics.command('smtp', 'EHLO', 0.002);
    const text = await registry.getSingleMetricAsString('postern_command_duration_seconds');
    expect(text).to.match(/\npostern_command_duration_seconds_count\{protocol="smtp",command="EHLO"\} 1$/);
    expect(text).to.contain('postern_command_duration_seconds_bucket{le="0.001",protocol="smtp",command="EHLO"} 0\n');
    expect(text).to.contain('postern_command_duration_seconds_bucket{le="0.0025",protocol="smtp",command="EHLO"} 1\n');
  });

  it('counts messages and their octets by result', async () => {
    const registry = new Registry();
    const metrics = new PosternMetrics(registry);
    metrics.message('accepted', 100);
    metrics.message('accepted', 50);
    metrics.message('refused', 0);
    expect(await registry.getSingleMetricAsString('postern_messages_total')).to.contain('postern_messages_total{result="accepted"} 2\npostern_messages_total{result="refused"} 1');
    expect(await registry.getSingleMetricAsString('postern_message_bytes_total')).to.match(/postern_message_bytes_total\{result="accepted"\} 150$/);
  });
});
