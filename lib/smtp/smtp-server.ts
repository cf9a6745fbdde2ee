import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import { SessionHandler } from '../protocol/session-handler.js';
import type { SmtpBackend, SmtpHooks } from './smtp-backend.js';
import { SmtpConnection, type SmtpConnectionDeps } from './smtp-connection.js';
import type { SmtpSettings } from './smtp-options.js';

const SMTP_ALPN: readonly string[] = Object.freeze(['smtp']);

/**
 * The SMTP `ConnectionHandler`: one instance serves both listeners (STARTTLS and implicit TLS); each
 * connection gets its own {@link SmtpConnection}. Shutdown says `421 4.3.2`. Built as a singleton by
 * `smtpModule`: bound hooks are resolved once, when the server is first resolved (bind them before getting the
 * listeners); hooks that change while the server runs go through {@link setRuntimeHooks}.
 */
export class SmtpServer extends SessionHandler<SmtpConnection> {
  /**
   * ALPN id `smtp` (not in IANA's registry, which has `imap` and `pop3`; the one nginx's mail proxy and Delta Chat
   * use): see `ConnectionHandler.alpnProtocols`.
   */
  readonly alpnProtocols: readonly string[] | undefined = SMTP_ALPN;
  private runtimeHooks: readonly SmtpHooks[] = [];

  constructor(
    readonly settings: SmtpSettings,
    private readonly security: ServerSecurity,
    private readonly backend: SmtpBackend,
    private readonly authenticator: Authenticator,
    private readonly boundHooks: readonly SmtpHooks[] = [],
  ) {
    super();
  }

  /** The hooks every session runs now: the bound ones in binding order, then the runtime ones. */
  get hooks(): readonly SmtpHooks[] {
    return this.runtimeHooks.length === 0 ? this.boundHooks : [...this.boundHooks, ...this.runtimeHooks];
  }

  /**
   * Replaces the runtime hooks (run after the bound ones). Takes effect at the next hook call of every session,
   * live ones included; an empty list removes them. Used by the test double's `setSmtpHooks`.
   */
  setRuntimeHooks(hooks: readonly SmtpHooks[]): void {
    this.runtimeHooks = [...hooks];
  }

  protected createSession(connection: Connection, listener: ListenerInfo): SmtpConnection {
    return new SmtpConnection(connection, this.depsFor(listener));
  }

  /** {@link sessionDeps}, made once per listener rather than per connection (issue 15); `hooks` stays live. */
  protected depsFor(listener: ListenerInfo): SmtpConnectionDeps {
    let deps = this.depsByListener.get(listener);
    if (!deps) {
      deps = this.sessionDeps(listener);
      this.depsByListener.set(listener, deps);
    }
    return deps;
  }

  private readonly depsByListener = new WeakMap<ListenerInfo, SmtpConnectionDeps>();

  /**
   * What a session on `listener` gets: settings, security, backend, the live hook list, authenticator. A protocol
   * built on SMTP (LMTP) overrides {@link createSession} and passes these to its own session class.
   */
  protected sessionDeps(listener: ListenerInfo): SmtpConnectionDeps {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const server = this;
    return {
      settings: this.settings,
      security: this.listenerSecurity(listener, this.security),
      backend: this.backend,
      get hooks() {
        return server.hooks;
      },
      authenticator: this.authenticator,
      listener,
    };
  }

  /** RFC 5321 §3.8: 421 when the service is not available. */
  protected busyLine(): string {
    return '421 4.3.2 Too many connections, try again later\r\n';
  }
}
