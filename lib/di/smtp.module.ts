import { ContainerModule } from 'inversify';
import type { ServerSecurity } from '../core/server-security.js';
import { Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { MailStoreSmtpBackend } from '../smtp/mail-store-smtp-backend.js';
import { SmtpBackend, SmtpHooks } from '../smtp/smtp-backend.js';
import { resolveSmtpSettings, SMTP_PORT, SmtpSettings, SMTPS_PORT, type SmtpListenerOptions, type SmtpOptions } from '../smtp/smtp-options.js';
import { SmtpServer } from '../smtp/smtp-server.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, TcpServerFactory, withAuthThrottle } from './core.module.js';
import { Listener } from './listener.js';

/** The `smtp` section of a config, typed (`false` gives undefined). */
function smtpSection(config: PosternConfig): SmtpOptions | undefined {
  return config.smtp === false ? undefined : ((config.smtp ?? {}) as SmtpOptions);
}

/**
 * SMTP: binds `SmtpSettings` (from `config.smtp`, an {@link SmtpOptions}, plus the global switches), the default
 * `SmtpBackend` (`MailStoreSmtpBackend`, rebind to replace), `SmtpServer` (singleton ConnectionHandler, with every
 * `SmtpHooks` bound at resolution time) and two `Listener`s: `smtp` (plaintext + STARTTLS, default port 3025) and
 * `smtps` (implicit TLS, RFC 8314, default port 3465). Listeners close when the container is unbound.
 *
 * A ContainerModule cannot see the config while it binds: load this module only when {@link isSmtpEnabled}, and
 * skip listeners for which {@link isSmtpListenerEnabled} is false.
 */
export const smtpModule = new ContainerModule(({ bind }) => {
  bind(SmtpSettings).toResolvedValue((config: PosternConfig) => resolveSmtpSettings(smtpSection(config) ?? {}, config), [PosternConfig]).inSingletonScope();
  bind(MailStoreSmtpBackend)
    .toResolvedValue((store: MailStore, settings: SmtpSettings) => new MailStoreSmtpBackend(store, settings), [MailStore, SmtpSettings])
    .inSingletonScope();
  bind(SmtpBackend).toService(MailStoreSmtpBackend);
  bind(SmtpServer)
    .toResolvedValue(
      (settings: SmtpSettings, security: ServerSecurity, backend: SmtpBackend, authenticator: Authenticator, hooks: SmtpHooks[] | undefined) =>
        new SmtpServer(settings, security, backend, authenticator, hooks ?? []),
      [SmtpSettings, ServerSecurityToken, SmtpBackend, Authenticator, { serviceIdentifier: SmtpHooks, isMultiple: true, optional: true }],
    )
    .inSingletonScope()
    .onActivation(withAuthThrottle);
  for (const [name, defaultPort, implicitTls] of [
    ['smtp', SMTP_PORT, false],
    ['smtps', SMTPS_PORT, true],
  ] as const) {
    bind(Listener)
      .toResolvedValue(
        (factory: TcpServerFactory, server: SmtpServer, config: PosternConfig, security: ServerSecurity) => {
          const own: SmtpListenerOptions = smtpSection(config)?.[name] ?? {};
          return factory(server, {
            name,
            host: own.host ?? config.host,
            port: own.port ?? defaultPort,
            security: implicitTls ? security : undefined,
            idleTimeoutMs: server.settings.idleTimeoutMs,
          });
        },
        [TcpServerFactory, SmtpServer, PosternConfig, ServerSecurityToken],
      )
      .inSingletonScope()
      .onDeactivation((l) => l.close());
  }
});

/** False when `config.smtp` is `false` or has `enabled: false`. */
export function isSmtpEnabled(config: PosternConfig): boolean {
  return smtpSection(config)?.enabled !== false;
}

/** False when SMTP is disabled or the named listener (`smtp`, `smtps`) has `enabled: false`. */
export function isSmtpListenerEnabled(config: PosternConfig, name: string): boolean {
  const section = smtpSection(config);
  if (!section || section.enabled === false) return false;
  return name === 'smtp' || name === 'smtps' ? section[name]?.enabled !== false : true;
}
