import { ContainerModule } from '../vendor/inversify.js';
import { ChaosToken } from '../chaos/chaos.js';
import { MailStore } from '../contracts/mail-store.js';
import { HttpListener } from '../http/http-listener.js';
import type { HttpOptions } from '../http/http-options.js';
import { Logger } from '../log/logger.js';
import { MetricsSource } from '../metrics/cluster-metrics.js';
import { ServerSecurityToken } from './core.module.js';
import { MetricsRegistry } from '../metrics/postern-metrics.js';
import { PosternConfig } from './config.js';
import { Listener } from './listener.js';

/**
 * The HTTP API and web inbox as one more {@link Listener} named `http` (loaded only when `http` is among the
 * listeners to start). `port` is the resolved port (8025 + offset, or 0 in the test double).
 */
export function httpModule(port: number, options: HttpOptions = {}, isEnabled: (config: PosternConfig, name: string) => boolean = () => true): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(HttpListener)
      .toDynamicValue((ctx) => {
        const config = ctx.get(PosternConfig);
        return new HttpListener({
          store: ctx.get(MailStore),
          chaos: ctx.get(ChaosToken),
          log: ctx.get(Logger).child({ proto: 'http' }),
          host: options.host ?? config.host ?? '127.0.0.1',
          port: options.port ?? port,
          options,
          listeners: () => ctx.getAll(Listener).filter((l) => isEnabled(config, l.name)),
          // A cluster worker binds MetricsSource to the whole cluster's sum (cli/run.ts).
          registry: ctx.get(MetricsSource, { optional: true }) ?? ctx.get(MetricsRegistry, { optional: true }),
          acmeHttp: ctx.get(ServerSecurityToken, { optional: true })?.acmeHttpChallenges,
        });
      })
      .inSingletonScope()
      .onDeactivation((l) => l.close());
    bind(Listener).toService(HttpListener);
  });
}
