import type { ServerSecurity } from '../core/server-security.js';
import { Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { IMAP_PORT, IMAPS_PORT, ImapSettings, resolveImapSettings, type ImapOptions } from '../imap/imap-options.js';
import { ImapServer } from '../imap/imap-server.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, withAuthThrottle } from './core.module.js';
import { ProtocolModule, type ProtocolDescriptor } from './protocol-descriptor.js';

/** The `imap` section of a config, typed (`false` gives undefined, absent gives `{}`). */
function imapSection(config: PosternConfig): ImapOptions | undefined {
  return config.imap === false ? undefined : ((config.imap ?? {}) as ImapOptions);
}

/**
 * IMAP: binds `ImapSettings` (resolved from `config.imap` and the global switches), `ImapServer` (singleton
 * ConnectionHandler) and a `Listener` for each enabled listener: `imap` (plaintext + STARTTLS, default port 3143)
 * and `imaps` (implicit TLS, RFC 8314, default port 3993), with ports and hosts from `config.imap` (an
 * {@link ImapOptions}). Listeners close when the container is unbound. Through `createContainer` only the
 * listeners the config enables are bound (see `ProtocolModule`).
 */
export const imapModule = new ProtocolModule(
  {
    section: 'imap',
    listeners: [
      { name: 'imap', defaultPort: IMAP_PORT, implicitTls: false, startTlsVerb: 'STARTTLS' },
      { name: 'imaps', defaultPort: IMAPS_PORT, implicitTls: true },
    ],
  },
  {
    bindServer: ({ bind }) => {
      bind(ImapSettings).toResolvedValue((config: PosternConfig) => resolveImapSettings(imapSection(config) ?? {}, config), [PosternConfig]);
      bind(ImapServer)
        .toResolvedValue(
          (store: MailStore, authenticator: Authenticator, security: ServerSecurity, settings: ImapSettings) => new ImapServer(store, authenticator, security, settings),
          [MailStore, Authenticator, ServerSecurityToken, ImapSettings],
        )
        .inSingletonScope()
        .onActivation(withAuthThrottle);
      return ImapServer;
    },
  },
);

/** IMAP's descriptor: section `imap`, listeners `imap` (STARTTLS) and `imaps` (implicit TLS), on by default. */
export const IMAP_PROTOCOL: ProtocolDescriptor = { ...imapModule.shape, onByDefault: true, module: imapModule };

/** False when `config.imap` is `false` or has `enabled: false`. */
export function isImapEnabled(config: PosternConfig): boolean {
  return imapSection(config)?.enabled !== false;
}

/** False when IMAP is disabled or the named listener (`imap`, `imaps`) has `enabled: false`. */
export function isImapListenerEnabled(config: PosternConfig, name: string): boolean {
  const section = imapSection(config);
  if (!section || section.enabled === false) return false;
  return name === 'imap' || name === 'imaps' ? section[name]?.enabled !== false : true;
}
