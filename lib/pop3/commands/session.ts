import type { Pop3Connection } from '../pop3-connection.js';
import { multiline } from '../pop3-replies.js';

/** CAPA (RFC 2449 §5): the capability list for the current state and security. */
export function capa(conn: Pop3Connection): void {
  conn.send(multiline('capability list follows', conn.capabilities()));
}

/** STLS (RFC 2595 §4): upgrade to TLS in the AUTHORIZATION state. */
export async function stls(conn: Pop3Connection): Promise<void> {
  await conn.upgradeTls();
}

/** QUIT (RFC 1939 §6): apply deletions when in TRANSACTION, then close. */
export async function quit(conn: Pop3Connection): Promise<void> {
  await conn.quit();
}
