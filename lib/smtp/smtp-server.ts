import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import { SessionHandler } from '../protocol/session-handler.js';
import type { SmtpBackend, SmtpHooks } from './smtp-backend.js';
import { SmtpConnection } from './smtp-connection.js';
import type { SmtpSettings } from './smtp-options.js';

/**
 * The SMTP `ConnectionHandler`: one instance serves both listeners (STARTTLS and implicit TLS); each
 * connection gets its own {@link SmtpConnection}. Shutdown says `421 4.3.2`. Built as a singleton by
 * `smtpModule` (hooks are resolved once, when the server is first resolved: bind them before getting the listeners).
 */
export class SmtpServer extends SessionHandler<SmtpConnection> {
  constructor(
    readonly settings: SmtpSettings,
    private readonly security: ServerSecurity,
    private readonly backend: SmtpBackend,
    private readonly authenticator: Authenticator,
    private readonly hooks: readonly SmtpHooks[] = [],
  ) {
    super();
  }

  protected createSession(connection: Connection, listener: ListenerInfo): SmtpConnection {
    return new SmtpConnection(connection, {
      settings: this.settings,
      security: this.security,
      backend: this.backend,
      hooks: this.hooks,
      authenticator: this.authenticator,
      listener,
    });
  }

  /** RFC 5321 §3.8: 421 when the service is not available. */
  protected busyLine(): string {
    return '421 4.3.2 Too many connections, try again later\r\n';
  }
}
