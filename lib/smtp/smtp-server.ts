import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ConnectionHandler, ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import type { SmtpBackend, SmtpHooks } from './smtp-backend.js';
import { SmtpConnection } from './smtp-connection.js';
import type { SmtpSettings } from './smtp-options.js';
import { REPLIES } from './smtp-replies.js';

/**
 * The SMTP {@link ConnectionHandler}: one instance serves both listeners (STARTTLS and implicit TLS); each
 * connection gets its own {@link SmtpConnection}. Built as a singleton by `smtpModule` (hooks are resolved
 * once, when the server is first resolved: bind them before getting the listeners).
 */
export class SmtpServer implements ConnectionHandler {
  private readonly sessions = new Map<Connection, SmtpConnection>();

  constructor(
    readonly settings: SmtpSettings,
    private readonly security: ServerSecurity,
    private readonly backend: SmtpBackend,
    private readonly authenticator: Authenticator,
    private readonly hooks: readonly SmtpHooks[] = [],
  ) {}

  /** Runs one session until its connection closes. */
  async handle(connection: Connection, listener: ListenerInfo): Promise<void> {
    const session = new SmtpConnection(connection, {
      settings: this.settings,
      security: this.security,
      backend: this.backend,
      hooks: this.hooks,
      authenticator: this.authenticator,
      listener,
    });
    this.sessions.set(connection, session);
    try {
      await session.run();
    } finally {
      this.sessions.delete(connection);
    }
  }

  /** A full listener: `421 4.3.2` (RFC 5321 §3.8) on the plaintext port; an implicit-TLS peer expects a handshake, so nothing there. */
  refuse(connection: Connection, listener: ListenerInfo): void {
    if (!listener.implicitTls) connection.write('421 4.3.2 Too many connections, try again later\r\n');
  }

  /** Server shutdown: each live session says `421 4.3.2` and closes. */
  async shutdown(connection: Connection): Promise<void> {
    const session = this.sessions.get(connection);
    if (session) await session.shutdown();
    else {
      connection.write(REPLIES.shutdown);
      await connection.close('server-shutdown');
    }
  }
}
