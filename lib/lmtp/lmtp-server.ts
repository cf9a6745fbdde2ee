import type { Connection } from '../core/connection.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import { SmtpServer } from '../smtp/smtp-server.js';
import { LmtpConnection } from './lmtp-connection.js';

/**
 * The LMTP `ConnectionHandler` (RFC 2033): an {@link SmtpServer} whose sessions are {@link LmtpConnection}s. It takes
 * the same backend and hooks as SMTP (those bound to `SmtpBackend` and `SmtpHooks`), so mail arriving over LMTP goes
 * through the same policy into the same store. One instance serves the TCP listener and the Unix socket; shutdown
 * says `421 4.3.2` like SMTP.
 */
export class LmtpServer extends SmtpServer {
  /** LMTP has no ALPN id (none is registered, and LMTP clients offer none): not negotiated. */
  override readonly alpnProtocols: readonly string[] | undefined = undefined;

  protected override createSession(connection: Connection, listener: ListenerInfo): LmtpConnection {
    return new LmtpConnection(connection, this.depsFor(listener));
  }
}
