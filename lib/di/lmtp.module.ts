import type { ServerSecurity } from '../core/server-security.js';
import { Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { LMTP_PORT, LmtpSettings, resolveLmtpSettings, type LmtpOptions } from '../lmtp/lmtp-options.js';
import { LmtpServer } from '../lmtp/lmtp-server.js';
import { Logger } from '../log/logger.js';
import { DsnNoticeSender } from '../smtp/dsn-notices.js';
import { MailStoreSmtpBackend } from '../smtp/mail-store-smtp-backend.js';
import { SmtpBackend, SmtpHooks } from '../smtp/smtp-backend.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, withAuthThrottle } from './core.module.js';
import { bindDsnNoticeSender } from './smtp.module.js';
import { ProtocolModule, type ProtocolDescriptor } from './protocol-descriptor.js';

/** The `lmtp` section of a config, typed (`false` gives undefined). */
function lmtpSection(config: PosternConfig): LmtpOptions | undefined {
  return config.lmtp === false ? undefined : ((config.lmtp ?? {}) as LmtpOptions);
}

/**
 * LMTP (RFC 2033): binds `LmtpSettings` (from `config.lmtp`, an {@link LmtpOptions}), `LmtpServer` and its
 * listeners: `lmtp` (TCP, plaintext + STARTTLS, default port 3024) and, when `config.lmtp.socket` names a path,
 * `lmtp-socket` (a Unix domain socket). The server uses the bound `SmtpBackend` and every `SmtpHooks`, like SMTP;
 * when the SMTP module is not loaded, it binds the default `MailStoreSmtpBackend` itself (with LMTP's settings).
 */
export const lmtpModule = new ProtocolModule(
  {
    section: 'lmtp',
    listeners: [{ name: 'lmtp', defaultPort: LMTP_PORT, implicitTls: false, startTlsVerb: 'STARTTLS' }],
    unixSocketListener: 'lmtp-socket',
  },
  {
    bindServer: ({ bind, isBound }) => {
      bind(LmtpSettings).toResolvedValue((config: PosternConfig) => resolveLmtpSettings(lmtpSection(config) ?? {}, config), [PosternConfig]).inSingletonScope();
      if (!isBound(SmtpBackend)) {
        bindDsnNoticeSender(bind, isBound, LmtpSettings);
        bind(SmtpBackend)
          .toResolvedValue(
            (store: MailStore, settings: LmtpSettings, notices: DsnNoticeSender, log: Logger) => new MailStoreSmtpBackend(store, settings, notices, log.child({ proto: 'lmtp' })),
            [MailStore, LmtpSettings, DsnNoticeSender, Logger],
          )
          .inSingletonScope();
      }
      bind(LmtpServer)
        .toResolvedValue(
          (settings: LmtpSettings, security: ServerSecurity, backend: SmtpBackend, authenticator: Authenticator, hooks: SmtpHooks[] | undefined) =>
            new LmtpServer(settings, security, backend, authenticator, hooks ?? []),
          [LmtpSettings, ServerSecurityToken, SmtpBackend, Authenticator, { serviceIdentifier: SmtpHooks, isMultiple: true, optional: true }],
        )
        .inSingletonScope()
        .onActivation(withAuthThrottle);
      return LmtpServer;
    },
    listenerOptions: (server: LmtpServer) => ({ idleTimeoutMs: server.settings.idleTimeoutMs }),
  },
);

/**
 * LMTP's descriptor: section `lmtp`, listener `lmtp` (STARTTLS, port 3024) plus `lmtp-socket` when a socket path is
 * configured. Off unless asked for (named in `only`, or `lmtp.socket` set): a delivery agent is not a default service.
 */
export const LMTP_PROTOCOL: ProtocolDescriptor = { ...lmtpModule.shape, onByDefault: false, module: lmtpModule };
