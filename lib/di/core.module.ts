import type { Cluster } from 'node:cluster';
import { createRequire } from 'node:module';
import { ContainerModule, type ResolutionContext } from '../vendor/inversify.js';
import { MailStore } from '../contracts/mail-store.js';
import { instrumentStore, MetricsRegistry, PosternMetrics, PosternMetricsToken } from '../metrics/postern-metrics.js';
import { AuthThrottle, AuthThrottleToken } from '../protocol/auth-throttle.js';
import { withSasl } from './sasl.module.js';
import type { SessionHandler, ManagedSession } from '../protocol/session-handler.js';
import { ServerSecurity, ServerSecurityToken } from '../core/server-security.js';

export { ServerSecurityToken };
import { ListenerSecurities, ListenerSecuritiesToken } from '../core/listener-securities.js';
import { listenerSecurityOverrides } from './listener-security.js';
import { ConnectionLimits, ConnectionLimitsToken, listenerLimits } from '../core/connection-limits.js';
import { TcpServer, type ConnectionHandler, type TcpServerOptions } from '../core/tcp-server.js';
import { createLogger, Logger } from '../log/logger.js';
import { PosternConfig } from './config.js';
import type { ServiceIdentifier } from 'inversify';

/** Builds a `TcpServer` for a handler and options; rebind it to decorate every listener (metrics, proxies…). */
export type TcpServerFactory = (handler: ConnectionHandler, options: TcpServerOptions) => TcpServer;
/** DI token of {@link TcpServerFactory}. */
export const TcpServerFactory = Symbol.for('postern.TcpServerFactory') as ServiceIdentifier<TcpServerFactory>;

/**
 * The core layer: the root logger, the shared server security and the TcpServer factory.
 * Requires `PosternConfig` to be bound (createContainer does it).
 */
export const coreModule = new ContainerModule(({ bind, onActivation }) => {
  bind(Logger)
    .toResolvedValue((config: PosternConfig) => createLogger(config.log), [PosternConfig])
    .inSingletonScope();
  bind(ServerSecurityToken)
    .toResolvedValue((config: PosternConfig, log: Logger) => {
      const security = new ServerSecurity(config.tls ?? {});
      security.onReload = () => log.info('certificate reloaded', { fingerprint: security.fingerprint256 });
      security.onReloadError = (err) => log.warn('certificate reload failed', { error: (err as Error).message });
      security.ocspEvents = log.child({ proto: 'ocsp' });
      security.certificateStoreEvents = log.child({ proto: 'certs' });
      security.onSelfSigned = (fingerprint) => log.warn('no certificate configured: using a generated self-signed one', { fingerprint });
      return security;
    }, [PosternConfig, Logger])
    .inSingletonScope()
    .onDeactivation((s) => s.close());
  bind(ListenerSecuritiesToken)
    .toResolvedValue(
      (config: PosternConfig, shared: ServerSecurity, log: Logger) => {
        const securities = new ListenerSecurities(shared, listenerSecurityOverrides(config));
        for (const listener of securities.listenerNames) {
          const own = securities.securityFor(listener);
          own.onReload ??= () => log.info('certificate reloaded', { listener, fingerprint: own.fingerprint256 });
        }
        return securities;
      },
      [PosternConfig, ServerSecurityToken, Logger],
    )
    .inSingletonScope()
    .onDeactivation((s) => s.close());
  bind(PosternMetricsToken).toConstantValue(new PosternMetrics());
  bind(MetricsRegistry).toResolvedValue((m: PosternMetrics) => m.registry, [PosternMetricsToken]);
  // Store operations are timed by a decorator around a MailStore bound directly; a store bound with toService
  // (memory, maildir) adds `.onActivation(withStoreMetrics)` to its own binding, since activation follows the binding.
  onActivation(MailStore, withStoreMetrics);
  bind(AuthThrottleToken)
    .toResolvedValue((config: PosternConfig) => new AuthThrottle(config.authThrottle), [PosternConfig])
    .inSingletonScope();
  bind(ConnectionLimitsToken)
    .toResolvedValue((config: PosternConfig) => new ConnectionLimits(config.limits), [PosternConfig])
    .inSingletonScope();
  // config.limits fills what a protocol module leaves unset; one ConnectionLimits is shared by every listener.
  // An implicit-TLS listener with its own `security` in the config handshakes with that one (ListenerSecurities).
  bind(TcpServerFactory).toResolvedValue(
    (log: Logger, config: PosternConfig, limits: ConnectionLimits, metrics: PosternMetrics, securities: ListenerSecurities): TcpServerFactory =>
      (handler, options) => {
        const own = options.security && options.name !== undefined && securities.hasOwnSecurity(options.name) ? { security: securities.securityFor(options.name) } : {};
        const server = new TcpServer(handler, { ...listenerLimits(config.limits), ...listenerDefaults(config, options.name), ...options, ...own }, log, limits);
        metrics.observe(server);
        return server;
      },
    [Logger, PosternConfig, ConnectionLimitsToken, PosternMetricsToken, ListenerSecuritiesToken],
  );
});

/**
 * Activation hook for a protocol server binding: hands it the container's shared {@link AuthThrottle}, so failed
 * logins count across every connection and protocol, the container's metrics, the per-listener TLS configurations
 * that STARTTLS/STLS use ({@link ListenerSecurities}), and the SASL registry and user directory bridge ({@link withSasl})
 * (`.onActivation(withAuthThrottle)`).
 */
export function withAuthThrottle<H extends SessionHandler<ManagedSession>>(context: ResolutionContext, handler: H): H {
  handler.authThrottle = context.get(AuthThrottleToken, { optional: true });
  handler.metrics = context.get(PosternMetricsToken, { optional: true });
  handler.securities = context.get(ListenerSecuritiesToken, { optional: true });
  return withSasl(context, handler);
}

/**
 * Activation hook for a mail store binding: wraps the store so that its operations are timed into the container's
 * metrics (`postern_store_operation_duration_seconds`, see {@link instrumentStore}). Idempotent per store.
 */
export function withStoreMetrics<T extends object>(context: ResolutionContext, store: T): T {
  if (instrumented.has(store)) return store;
  const metrics = context.get(PosternMetricsToken, { optional: true });
  if (!metrics) return store;
  const wrapped = instrumentStore(store, metrics);
  instrumented.add(wrapped);
  return wrapped;
}
const instrumented = new WeakSet<object>();

/**
 * What every listener gets from the process-wide config: the PROXY protocol when `config.proxyProtocol` covers
 * the listener, and, in a cluster worker, a connection-id prefix naming the worker (`w2-c1f`).
 */
function listenerDefaults(config: PosternConfig, name: string | undefined): Partial<TcpServerOptions> {
  const cluster = createRequire(import.meta.url)('node:cluster') as Cluster; // here rather than at `import 'postern'`
  const proxy = config.proxyProtocol;
  const covered = proxy !== undefined && (proxy.listeners === undefined || (name !== undefined && proxy.listeners.includes(name)));
  return {
    proxyProtocol: covered ? { trusted: proxy.trusted, headerTimeoutMs: proxy.headerTimeoutMs } : undefined,
    connectionIdPrefix: cluster.isWorker && cluster.worker ? `w${cluster.worker.id}-` : undefined,
  };
}
