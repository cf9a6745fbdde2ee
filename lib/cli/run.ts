/**
 * The `postern` command's body: runs SMTP, POP3 and IMAP (STARTTLS and implicit TLS) over one mail store.
 * `postern --help` lists the options. Exit codes: 0 after a clean shutdown, 2 for a usage or start-up error.
 * `lib/cli/main.ts` is the executable that calls {@link runCli}.
 */
import cluster from 'node:cluster';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ChaosToken } from '../chaos/chaos.js';
import { ProxyConfigError } from '../core/proxy-protocol.js';
import { CertificateError } from '../core/server-security.js';
import { SslProtocolsError } from '../core/ssl-protocols.js';
import { ServerSecurityToken } from '../di/core.module.js';
import { createMailServerContainer, MailServer, type MailServerConfig } from '../di/mail-server.js';
import { flushLogOutput, Logger } from '../log/logger.js';
import { MetricsSource, PROMETHEUS_TEXT, serveToCluster } from '../metrics/cluster-metrics.js';
import { MetricsServer } from '../metrics/metrics-server.js';
import { MetricsRegistry } from '../metrics/postern-metrics.js';
import { AuthThrottleToken } from '../protocol/auth-throttle.js';
import { parseCliArgs, UsageError, HELP, workerCount } from './cli-args.js';
import { checkConfig } from './cli-check.js';
import { runPrimary, readyLine } from './cluster-primary.js';
import { joinCluster, workerLimits } from './cluster-worker.js';
import { createDefaultFolders } from './default-folders.js';

