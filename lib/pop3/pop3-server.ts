import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import type { MailStore } from '../contracts/mail-store.js';
import { SessionHandler } from '../protocol/session-handler.js';
import type { Pop3Connection } from './pop3-connection.js';
import type { Pop3Hooks } from './pop3-hooks.js';
import type { Pop3Settings } from './pop3-options.js';
import { errLine } from './pop3-replies.js';

const POP3_ALPN: readonly string[] = Object.freeze(['pop3']);

/**
 * The POP3 `ConnectionHandler`: one instance serves both listeners (STLS port and implicit-TLS port),
 * running one {@link Pop3Connection} per accepted connection and releasing its maildrop lock when it ends.
 * Shutdown says `-ERR [SYS/TEMP] server shutting down` and applies no deletions. Built by `pop3Module` (a singleton).
 */
export class Pop3Server extends SessionHandler<Pop3Connection> {
  /** ALPN id `pop3` (IANA, RFC 2595): see `ConnectionHandler.alpnProtocols`. */
  readonly alpnProtocols: readonly string[] = POP3_ALPN;
  private session?: typeof Pop3Connection;

  constructor(
    private readonly store: MailStore,
    private readonly authenticator: Authenticator,
    private readonly security: ServerSecurity,
    private readonly settings: Pop3Settings,
    /** The bound `Pop3Hooks`, in binding order. */
    private readonly hooks: readonly Pop3Hooks[] = [],
  ) {
    super();
  }

  /** Pop3Connection and its command modules load here, before the listener accepts, not at `import 'postern'`. */
  protected override async loadSessionCode(): Promise<void> {
    this.session = (await import('./pop3-connection.js')).Pop3Connection;
  }

  protected createSession(connection: Connection, listener: ListenerInfo): Pop3Connection {
    if (!this.session) throw new Error('Pop3Server: session code not loaded (prepare() first)');
    return new this.session(connection, { store: this.store, authenticator: this.authenticator, security: this.listenerSecurity(listener, this.security), settings: this.settings, listener, hooks: this.hooks });
  }

  /** RFC 2449 §8.1.2: SYS/TEMP for a transient refusal. */
  protected busyLine(): string {
    return errLine('SYS/TEMP', 'too many connections, try later');
  }
}
