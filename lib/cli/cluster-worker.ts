/**
 * The worker side of `postern --workers N`: what a worker does with the primary's IPC messages (`cluster-messages.ts`).
 * A worker is the ordinary single-process server (`runCli`) that takes its certificate, session-ticket keys and stop
 * order from the primary instead of making its own.
 */
import cluster from 'node:cluster';
import { MAX_CONNECTIONS_PER_ADDRESS, MAX_CONNECTIONS_PER_ADDRESS_TOTAL, MAX_CONNECTIONS_TOTAL, type ServerLimits } from '../core/connection-limits.js';
import { MAX_CONNECTIONS } from '../core/tcp-server.js';
import type { ReadyListener } from '../di/mail-server.js';
import type { AuthThrottleEvent } from '../protocol/auth-throttle.js';
import type { AcmeChallenge, AcmeChallengeMessage, AcmeHttpMessage, AppliedMessage, AuthEventMessage, CertificateMessage, ChaosMessage, FailedMessage, HelloMessage, InitMessage, MetricsMessage, MetricsRequestMessage, ReadyMessage } from './cluster-messages.js';
import { isAuthEvent, isClusterMessage } from './cluster-messages.js';

/** How long a worker waits for the primary's metrics (prom-client gives the workers 5 s, plus IPC slack). */
export const CLUSTER_METRICS_TIMEOUT_MS = 10_000;
/** What a worker does with the primary's ACME messages (its `ServerSecurity` is one). */
export interface WorkerAcmeTarget {
  readonly acmeChallenges: { add(domain: string, key: string, cert: string): void; remove(domain: string): void };
  readonly acmeHttpChallenges: { add(token: string, keyAuthorization: string): void; remove(token: string): void };
  useCertificate(source: { cert: string; key: string }): Promise<void>;
}
/** A worker's link to its primary. */
export interface WorkerLink {
  /** What the primary shares with every worker. */
  readonly init: InitMessage;
  /** Tells the primary this worker listens (it prints the ready lines once every worker has). */
  ready(listeners: readonly ReadyListener[]): void;
  /** Tells the primary why this worker could not start (it prints one line for all workers); resolves once sent. */
  failed(message: string): Promise<void>;
  /** Calls `apply` with each new ticket key set the primary sends. */
  onTicketKeys(apply: (keys: Buffer) => void): void;
  /** Sends this worker's failed/successful login to the others (through the primary). */
  sendAuthEvent(event: AuthThrottleEvent): void;
  /** Calls `apply` with each login event another worker recorded. */
  onAuthEvent(apply: (event: AuthThrottleEvent) => void): void;
  /**
   * Hands the primary's ACME challenges and certificates to `target` (the worker's `ServerSecurity`): at once what
   * arrived since the init message, then each change as it comes. Call it, and await it, before the listeners start.
   * `applied` is told of each change made later (for the log).
   */
  onAcme(target: WorkerAcmeTarget, applied?: (change: { certificate?: string; challenge?: string; removed?: boolean }) => void): Promise<void>;
  /** Sends this worker's new fault-injection rules to the others (through the primary). */
  sendChaos(config: unknown): void;
  /** Calls `apply` with the rules another worker set. */
  onChaos(apply: (config: unknown) => void): void;
  /**
   * The whole cluster's metrics (every worker's registry summed by the primary), as Prometheus text.
   * @throws Error when the primary cannot collect them (a worker did not answer within prom-client's 5 s) or is gone.
   */
  clusterMetrics(): Promise<string>;
  /** Resolves when the primary asks to stop or goes away (its IPC channel closes). */
  readonly stopRequested: Promise<'primary'>;
  /** Removes the IPC listeners (after the drain), so the process can exit. */
  detach(): void;
}

/**
 * In a cluster worker: says hello to the primary and resolves once it answered with the shared init data.
 * Returns undefined in a process that is not a cluster worker.
 */
