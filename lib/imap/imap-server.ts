import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ConnectionHandler, ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import type { MailStore } from '../contracts/mail-store.js';
import { ImapConnection } from './imap-connection.js';
import type { ImapSettings } from './imap-options.js';

/**
 * The IMAP {@link ConnectionHandler}: one instance serves both listeners (STARTTLS port and implicit-TLS port),
 * running one {@link ImapConnection} per accepted connection. Built by `imapModule` (a singleton).
 */
export class ImapServer implements ConnectionHandler {
  private readonly sessions = new Map<Connection, ImapConnection>();

  constructor(
    private readonly store: MailStore,
    private readonly authenticator: Authenticator,
    private readonly security: ServerSecurity,
    private readonly settings: ImapSettings,
  ) {}

  /** Runs one session until its connection closes, then releases its store view and watch. */
  async handle(connection: Connection, listener: ListenerInfo): Promise<void> {
    const session = new ImapConnection(connection, {
      store: this.store,
      authenticator: this.authenticator,
      security: this.security,
      settings: this.settings,
      listener,
    });
    this.sessions.set(connection, session);
    try {
      await session.run();
    } finally {
      if (!connection.isClosed) await connection.close('closed');
      this.sessions.delete(connection);
      await session.release();
    }
  }

  /** Listener full: `* BYE` on the plaintext port (RFC 3501 §7.1.5; an implicit-TLS peer expects a handshake, so nothing there). */
  refuse(connection: Connection, listener: ListenerInfo): void {
    if (!listener.implicitTls) connection.write('* BYE Too many connections, try later\r\n');
  }

  /** Server closing: `* BYE Server shutting down`, then close. */
  async shutdown(connection: Connection): Promise<void> {
    const session = this.sessions.get(connection);
    if (session) await session.shutdown();
    else await connection.close('server-shutdown');
  }
}
