/**
 * The primary of `postern --workers N`: forks N node:cluster workers that share the listening sockets (the
 * primary accepts and hands connections out round-robin), keeps them alive, and stops them together.
 *
 * The primary never serves mail. Before forking it does what must happen once: create the `--user` accounts in the
 * shared store, generate the self-signed certificate when none is configured (so all workers serve the same one),
 * and make the session-ticket keys, which it rotates and pushes to every worker over IPC so that a ticket issued
 * by one worker resumes on any other. With ACME it runs the one ACME client and pushes challenges and certificates
 * to the workers (`cluster-acme.ts`).
 */
import cluster, { type Worker } from 'node:cluster';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MailStore } from '../contracts/mail-store.js';
import { AcmeCertificateManager } from '../core/acme-certificates.js';
import { generateSelfSigned } from '../core/self-signed.js';
import { ServerSecurity } from '../core/server-security.js';
import { TICKET_KEY_ROTATION_MS, TicketKeyRotation } from '../core/ticket-keys.js';
import { createMailServerContainer, type MailServerConfig, type ReadyListener } from '../di/mail-server.js';
import { listenerDescriptor } from '../di/protocols.js';
import { createLogger, flushLogOutput } from '../log/logger.js';
import { clusterMetricsSource } from '../metrics/cluster-metrics.js';
import { MetricsServer } from '../metrics/metrics-server.js';
import { ClusterAcmeRelay } from './cluster-acme.js';
import { isAuthEvent, isClusterMessage, type AuthEventMessage, type ChaosMessage, type InitMessage } from './cluster-messages.js';
import { createDefaultFolders } from './default-folders.js';

/** The executable every worker runs (this package's `postern`), whatever script started the primary. */
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** First restart delay after a crash; doubles per crash in a row. */
export const RESTART_DELAY_MS = 100;
/** Longest restart delay, so a crash loop costs one fork every 30 s. */
export const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that lived this long before crashing was healthy: its restart starts the back-off over. */
export const HEALTHY_UPTIME_MS = 30_000;
/** After the stop order, workers get their own drain time (TcpServer's 5 s grace plus slack) before SIGKILL. */
export const WORKER_STOP_TIMEOUT_MS = 15_000;

/** Prints a ready line the way the single-process command does. */
export function readyLine(l: ReadyListener, state = 'ready on'): string {
  const verb = listenerDescriptor(l.name)?.listener?.startTlsVerb ?? 'STARTTLS';
  const kind = l.name === 'http' ? 'HTTP API and web inbox' : l.tls === 'implicit' ? 'implicit TLS' : verb;
  if (l.path !== undefined) return `postern: ${l.name} ${state} ${l.path} (Unix socket, ${kind})`;
  return `postern: ${l.name} ${state} ${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port} (${kind})`;
}

/**
 * Runs the primary until SIGTERM/SIGINT (then every worker drains and the promise resolves 0) or until the
 * first start fails (a worker exits before all are ready: the others are stopped, resolves 2).
 * `argv` is passed to every worker unchanged; workers detect that they are workers.
 */