export async function joinCluster(): Promise<WorkerLink | undefined> {
  if (!cluster.isWorker || !process.send) return undefined;
  const keyHandlers: Array<(keys: Buffer) => void> = [];
  const authHandlers: Array<(event: AuthThrottleEvent) => void> = [];
  const chaosHandlers: Array<(config: unknown) => void> = [];
  let unappliedChaos: { config: unknown } | undefined;
  /** Ticket keys rotated after the init message but before the server subscribed: applied when it does. */
  let unappliedKeys: Buffer | undefined;
  let resolveStop!: (v: 'primary') => void;
  const stopRequested = new Promise<'primary'>((r) => (resolveStop = r));
  let resolveInit!: (m: InitMessage) => void;
  const initialised = new Promise<InitMessage>((r) => (resolveInit = r));
  // ACME state that arrives before the server exists is kept here and handed over by onAcme; the worker does not
  // listen before then, so no validation connection can reach it in between.
  const challenges = new Map<string, AcmeChallenge>();
  const httpChallenges = new Map<string, string>();
  let certificate: { cert: string; key: string } | undefined;
  let acmeTarget: WorkerAcmeTarget | undefined;
  let acmeApplied: Parameters<WorkerLink['onAcme']>[1];
  let acmeQueue = Promise.resolve();
  const onAcmeMessage = (m: AcmeChallengeMessage | AcmeHttpMessage | CertificateMessage): void => {
    // One at a time, in the primary's order: a certificate swap is asynchronous.
    acmeQueue = acmeQueue.then(async () => {
      let error: string | undefined;
      try {
        if (m.postern === 'certificate') {
          certificate = { cert: m.cert, key: m.key };
          await acmeTarget?.useCertificate(certificate);
          if (acmeTarget) acmeApplied?.({ certificate: m.cert });
        } else if (m.postern === 'acme-http') {
          if (m.keyAuthorization !== undefined) {
            httpChallenges.set(m.token, m.keyAuthorization);
            acmeTarget?.acmeHttpChallenges.add(m.token, m.keyAuthorization);
          } else {
            httpChallenges.delete(m.token);
            acmeTarget?.acmeHttpChallenges.remove(m.token);
          }
        } else if (m.challenge) {
          challenges.set(m.domain, m.challenge);
          acmeTarget?.acmeChallenges.add(m.domain, m.challenge.key, m.challenge.cert);
          if (acmeTarget) acmeApplied?.({ challenge: m.domain });
        } else {
          challenges.delete(m.domain);
          acmeTarget?.acmeChallenges.remove(m.domain);
          if (acmeTarget) acmeApplied?.({ challenge: m.domain, removed: true });
        }
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      if (process.connected) process.send?.({ postern: 'applied', id: m.id, ...(error !== undefined ? { error } : {}) } satisfies AppliedMessage);
    });
  };
  const metricsWaiters = new Map<number, (m: MetricsMessage) => void>();
  let metricsId = 0;
  const onMessage = (m: unknown): void => {
    if (!isClusterMessage(m)) return;
    if (m.postern === 'metrics') metricsWaiters.get(m.id)?.(m);
    else if (m.postern === 'chaos') {
      // Rules that arrive before the server exists are applied when it subscribes (the last ones win).
      if (chaosHandlers.length === 0) unappliedChaos = { config: m.config };
      for (const h of chaosHandlers) h(m.config);
    }
    else if (m.postern === 'init') {
      for (const c of m.challenges ?? []) challenges.set(c.domain, c);
      for (const [token, keyAuthorization] of m.httpChallenges ?? []) httpChallenges.set(token, keyAuthorization);
      resolveInit(m);
    } else if (m.postern === 'acme-challenge' || m.postern === 'acme-http' || m.postern === 'certificate') onAcmeMessage(m);
    else if (m.postern === 'ticket-keys') {
      const keys = Buffer.from(m.ticketKeys, 'base64');
      if (keyHandlers.length === 0) unappliedKeys = keys;
      for (const h of keyHandlers) h(keys);
    }
    else if (m.postern === 'stop') resolveStop('primary');
    else if (m.postern === 'auth' && isAuthEvent(m.event)) for (const h of authHandlers) h(m.event);
  };
  const onDisconnect = (): void => resolveStop('primary');
  process.on('message', onMessage);
  process.once('disconnect', onDisconnect);
  send({ postern: 'hello' });
  const init = await Promise.race([initialised, stopRequested.then(() => ({ postern: 'init' }) as InitMessage)]);
  return {
    init,
    ready: (listeners) => send({ postern: 'ready', pid: process.pid, listeners }),
    failed: (message) =>
      new Promise<void>((resolve) => {
        // Wait for the write: the worker exits right after, which would drop a message still queued.
        if (!process.connected || !process.send) resolve();
        else process.send({ postern: 'failed', message } satisfies FailedMessage, undefined, {}, () => resolve());
      }),
    onTicketKeys: (apply) => {
      keyHandlers.push(apply);
      if (unappliedKeys) apply(unappliedKeys);
      unappliedKeys = undefined;
    },
    sendAuthEvent: (event) => send({ postern: 'auth', event }),
    onAuthEvent: (apply) => void authHandlers.push(apply),
    sendChaos: (config) => send({ postern: 'chaos', config }),
    onChaos: (apply) => {
      chaosHandlers.push(apply);
      if (unappliedChaos) apply(unappliedChaos.config);
      unappliedChaos = undefined;
    },
    clusterMetrics: () =>
      new Promise<string>((resolve, reject) => {
        const id = ++metricsId;
        const timer = setTimeout(() => finish({ postern: 'metrics', id, error: 'the primary did not answer' }), CLUSTER_METRICS_TIMEOUT_MS);
        const finish = (m: MetricsMessage): void => {
          clearTimeout(timer);
          metricsWaiters.delete(id);
          if (m.text !== undefined) resolve(m.text);
          else reject(new Error(`cluster metrics: ${m.error ?? 'no answer'}`));
        };
        metricsWaiters.set(id, finish);
        if (process.connected) process.send?.({ postern: 'metrics-request', id } satisfies MetricsRequestMessage);
        else finish({ postern: 'metrics', id, error: 'the primary is gone' });
      }),
    onAcme: (target, applied) => {
      acmeTarget = target;
      acmeApplied = applied;
      for (const c of challenges.values()) target.acmeChallenges.add(c.domain, c.key, c.cert);
      for (const [token, keyAuthorization] of httpChallenges) target.acmeHttpChallenges.add(token, keyAuthorization);
      // A certificate pushed after init but before now: the server was built with the init one.
      const latest = certificate;
      if (!latest) return acmeQueue;
      const swapped = acmeQueue.then(() => target.useCertificate(latest));
      acmeQueue = swapped.catch(() => undefined); // the caller sees the failure; later messages still run
      return swapped;
    },
    stopRequested,
    detach: () => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
    },
  };
}

function send(m: HelloMessage | ReadyMessage | AuthEventMessage | ChaosMessage): void {
  if (process.connected) process.send?.(m);
}

/**
 * One worker's share of the connection caps: each cap (given or default; 0 stays off) divided by the number of
 * workers, rounded up. node:cluster hands connections to the workers in turn, so the whole cluster admits about what
 * one process would (one address's connections spread evenly); a worker never waits on another to decide.
 */
export function workerLimits(limits: ServerLimits | undefined, workers: number): ServerLimits {
  const share = (value: number): number => (value === 0 ? 0 : Math.max(1, Math.ceil(value / workers)));
  return {
    ...limits,
    maxConnections: share(limits?.maxConnections ?? MAX_CONNECTIONS),
    maxConnectionsPerAddress: share(limits?.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS),
    maxConnectionsPerAddressTotal: share(limits?.maxConnectionsPerAddressTotal ?? MAX_CONNECTIONS_PER_ADDRESS_TOTAL),
    maxConnectionsTotal: share(limits?.maxConnectionsTotal ?? MAX_CONNECTIONS_TOTAL),
  };
}
