import cluster from 'node:cluster';
import { ContainerModule, type ResolutionContext } from 'inversify';
import { AuthThrottle, AuthThrottleToken } from '../protocol/auth-throttle.js';
import type { SessionHandler, ManagedSession } from '../protocol/session-handler.js';
import { ServerSecurity, ServerSecurityToken } from '../core/server-security.js';

export { ServerSecurityToken };
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
export const coreModule = new ContainerModule(({ bind }) => {
  bind(Logger)
    .toResolvedValue((config: PosternConfig) => createLogger(config.log), [PosternConfig])
    .inSingletonScope();
  bind(ServerSecurityToken)
    .toResolvedValue((config: PosternConfig, log: Logger) => {
      const security = new ServerSecurity(config.tls ?? {});
      security.onReload = () => log.info('certificate reloaded', { fingerprint: security.fingerprint256 });
      security.onReloadError = (err) => log.warn('certificate reload failed', { error: (err as Error).message });
      security.ocspEvents = log.child({ proto: 'ocsp' });
      security.onSelfSigned = (fingerprint) => log.warn('no certificate configured: using a generated self-signed one', { fingerprint });
      return security;
    }, [PosternConfig, Logger])
    .inSingletonScope()
    .onDeactivation((s) => s.close());
  bind(AuthThrottleToken)
    .toResolvedValue((config: PosternConfig) => new AuthThrottle(config.authThrottle), [PosternConfig])
    .inSingletonScope();
  bind(ConnectionLimitsToken)
    .toResolvedValue((config: PosternConfig) => new ConnectionLimits(config.limits), [PosternConfig])
    .inSingletonScope();
  // config.limits fills what a protocol module leaves unset; one ConnectionLimits is shared by every listener.
  bind(TcpServerFactory).toResolvedValue(
    (log: Logger, config: PosternConfig, limits: ConnectionLimits): TcpServerFactory =>
      (handler, options) =>
        new TcpServer(handler, { ...listenerLimits(config.limits), ...listenerDefaults(config, options.name), ...options }, log, limits),
    [Logger, PosternConfig, ConnectionLimitsToken],
  );
});

/**
 * Activation hook for a protocol server binding: hands it the container's shared {@link AuthThrottle}, so failed
 * logins count across every connection and protocol (`.onActivation(withAuthThrottle)`).
 */
export function withAuthThrottle<H extends SessionHandler<ManagedSession>>(context: ResolutionContext, handler: H): H {
  handler.authThrottle = context.get(AuthThrottleToken, { optional: true });
  return handler;
}

/**
 * What every listener gets from the process-wide config: the PROXY protocol when `config.proxyProtocol` covers
 * the listener, and, in a cluster worker, a connection-id prefix naming the worker (`w2-c1f`).
 */
function listenerDefaults(config: PosternConfig, name: string | undefined): Partial<TcpServerOptions> {
  const proxy = config.proxyProtocol;
  const covered = proxy !== undefined && (proxy.listeners === undefined || (name !== undefined && proxy.listeners.includes(name)));
  return {
    proxyProtocol: covered ? { trusted: proxy.trusted, headerTimeoutMs: proxy.headerTimeoutMs } : undefined,
    connectionIdPrefix: cluster.isWorker && cluster.worker ? `w${cluster.worker.id}-` : undefined,
  };
}
