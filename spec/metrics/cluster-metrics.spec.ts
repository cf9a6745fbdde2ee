import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The compiled module under test, imported by the child processes below. */
const MODULE = fileURLToPath(new URL('../../lib/metrics/cluster-metrics.js', import.meta.url));

/**
 * A child on a real IPC channel (as a cluster worker has) with a registry holding `postern_spec_total` = 3, answering
 * collection rounds through `serveToCluster`; `then` runs after it is set up.
 */
function child(then: string): ChildProcess {
  const script = `
    import { createRequire } from 'node:module';
    import { serveToCluster } from ${JSON.stringify(MODULE)};
    const { Registry, Counter } = createRequire(import.meta.url)('prom-client');
    const registry = new Registry();
    new Counter({ name: 'postern_spec_total', help: 'spec', registers: [registry] }).inc(3);
    serveToCluster(registry);
    ${then}
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
}

async function exitOf(c: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(c, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('cluster metrics: a worker answering the primary over IPC', () => {
  it("answers a collection round in prom-client's format with its registry", async () => {
    const c = child(`process.send('ready');`);
    const exited = exitOf(c);
    try {
      await once(c, 'message');
      c.send({ type: 'prom-client:getMetricsReq', requestId: 7 });
      const [answer] = (await once(c, 'message')) as [{ type: string; requestId: number; metrics: Array<Array<{ name: string; values: Array<{ value: number }> }>> }];
      expect(answer.type).to.equal('prom-client:getMetricsRes');
      expect(answer.requestId).to.equal(7);
      expect(answer.metrics).to.have.length(1);
      const counter = answer.metrics[0]!.find((m) => m.name === 'postern_spec_total');
      expect(counter?.values[0]?.value).to.equal(3);
    } finally {
      c.kill();
      await exited;
    }
  });

  it('ignores messages that are not collection requests', async () => {
    const c = child(`process.send('ready');`);
    const exited = exitOf(c);
    try {
      await once(c, 'message');
      c.send({ type: 'something-else', requestId: 1 });
      c.send('prom-client:getMetricsReq');
      c.send({ type: 'prom-client:getMetricsReq', requestId: 2 });
      const [answer] = (await once(c, 'message')) as [{ requestId: number }];
      expect(answer.requestId).to.equal(2); // the first answer is to the only real request
    } finally {
      c.kill();
      await exited;
    }
  });

  it('keeps the worker alive when the channel closes before its answer is ready (a scrape during a drain)', async () => {
    // The request arrives, then the channel closes in the same turn; the registry's answer is ready a turn later.
    // prom-client's own listener sent it without a callback: ERR_IPC_CHANNEL_CLOSED as an 'error' event on
    // process, an uncaught exception, exit code 1.
    const c = child(`
      process.emit('message', { type: 'prom-client:getMetricsReq', requestId: 1 });
      process.disconnect();
      setTimeout(() => { process.stdout.write('alive'); process.exit(0); }, 100);
    `);
    const { code, stdout, stderr } = await exitOf(c);
    expect(stderr).to.equal('');
    expect(stdout).to.equal('alive');
    expect(code).to.equal(0);
  });
});