export async function runPrimary(config: MailServerConfig, count: number, argv: readonly string[], out: (line: string) => void): Promise<number> {
  const log = createLogger(config.log).child({ role: 'primary' });
  const init = await prepareShared(config, out);
  const tickets =
    config.tls?.sessionTickets === false
      ? undefined
      : new TicketKeyRotation(config.tls?.ticketKeyRotationMs ?? TICKET_KEY_ROTATION_MS, (keys) => {
          log.info('session ticket keys rotated', { workers: live.size });
          for (const w of live) if (w.isConnected()) w.send({ postern: 'ticket-keys', ticketKeys: keys.toString('base64') });
        }, config.tls?.ticketKeys);
  // ACME: one client here for the whole cluster; the workers only serve what the relay pushes to them.
  const acmeLog = log.child({ proto: 'acme' });
  const relay = config.acme && init.certificate ? new ClusterAcmeRelay(init.certificate, acmeLog) : undefined;
  const acme = config.acme && relay ? new AcmeCertificateManager(config.acme, relay, acmeLog) : undefined;
  // Metrics: the workers' registries summed (prom-client's AggregatorRegistry), on --metrics-port here and for the
  // workers' HTTP /metrics. Listening before the fork, so a port in use fails the start with one line.
  const metrics = clusterMetricsSource();
  /** The fault-injection rules a worker last set at run time (boxed: `undefined` is no config, not "none set"). */
  let chaos: { config: unknown } | undefined;
  const metricsServer = config.metricsPort === undefined ? undefined : new MetricsServer(metrics, log, { host: config.host, port: config.metricsPort });
  const metricsAddress = await metricsServer?.start().catch((err: NodeJS.ErrnoException) => {
    throw Object.assign(new Error(`metrics: ${err.code === 'EADDRINUSE' ? `${config.host ?? '127.0.0.1'}:${config.metricsPort} is already in use` : err.message}`), { code: err.code });
  });

  cluster.setupPrimary({ exec: MAIN, args: [...argv] });
  const live = new Set<Worker>();
  let stopping = false;
  let failed = false;
  /** The first start-up error a worker reported. */
  let failure: string | undefined;
  let started = false;
  let crashes = 0;
  const restartTimers = new Set<NodeJS.Timeout>();
  const bornAt = new Map<number, number>();
  const readyPids = new Set<number>();
  let firstReady: readonly ReadyListener[] | undefined;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const fork = (): Worker => {
    const w = cluster.fork();
    live.add(w);
    bornAt.set(w.id, Date.now());
    // A message sent as the worker dies fails with ERR_IPC_CHANNEL_CLOSED on the worker object; unhandled, that
    // 'error' would end the primary with exit 1 instead of its own exit code (2 for a failed start).
    w.on('error', (err: Error) => log.debug('worker IPC error', { worker: w.id, reason: err.message }));
    w.on('message', (m: unknown) => {
      if (!isClusterMessage(m)) return;
      // A worker still loading when the stop order went out missed it: answer its hello with the order instead.
      if (m.postern === 'hello') {
        if (stopping) w.send({ postern: 'stop' });
        else {
          const acmeState = relay ? { certificate: relay.currentPem, challenges: relay.challenges, httpChallenges: relay.httpChallenges } : {};
          const chaosState = chaos ? { chaos: chaos.config } : {};
          w.send({ ...init, ...acmeState, ...chaosState, ticketKeys: tickets?.current.toString('base64') } satisfies InitMessage);
          relay?.joined(w);
        }
      } else if (m.postern === 'applied') relay?.applied(w, m);
      else if (m.postern === 'chaos') {
        // Kept for workers (re)started later; checked by each worker's Chaos.set, as on the HTTP API.
        chaos = { config: m.config };
        for (const other of live) if (other !== w && other.isConnected()) other.send({ postern: 'chaos', config: m.config } satisfies ChaosMessage);
      } else if (m.postern === 'metrics-request' && Number.isInteger(m.id)) {
        metrics.metrics().then(
          (text) => w.isConnected() && w.send({ postern: 'metrics', id: m.id, text }),
          (err: unknown) => w.isConnected() && w.send({ postern: 'metrics', id: m.id, error: err instanceof Error ? err.message : String(err) }),
        );
      }
      else if (m.postern === 'ready') onReady(w, m.pid, m.listeners);
      else if (m.postern === 'failed') failure ??= m.message;
      else if (m.postern === 'auth' && isAuthEvent(m.event)) {
        for (const other of live) if (other !== w && other.isConnected()) other.send({ postern: 'auth', event: m.event } satisfies AuthEventMessage);
      }
    });
    return w;
  };

  const onReady = (w: Worker, pid: number, listeners: readonly ReadyListener[]): void => {
    if (started) {
      log.info('worker restarted', { worker: w.id, pid });
      return;
    }
    firstReady ??= listeners;
    readyPids.add(pid);
    if (readyPids.size < count) return;
    started = true;
    for (const l of firstReady) out(readyLine(l));
    out(`postern: ${count} workers ready (pids ${[...readyPids].join(', ')})`);
    if (metricsAddress) out(`postern: metrics ready on http://${metricsAddress.address.includes(':') ? `[${metricsAddress.address}]` : metricsAddress.address}:${metricsAddress.port}/metrics (all workers)`);
    // After every worker listens: the CA's validation connects to them. Failures are logged and retried.
    acme?.start().catch(() => undefined);
  };

  const onExit = (w: Worker, code: number | null, signal: string | null): void => {
    const lived = Date.now() - (bornAt.get(w.id) ?? Date.now());
    bornAt.delete(w.id);
    live.delete(w);
    relay?.left(w);
    if (stopping) {
      if (live.size === 0) resolveDone(0);
      return;
    }
    if (!started) {
      // A worker could not start (its own error line is on stderr): stop the rest and fail like one process would.
      log.error('worker failed to start', { worker: w.id, pid: w.process.pid, code, signal });
      failed = true;
      stopAll();
      return;
    }
    crashes = lived >= HEALTHY_UPTIME_MS ? 1 : crashes + 1;
    const delay = Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** (crashes - 1));
    log.error('worker exited unexpectedly: restarting', { worker: w.id, pid: w.process.pid, code, signal, restartInMs: delay });
    const t = setTimeout(() => {
      restartTimers.delete(t);
      if (!stopping) fork();
    }, delay);
    restartTimers.add(t);
  };
  cluster.on('exit', onExit);

  let killTimer: NodeJS.Timeout | undefined;
  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    tickets?.stop();
    acme?.stop();
    for (const t of restartTimers) clearTimeout(t);
    restartTimers.clear();
    if (live.size === 0) {
      resolveDone(0);
      return;
    }
    for (const w of live) if (w.isConnected()) w.send({ postern: 'stop' });
    killTimer = setTimeout(() => {
      for (const w of live) {
        log.warn('worker did not stop in time: killing it', { worker: w.id, pid: w.process.pid });
        w.process.kill('SIGKILL');
      }
    }, WORKER_STOP_TIMEOUT_MS);
    killTimer.unref();
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    log.info('shutting down', { signal, workers: live.size });
    stopAll();
  };
  // SIGUSR2: new ticket keys now (e.g. after a suspected key leak), pushed to every worker like a scheduled rotation.
  const onRotate = (): void => void tickets?.rotate();
  // SIGHUP with ACME: order a new certificate now and push it to every worker (see README).
  const onRenew = (): void => {
    acmeLog.info('acme renewal requested', { signal: 'SIGHUP' });
    acme?.renewNow().catch(() => undefined);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR2', onRotate);
  if (acme) process.on('SIGHUP', onRenew);
  for (let i = 0; i < count; i++) fork();
  tickets?.start();
  await done;
  clearTimeout(killTimer);
  await metricsServer?.close();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGUSR2', onRotate);
  process.off('SIGHUP', onRenew);
  cluster.off('exit', onExit);
  if (failed) {
    flushLogOutput();
    process.stderr.write(`postern: error: ${failure ?? 'a worker failed to start'}\n`);
    return 2;
  }
  out('postern: stopped');
  return 0;
}

