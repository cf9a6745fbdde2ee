import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ConnectionHandler, ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import type { MailStore } from '../contracts/mail-store.js';
import { Pop3Connection } from './pop3-connection.js';
import type { Pop3Settings } from './pop3-options.js';
import { errLine } from './pop3-replies.js';

/**
 * The POP3 {@link ConnectionHandler}: one instance serves both listeners (STLS port and implicit-TLS port),
 * running one {@link Pop3Connection} per accepted connection. Built by `pop3Module` (a singleton).
 */
export class Pop3Server implements ConnectionHandler {
  private readonly sessions = new Map<Connection, Pop3Connection>();

  constructor(
    private readonly store: MailStore,
    private readonly authenticator: Authenticator,
    private readonly security: ServerSecurity,
    private readonly settings: Pop3Settings,
  ) {}

  /** Runs one session until its connection closes, then releases its maildrop lock. */
  async handle(connection: Connection, listener: ListenerInfo): Promise<void> {
    const session = new Pop3Connection(connection, {
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
      this.sessions.delete(connection);
      await session.release();
    }
  }

  /** Listener full: `-ERR [SYS/TEMP]` on the plaintext port (an implicit-TLS peer expects a handshake, so nothing there). */
  refuse(connection: Connection, listener: ListenerInfo): void {
    if (!listener.implicitTls) connection.write(errLine('SYS/TEMP', 'too many connections, try later'));
  }

  /** Server closing: `-ERR [SYS/TEMP] server shutting down`, then close; no deletions are applied. */
  async shutdown(connection: Connection): Promise<void> {
    const session = this.sessions.get(connection);
    if (session) await session.shutdown();
    else await connection.close('server-shutdown');
  }
}
