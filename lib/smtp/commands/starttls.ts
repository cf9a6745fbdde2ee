import type { SmtpConnection } from '../smtp-connection.js';
import { REPLIES, SmtpReplyError } from '../smtp-replies.js';

/**
 * STARTTLS (RFC 3207). 503 5.5.1 on a secure session. Otherwise: `220 2.0.0`, then the engine's one TLS path,
 * which drops plaintext pipelined after the command (§4.2, never executed) and sends nothing if the handshake
 * fails. Afterwards the session is back in the pre-EHLO state with no knowledge kept (§4.2: EHLO argument,
 * AUTH, transaction), the backend session is reopened to see the TLS facts, and `onSecure` hooks run.
 */
export async function startTls(conn: SmtpConnection): Promise<void> {
  if (conn.isSecure) throw new SmtpReplyError(503, '5.5.1', 'TLS already active');
  conn.send(REPLIES.startTls);
  if (!(await conn.startTls(conn.deps.security))) return;
  await conn.endTransaction();
  conn.helo = undefined;
  conn.isExtended = false;
  conn.user = undefined;
  conn.enter('connected');
  await conn.admit(conn.reopenSecured.bind(conn));
}
