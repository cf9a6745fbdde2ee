import type { ServiceIdentifier } from 'inversify';
import { createRequire } from 'node:module';
import type { Counter, Registry } from 'prom-client';
import type { Connection, SecurityState } from '../core/connection.js';
import type { RefusalReason } from '../core/connection-limits.js';
import type { TcpServer } from '../core/tcp-server.js';
import type { SessionMetrics } from '../protocol/session-metrics.js';
import { SeriesHistogram, Tally, type HistogramSeries } from './metric-series.js';

let client: typeof import('prom-client') | undefined;
/** prom-client (CommonJS), loaded when the first metrics object is made, so that `import 'postern'` does not pay for it. */
function promClient(): typeof import('prom-client') {
  return (client ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client'));
}

/** DI token of the prom-client `Registry` that holds Postern's metrics (serve `registry.metrics()` on any HTTP route). */
export const MetricsRegistry = Symbol.for('postern.MetricsRegistry') as ServiceIdentifier<Registry>;

/** Seconds buckets for command latency: 0.5 ms to 10 s (a NOOP takes µs, a FETCH of a big mailbox seconds). */
const COMMAND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Seconds buckets for store operations: fsync-bound Maildir writes take milliseconds. */
const STORE_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/**
 * Postern's Prometheus metrics (prom-client) in their own {@link Registry} — never the global one, so two containers
 * in one process keep separate counts. One instance per container (`coreModule` binds it as a singleton under
 * {@link PosternMetrics}); it observes every `TcpServer` the factory builds, the protocol sessions (commands,
 * logins, messages) and the mail store (through {@link instrumentStore}).
 */
export class PosternMetrics implements SessionMetrics {
  readonly registry: Registry;
  private readonly refused: Counter<'listener' | 'reason'>;
  private readonly handshakeFailures: Counter<'listener' | 'reason'>;
  private readonly auths: Counter<'protocol' | 'mechanism' | 'result'>;
  private readonly commands: SeriesHistogram;
  private readonly storeOps: SeriesHistogram;

  /** Counts of the per-connection metrics, published by their `collect()`. */
  private readonly tallies = {
    open: new Tally<'listener'>(),
    accepted: new Tally<'listener'>(),
    upgrades: new Tally<'listener'>(),
    handshakes: new Tally<'listener' | 'version' | 'cipher'>(),
    messages: new Tally<'result'>(),
    messageBytes: new Tally<'result'>(),
  };

  constructor(registry?: Registry) {
    const { Counter, Gauge, Registry } = promClient();
    this.registry = registry ?? new Registry();
    const registers = [this.registry];
    const tallies = this.tallies;
    new Gauge({
      name: 'postern_connections_open',
      help: 'Connections open now, per listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        tallies.open.publishGauge(this);
      },
    });
    new Counter({
      name: 'postern_connections_accepted_total',
      help: 'Connections accepted, per listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        tallies.accepted.publishCounter(this);
      },
    });
    this.refused = new Counter({
      name: 'postern_connections_refused_total',
      help: 'Connections refused by a cap (listener-full, address-limit, address-total-limit, total-limit).',
      labelNames: ['listener', 'reason'],
      registers,
    });
    new Counter({
      name: 'postern_tls_handshakes_total',
      help: 'TLS handshakes completed (implicit TLS and STARTTLS), by version and cipher.',
      labelNames: ['listener', 'version', 'cipher'],
      registers,
      collect() {
        tallies.handshakes.publishCounter(this);
      },
    });
    this.handshakeFailures = new Counter({
      name: 'postern_tls_handshake_failures_total',
      help: 'TLS handshakes that failed, by reason (timeout, protocol, rejected-by-policy, peer-closed).',
      labelNames: ['listener', 'reason'],
      registers,
    });
    new Counter({
      name: 'postern_starttls_upgrades_total',
      help: 'STARTTLS/STLS upgrades completed.',
      labelNames: ['listener'],
      registers,
      collect() {
        tallies.upgrades.publishCounter(this);
      },
    });
    this.auths = new Counter({
      name: 'postern_auth_attempts_total',
      help: 'Login attempts by protocol, mechanism and result (success, failure, throttled).',
      labelNames: ['protocol', 'mechanism', 'result'],
      registers,
    });
    new Counter({
      name: 'postern_messages_total',
      help: 'SMTP messages accepted (250) or refused.',
      labelNames: ['result'],
      registers,
      collect() {
        tallies.messages.publishCounter(this);
      },
    });
    new Counter({
      name: 'postern_message_bytes_total',
      help: 'Octets of SMTP messages accepted or refused.',
      labelNames: ['result'],
      registers,
      collect() {
        tallies.messageBytes.publishCounter(this);
      },
    });
    this.commands = new SeriesHistogram(
      'postern_command_duration_seconds',
      'Time from a command line to its reply being queued, by protocol and command.',
      COMMAND_BUCKETS,
      this.registry,
    );
    this.storeOps = new SeriesHistogram(
      'postern_store_operation_duration_seconds',
      'Mail store operations (deliver, openUser, lock, mailbox calls), by operation and outcome (ok, error).',
      STORE_BUCKETS,
      this.registry,
    );
  }

  /** Follows one listener: accepted, refused and open connections, TLS handshakes and STARTTLS upgrades. */
  observe(server: TcpServer): void {
    const listener = server.name;
    // Per-connection counts are plain numbers here, handed to prom-client when scraped (see Tally): a labelled
    // inc() hashes its labels on every call, several times per connection.
    const { open, accepted, upgrades, handshakes } = this.tallies;
    const labels = { listener };
    const series = open.series(listener, labels); // both series exist from the start
    const acceptedSeries = accepted.series(listener, labels);
    const onSecured = (s: SecurityState): void => {
      const version = s.protocol ?? 'unknown';
      const cipher = s.cipher ?? 'unknown';
      handshakes.series(`${listener} ${version} ${cipher}`, { listener, version, cipher }).n++;
      if (!server.implicitTls) upgrades.series(listener, labels).n++; // this series appears with the first upgrade
    };
    const onTlsFailed = (reason: string): void => this.handshakeFailures.inc({ listener, reason });
    server.on('accepted', (conn: Connection) => {
      acceptedSeries.n++;
      series.n++;
      conn.on('secured', onSecured);
      conn.on('tls-failed', onTlsFailed); // one function per listener, none made per connection
    });
    server.on('closed', () => series.n--);
    server.on('refused', (reason: RefusalReason) => this.refused.inc({ listener, reason }));
  }

  command(protocol: string, command: string, seconds: number): void {
    // Keyed by protocol, then verb: no key string and no closure per command (issue 15).
    let byVerb = this.commandSeries.get(protocol);
    if (byVerb === undefined) this.commandSeries.set(protocol, (byVerb = new Map()));
    let series = byVerb.get(command);
    if (series === undefined || !this.commands.holds(series)) byVerb.set(command, (series = this.commands.series({ protocol, command })));
    this.commands.observe(series, seconds);
  }

  auth(protocol: string, mechanism: string, result: 'success' | 'failure' | 'throttled'): void {
    this.auths.inc({ protocol, mechanism, result });
  }

  message(result: 'accepted' | 'refused', octets: number): void {
    const labels = result === 'accepted' ? ACCEPTED : REFUSED;
    this.tallies.messages.series(result, labels).n++;
    if (octets > 0) this.tallies.messageBytes.series(result, labels).n += octets;
  }

  /** One store operation's duration (see {@link instrumentStore}). */
  storeOperation(operation: string, outcome: 'ok' | 'error', seconds: number): void {
    const cache = outcome === 'ok' ? this.storeOk : this.storeError;
    let series = cache.get(operation);
    if (series === undefined || !this.storeOps.holds(series)) cache.set(operation, (series = this.storeOps.series({ operation, outcome })));
    this.storeOps.observe(series, seconds);
  }

  /** Series by label values (a labelled prom-client observe() validates and hashes its labels on every call). */
  private readonly commandSeries = new Map<string, Map<string, HistogramSeries>>();
  private readonly storeOk = new Map<string, HistogramSeries>();
  private readonly storeError = new Map<string, HistogramSeries>();
}

