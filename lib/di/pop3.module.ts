import type { ServerSecurity } from '../core/server-security.js';
import { Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { POP3_PORT, POP3S_PORT, Pop3Settings, resolvePop3Settings, type Pop3Options } from '../pop3/pop3-options.js';
import { Pop3Server } from '../pop3/pop3-server.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, withAuthThrottle } from './core.module.js';
import { ProtocolModule, type ProtocolDescriptor } from './protocol-descriptor.js';

/** The `pop3` section of a config, typed (`false` or absent sections give `{}` / disabled). */
function pop3Section(config: PosternConfig): Pop3Options | undefined {
  return config.pop3 === false ? undefined : ((config.pop3 ?? {}) as Pop3Options);
}

/**
 * POP3: binds `Pop3Settings` (resolved from `config.pop3` and the global switches), `Pop3Server` (singleton
 * ConnectionHandler) and a `Listener` for each enabled listener: `pop3` (plaintext + STLS, default port 3110) and
 * `pop3s` (implicit TLS, RFC 8314, default port 3995), with ports and hosts from `config.pop3` (a
 * {@link Pop3Options}). Listeners close when the container is unbound. Through `createContainer` only the listeners
 * the config enables are bound (see `ProtocolModule`).
 */
export const pop3Module = new ProtocolModule(
  {
    section: 'pop3',
    listeners: [
      { name: 'pop3', defaultPort: POP3_PORT, implicitTls: false, startTlsVerb: 'STLS' },
      { name: 'pop3s', defaultPort: POP3S_PORT, implicitTls: true },
    ],
  },
  {
    bindServer: ({ bind }) => {
      bind(Pop3Settings).toResolvedValue((config: PosternConfig) => resolvePop3Settings(pop3Section(config) ?? {}, config), [PosternConfig]).inSingletonScope();
      bind(Pop3Server)
        .toResolvedValue(
          (store: MailStore, authenticator: Authenticator, security: ServerSecurity, settings: Pop3Settings) => new Pop3Server(store, authenticator, security, settings),
          [MailStore, Authenticator, ServerSecurityToken, Pop3Settings],
        )
        .inSingletonScope()
        .onActivation(withAuthThrottle);
      return Pop3Server;
    },
  },
);

/** POP3's descriptor: section `pop3`, listeners `pop3` (STLS) and `pop3s` (implicit TLS), on by default. */
export const POP3_PROTOCOL: ProtocolDescriptor = { ...pop3Module.shape, onByDefault: true, module: pop3Module };

/** False when `config.pop3` is `false` or has `enabled: false`. */
export function isPop3Enabled(config: PosternConfig): boolean {
  return pop3Section(config)?.enabled !== false;
}

/** False when POP3 is disabled or the named listener (`pop3`, `pop3s`) has `enabled: false`. */
export function isPop3ListenerEnabled(config: PosternConfig, name: string): boolean {
  const section = pop3Section(config);
  if (!section || section.enabled === false) return false;
  return name === 'pop3' || name === 'pop3s' ? section[name]?.enabled !== false : true;
}