/** Runs the command with `argv` (without node and script); resolves the exit code. */
export async function runCli(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  let config: MailServerConfig;
  try {
    const args = parseCliArgs(argv, process.env);
    if (args.help) {
      out(HELP);
      return 0;
    }
    if (args.version) {
      out(version());
      return 0;
    }
    config = args.config;
    if (args.check) return await checkConfig(config, out);
  } catch (err) {
    return fail(err);
  }
  // --workers N: this process becomes the primary and forks N copies of this command (they find out below).
  if (cluster.isPrimary && workerCount(config.workers) > 1) {
    try {
      return await runPrimary(config, workerCount(config.workers), argv, out);
    } catch (err) {
      return fail(err);
    }
  }
  const worker = await joinCluster();
  if (worker) {
    // The primary created the users, and shares its certificate and session-ticket keys. With ACME it runs the
    // ACME client and pushes every certificate and challenge to the workers (onAcme below), so workers run none.
    const { certificate, ticketKeys } = worker.init;
    config = {
      ...config,
      acme: undefined,
      users: [],
      limits: workerLimits(config.limits, workerCount(config.workers)),
      tls: { ...config.tls, ...(certificate ? { certificate } : {}), ...(ticketKeys ? { ticketKeys: Buffer.from(ticketKeys, 'base64'), ticketKeyRotationMs: 0 } : {}) },
    };
  }
  const container = createMailServerContainer(config);
  if (worker) {
    // Metrics as one set: this worker answers the primary's collection rounds, and its HTTP /metrics serves the sum.
    serveToCluster(container.get(MetricsRegistry));
    container.bind(MetricsSource).toConstantValue({ contentType: PROMETHEUS_TEXT, metrics: () => worker.clusterMetrics() });
  }
  const server = new MailServer(container);
  const log = container.get(Logger);
  let metrics: MetricsServer | undefined;
  // Listen for signals before anything starts: a SIGTERM right after the ready lines must still be graceful.
  let onSignal!: (signal: NodeJS.Signals) => void;
  const onRotate = (): void => {
    container.get(ServerSecurityToken).rotateTicketKeys();
    log.info('session ticket keys rotated');
  };
  const onRenew = (): void => {
    log.info('acme renewal requested', { signal: 'SIGHUP' });
    server.acme?.renewNow().catch(() => undefined);
  };
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => resolve(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void worker?.stopRequested.then(() => resolve('SIGTERM'));
  });
  try {
    const security = container.get(ServerSecurityToken);
    await security.prepare();
    worker?.onTicketKeys((keys) => {
      security.setTicketKeys(keys);
      log.info('session ticket keys replaced', { pid: process.pid });
    });
    await worker?.onAcme(security, (change) => {
      if (change.certificate === undefined) return;
      const cert = new X509Certificate(change.certificate);
      log.info('acme certificate applied', { pid: process.pid, subject: cert.subject, issuer: cert.issuer, fingerprint256: cert.fingerprint256 });
    });
    if (worker) {
      // Fault-injection rules are the cluster's: rules set through one worker's HTTP API reach every other one.
      const chaos = container.get(ChaosToken);
      let remote = false;
      const applyRemote = (rules: unknown): void => {
        remote = true;
        try {
          chaos.set(rules);
        } catch (err) {
          log.warn('chaos rules from the cluster refused', { error: (err as Error).message });
        } finally {
          remote = false;
        }
      };
      if (worker.init.chaos !== undefined) applyRemote(worker.init.chaos);
      chaos.onChange((rules) => {
        if (!remote) worker.sendChaos(rules);
      });
      worker.onChaos(applyRemote);
      // Failed-login limits count the whole cluster: each worker's failures and successes reach every other one.
      const throttle = container.get(AuthThrottleToken);
      throttle.onEvent((event) => worker.sendAuthEvent(event));
      worker.onAuthEvent((event) => throttle.apply(event));
    }
    // SIGUSR2: new ticket keys now (a cluster's primary does this for all its workers, see cluster-primary.ts).
    if (!worker) process.on('SIGUSR2', onRotate);
    // SIGHUP with ACME: order a new certificate now (a cluster's primary does it for all its workers).
    if (!worker && config.acme) process.on('SIGHUP', onRenew);
    if (security.isSelfSigned) out(`postern: using a generated self-signed certificate, SHA-256 fingerprint ${security.fingerprint256}`);
    const ready = await server.start();
    // Every process may run it: existing folders are left alone and a racing create is ALREADY_EXISTS.
    await createDefaultFolders(server.store, (config.users ?? []).map((u) => u.username));
    // With --workers the primary serves --metrics-port (the sum of every worker's registry, cluster-metrics.ts).
    if (config.metricsPort !== undefined && !worker) {
      metrics = new MetricsServer(container.get(MetricsRegistry), log, { host: config.host, port: config.metricsPort });
      const addr = await metrics.start().catch((err: NodeJS.ErrnoException) => {
        throw Object.assign(new Error(`metrics: ${err.code === 'EADDRINUSE' ? `${config.host ?? '127.0.0.1'}:${config.metricsPort} is already in use` : err.message}`), { code: err.code });
      });
      out(`postern: metrics ready on http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/metrics`);
    }
    if (worker) {
      log.info('worker listening', { pid: process.pid, listeners: ready.length });
      worker.ready(ready);
    } else for (const l of ready) out(readyLine(l));
    if (!worker && !config.authDisabled && (await server.store.users.list()).length === 0) {
      out('postern: no users yet: add --user LOGIN:PASSWORD@DOMAIN, or --auth-disabled to accept any login and recipient');
    }
  } catch (err) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metrics?.close();
    process.off('SIGUSR2', onRotate);
    process.off('SIGHUP', onRenew);
    await server.stop().catch(() => undefined);
    if (worker) {
      // Every worker fails the same way (a port in use…): the primary prints the first reason, once.
      await worker.failed((err as Error)?.message ?? String(err));
      worker.detach();
      return 2;
    }
    return fail(err);
  }
  log.info('shutting down', { signal: await stopRequested });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await metrics?.close();
  process.off('SIGUSR2', onRotate);
  process.off('SIGHUP', onRenew);
  await server.stop();
  await container.unbindAllAsync();
  worker?.detach();
  if (!worker) out('postern: stopped'); // the primary says it once for all workers
  return 0;
}

/** Prints a one-line error (no stack unless POSTERN_DEBUG is set) and returns exit code 2. */
export function fail(err: unknown): number {
  const e = err as NodeJS.ErrnoException;
  const known = err instanceof UsageError || err instanceof CertificateError || err instanceof SslProtocolsError || err instanceof ProxyConfigError || typeof e?.code === 'string';
  flushLogOutput(); // the log lines of the failed start come first, the one-line reason last
  process.stderr.write(`postern: error: ${e?.message ?? String(err)}${err instanceof UsageError ? ' (see postern --help)' : ''}\n`);
  if (!known && process.env.POSTERN_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
  return 2;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `postern ${pkg.version}`;
}
