import type { SmtpConnection } from '../smtp-connection.js';
import { multiline, REPLIES } from '../smtp-replies.js';

/** NOOP (RFC 5321 §4.1.1.9): 250, any argument ignored. */
export function noop(conn: SmtpConnection): void {
  conn.send(REPLIES.ok);
}

/** QUIT (RFC 5321 §4.1.1.10): 221, then close. An unfinished transaction is abandoned. */
export async function quit(conn: SmtpConnection): Promise<void> {
  conn.send(REPLIES.bye);
  await conn.end('closed');
}

/** VRFY (RFC 5321 §3.5.3, §7.3): 252, never confirms or denies a user (no address harvesting). */
export function vrfy(conn: SmtpConnection): void {
  conn.send(REPLIES.vrfy);
}

/** EXPN (RFC 5321 §3.5.3, §7.3): 502, lists are not expanded. */
export function expn(conn: SmtpConnection): void {
  conn.send(REPLIES.expn);
}

/** HELP (RFC 5321 §4.1.1.8): 214 with the supported commands. */
export function help(conn: SmtpConnection): void {
  conn.send(
    multiline(214, [
      '2.0.0 Postern SMTP; commands:',
      '2.0.0 EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH',
      '2.0.0 See RFC 5321',
    ]),
  );
}