/**
 * What the primary does once for all workers: users into the shared store, the postmaster check, the certificate
 * (checked, or generated and printed), so that errors surface as one line before anything forks.
 */
async function prepareShared(config: MailServerConfig, out: (line: string) => void): Promise<Omit<InitMessage, 'ticketKeys'>> {
  if (config.acme && config.tls?.certificate) throw new Error('use either a configured certificate or ACME, not both');
  const container = createMailServerContainer(config);
  try {
    const store = container.get(MailStore);
    for (const user of config.users ?? []) await store.users.add({ ...user, addresses: user.addresses ? [...user.addresses] : undefined });
    await createDefaultFolders(store, (config.users ?? []).map((u) => u.username)); // workers get no --user list
    const postmaster = config.smtp === false ? undefined : config.smtp?.postmaster;
    if (postmaster !== undefined && !config.authDisabled && (await store.users.find(postmaster)) === undefined) {
      throw new Error(`postmaster "${postmaster}" is not a user (add it with --user or users)`);
    }
    if (!config.authDisabled && (await store.users.list()).length === 0) {
      out('postern: no users yet: add --user LOGIN:PASSWORD@DOMAIN, or --auth-disabled to accept any login and recipient');
    }
  } finally {
    await container.unbindAllAsync();
  }
  const generated = config.tls?.certificate ? undefined : await generateSelfSigned(config.tls?.selfSignedHosts ?? ['localhost', '127.0.0.1', '::1']);
  const check = new ServerSecurity({ ...config.tls, ...(generated ? { certificate: generated } : {}), sessionTickets: false });
  try {
    await check.prepare(); // a bad certificate or passphrase: CertificateError, exit 2 before any fork
  } finally {
    check.close();
  }
  if (generated) out(`postern: using a generated self-signed certificate, SHA-256 fingerprint ${new X509Certificate(generated.cert).fingerprint256}`);
  return { postern: 'init', certificate: generated };
}
