import type { ContainerModuleLoadOptions, ServiceIdentifier } from '../vendor/inversify.js';
import type { ServerSecurity } from '../core/server-security.js';
import { Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { Logger } from '../log/logger.js';
import { DsnNoticeSender, LocalDsnNoticeSender } from '../smtp/dsn-notices.js';
import { RelayDsnNoticeSender } from '../smtp/dsn-relay.js';
import { MailStoreSmtpBackend } from '../smtp/mail-store-smtp-backend.js';
import { SmtpBackend, SmtpHooks } from '../smtp/smtp-backend.js';
import { resolveSmtpSettings, SMTP_PORT, SmtpSettings, SMTPS_PORT, type SmtpOptions } from '../smtp/smtp-options.js';
import { SmtpServer } from '../smtp/smtp-server.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, withAuthThrottle } from './core.module.js';
import { ProtocolModule, type ProtocolDescriptor } from './protocol-descriptor.js';

/** The `smtp` section of a config, typed (`false` gives undefined). */
function smtpSection(config: PosternConfig): SmtpOptions | undefined {
  return config.smtp === false ? undefined : ((config.smtp ?? {}) as SmtpOptions);
}

/**
 * SMTP: binds `SmtpSettings` (from `config.smtp`, an {@link SmtpOptions}, plus the global switches), the default
 * `SmtpBackend` (`MailStoreSmtpBackend`, rebind to replace), `SmtpServer` (singleton ConnectionHandler, with every
 * `SmtpHooks` bound at resolution time) and a `Listener` for each enabled listener: `smtp` (plaintext + STARTTLS,
 * default port 3025) and `smtps` (implicit TLS, RFC 8314, default port 3465). Listeners close when the container is
 * unbound. Through `createContainer` only the listeners the config enables are bound (see `ProtocolModule`).
 */
export const smtpModule = new ProtocolModule(
  {
    section: 'smtp',
    listeners: [
      { name: 'smtp', defaultPort: SMTP_PORT, implicitTls: false, startTlsVerb: 'STARTTLS' },
      { name: 'smtps', defaultPort: SMTPS_PORT, implicitTls: true },
    ],
  },
  {
    bindServer: ({ bind, isBound }) => {
      bind(SmtpSettings).toResolvedValue((config: PosternConfig) => resolveSmtpSettings(smtpSection(config) ?? {}, config), [PosternConfig]).inSingletonScope();
      bindDsnNoticeSender(bind, isBound, SmtpSettings);
      bind(MailStoreSmtpBackend)
        .toResolvedValue(
          (store: MailStore, settings: SmtpSettings, notices: DsnNoticeSender, log: Logger) => new MailStoreSmtpBackend(store, settings, notices, log.child({ proto: 'smtp' })),
          [MailStore, SmtpSettings, DsnNoticeSender, Logger],
        )
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
      return SmtpServer;
    },
    listenerOptions: (server: SmtpServer) => ({ idleTimeoutMs: server.settings.idleTimeoutMs }),
  },
);

/** SMTP's descriptor: section `smtp`, listeners `smtp` (STARTTLS) and `smtps` (implicit TLS), on by default. */
export const SMTP_PROTOCOL: ProtocolDescriptor = { ...smtpModule.shape, onByDefault: true, module: smtpModule };

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

/**
 * Binds the default {@link DsnNoticeSender} ({@link LocalDsnNoticeSender}: notices for local senders go into the
 * store; with `config.dsnRelay`, {@link RelayDsnNoticeSender} sends the others there) unless one is bound already;
 * SMTP and LMTP share it. `settings` is the protocol's settings token, read for
 * `authDisabled`.
 */
export function bindDsnNoticeSender(
  bind: ContainerModuleLoadOptions['bind'],
  isBound: ContainerModuleLoadOptions['isBound'],
  settings: ServiceIdentifier<{ readonly authDisabled: boolean }>,
): void {
  if (isBound(DsnNoticeSender)) return;
  bind(DsnNoticeSender)
    .toResolvedValue(
      (store: MailStore, s: { readonly authDisabled: boolean }, log: Logger, config: PosternConfig) => {
        const dsnLog = log.child({ proto: 'dsn' });
        const local = new LocalDsnNoticeSender(store, s.authDisabled, dsnLog);
        return config.dsnRelay ? new RelayDsnNoticeSender(local, config.dsnRelay, dsnLog) : local;
      },
      [MailStore, settings, Logger, PosternConfig],
    )
    .inSingletonScope()
    .onDeactivation((sender) => sender.close?.());
}
