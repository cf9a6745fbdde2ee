import { ContainerModule } from 'inversify';
import { ServerSecurity, ServerSecurityToken } from '../core/server-security.js';

export { ServerSecurityToken };
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
  bind(TcpServerFactory).toResolvedValue(
    (log: Logger): TcpServerFactory =>
      (handler, options) =>
        new TcpServer(handler, options, log),
    [Logger],
  );
});