/** The label sets of `postern_messages_total` and `postern_message_bytes_total`. */
const ACCEPTED = { result: 'accepted' } as const;
const REFUSED = { result: 'refused' } as const;

/** DI token of the container's {@link PosternMetrics}. */
export const PosternMetricsToken = Symbol.for('postern.PosternMetrics') as ServiceIdentifier<PosternMetrics>;

/**
 * Wraps a mail store (or any object with async methods) so that every method returning a promise is timed into
 * `postern_store_operation_duration_seconds` as `<prefix><method>`; `openUser`'s result (the user's mailboxes) is
 * wrapped too, as `mailboxes.<method>`. Methods run on the real object (private fields keep working); other
 * properties pass through.
 */
export function instrumentStore<T extends object>(target: T, metrics: PosternMetrics, prefix = ''): T {
  // One wrapper per method, made on first access and kept while the method is the same function (issue 15: the store
  // is called once or twice per message).
  const wrappers = new Map<string, { readonly method: unknown; readonly wrapper: (...args: unknown[]) => unknown }>();
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      const known = wrappers.get(prop);
      if (known !== undefined && known.method === value) return known.wrapper;
      const name = prefix + prop;
      const wrapper = (...args: unknown[]): unknown => {
        const started = process.hrtime.bigint();
        const result: unknown = Reflect.apply(value as (...a: unknown[]) => unknown, t, args);
        if (!(result instanceof Promise)) return result;
        return result.then(
          (v: unknown) => {
            metrics.storeOperation(name, 'ok', Number(process.hrtime.bigint() - started) / 1e9);
            return prop === 'openUser' && v !== null && typeof v === 'object' ? instrumentStore(v, metrics, 'mailboxes.') : v;
          },
          (err: unknown) => {
            metrics.storeOperation(name, 'error', Number(process.hrtime.bigint() - started) / 1e9);
            throw err;
          },
        );
      };
      wrappers.set(prop, { method: value, wrapper });
      return wrapper;
    },
  });
}
