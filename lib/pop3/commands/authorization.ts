import { createHash, timingSafeEqual } from 'node:crypto';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { Pop3Connection } from '../pop3-connection.js';
import { okLine, Pop3Error } from '../pop3-replies.js';

/** USER name (RFC 1939 §7): remembers the login; always `+OK`, so the reply reveals nothing about the user. */
export function user(conn: Pop3Connection, args: string): void {
  conn.pendingUser = args;
  conn.send(okLine('send PASS'));
}

/**
 * PASS string (RFC 1939 §7): completes USER. The argument is the rest of the line, spaces included.
 * @throws ProtocolSyntaxError without a preceding USER; Pop3Error from the login.
 */
export async function pass(conn: Pop3Connection, args: string): Promise<void> {
  const username = conn.pendingUser;
  if (username === undefined) throw new ProtocolSyntaxError('USER first');
  await conn.login('USER', { username, password: args });
}

const APOP_ARGS = /^(\S+) ([0-9a-fA-F]{32})$/;

/**
 * APOP name digest (RFC 1939 §7): digest = MD5(greeting timestamp + shared secret), lower-case hex.
 * Offered only when the Authenticator knows shared secrets (the greeting then carries the timestamp).
 * @throws Pop3Error when APOP is not offered; ProtocolSyntaxError for a malformed argument.
 */
export async function apop(conn: Pop3Connection, args: string): Promise<void> {
  const timestamp = conn.apopTimestamp;
  if (timestamp === undefined) throw new Pop3Error(undefined, 'APOP not supported');
  const m = APOP_ARGS.exec(args);
  if (!m) throw new ProtocolSyntaxError('usage: APOP name digest');
  const digest = Buffer.from(m[2].toLowerCase());
  await conn.login('APOP', {
    username: m[1],
    verifyWithSecret: (secret) => {
      const expected = Buffer.from(createHash('md5').update(timestamp + secret, 'utf8').digest('hex'));
      return expected.length === digest.length && timingSafeEqual(expected, digest);
    },
  });
}
