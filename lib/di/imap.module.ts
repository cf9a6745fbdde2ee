import { ContainerModule } from 'inversify';
import type { ServerSecurity } from '../core/server-security.js';
import { Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { IMAP_PORT, IMAPS_PORT, ImapSettings, resolveImapSettings, type ImapListenerOptions, type ImapOptions } from '../imap/imap-options.js';
import { ImapHooks } from '../imap/imap-hooks.js';
import { ImapServer } from '../imap/imap-server.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, TcpServerFactory, withAuthThrottle } from './core.module.js';
import { Listener } from './listener.js';

/** The `imap` section of a config, typed (`false` gives undefined, absent gives `{}`). */
function imapSection(config: PosternConfig): ImapOptions | undefined {
  return config.imap === false ? undefined : ((config.imap ?? {}) as ImapOptions);
}

/**
 * IMAP: binds `ImapSettings` (resolved from `config.imap` and the global switches), `ImapServer` (singleton
 * ConnectionHandler) and two `Listener`s, `imap` (plaintext + STARTTLS, default port 3143) and `imaps`
 * (implicit TLS, RFC 8314, default port 3993), with ports and hosts from `config.imap` (an {@link ImapOptions}).
 * Listeners close when the container is unbound.
 *
 * A ContainerModule cannot see the config while it binds, so the `enabled` switches are for the assembler:
 * load this module only when {@link isImapEnabled} says so, and skip listeners for which
 * {@link isImapListenerEnabled} is false.
 */
export const imapModule = new ContainerModule(({ bind }) => {
  bind(ImapSettings).toResolvedValue((config: PosternConfig) => resolveImapSettings(imapSection(config) ?? {}, config), [PosternConfig]);
  bind(ImapServer)
    .toResolvedValue(
      (store: MailStore, authenticator: Authenticator, security: ServerSecurity, settings: ImapSettings, hooks: ImapHooks[] | undefined) =>
        new ImapServer(store, authenticator, security, settings, hooks ?? []),
      [MailStore, Authenticator, ServerSecurityToken, ImapSettings, { serviceIdentifier: ImapHooks, isMultiple: true, optional: true }],
    )
    .inSingletonScope()
    .onActivation(withAuthThrottle);
  for (const [name, defaultPort, implicitTls] of [
    ['imap', IMAP_PORT, false],
    ['imaps', IMAPS_PORT, true],
  ] as const) {
    bind(Listener)
      .toResolvedValue(
        (factory: TcpServerFactory, server: ImapServer, config: PosternConfig, security: ServerSecurity) => {
          const own: ImapListenerOptions = imapSection(config)?.[name] ?? {};
          return factory(server, { name, host: own.host ?? config.host, port: own.port ?? defaultPort, security: implicitTls ? security : undefined });
        },
        [TcpServerFactory, ImapServer, PosternConfig, ServerSecurityToken],
      )
      .inSingletonScope()
      .onDeactivation((l) => l.close());
  }
});

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
