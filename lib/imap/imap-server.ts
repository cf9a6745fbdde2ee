import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import type { MailStore } from '../contracts/mail-store.js';
import { SessionHandler } from '../protocol/session-handler.js';
import type { ImapConnection } from './imap-connection.js';
import type { ImapHooks } from './imap-hooks.js';
import { RecentTracker } from './imap-recent.js';
import type { ImapSettings } from './imap-options.js';

const IMAP_ALPN: readonly string[] = Object.freeze(['imap']);

/**
 * The IMAP `ConnectionHandler`: one instance serves both listeners (STARTTLS port and implicit-TLS port),
 * running one {@link ImapConnection} per accepted connection and releasing its store view and watch when it
 * ends. Shutdown says `* BYE Server shutting down`. Built by `imapModule` (a singleton, with every `ImapHooks`
 * bound at resolution time).
 */
export class ImapServer extends SessionHandler<ImapConnection> {
  /** ALPN id `imap` (IANA, RFC 2595): see `ConnectionHandler.alpnProtocols`. */
  readonly alpnProtocols: readonly string[] = IMAP_ALPN;
  private readonly recent = new RecentTracker();
  private session?: typeof ImapConnection;

  constructor(
    private readonly store: MailStore,
    private readonly authenticator: Authenticator,
    private readonly security: ServerSecurity,
    private readonly settings: ImapSettings,
    /** The bound `ImapHooks`, in binding order. */
    private readonly hooks: readonly ImapHooks[] = [],
  ) {
    super();
  }

  /** ImapConnection and the ~40 command modules under it load here, before the listener accepts, not at `import 'postern'`. */
  protected override async loadSessionCode(): Promise<void> {
    this.session = (await import('./imap-connection.js')).ImapConnection;
  }

  protected createSession(connection: Connection, listener: ListenerInfo): ImapConnection {
    if (!this.session) throw new Error('ImapServer: session code not loaded (prepare() first)');
    return new this.session(connection, { store: this.store, authenticator: this.authenticator, security: this.listenerSecurity(listener, this.security), settings: this.settings, listener, recent: this.recent, hooks: this.hooks });
  }

  /** RFC 3501 §7.1.5: BYE for a refused connection. */
  protected busyLine(): string {
    return '* BYE Too many connections, try later\r\n';
  }
}
