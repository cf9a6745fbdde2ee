import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { Pop3Connection } from '../pop3-connection.js';
import { multiline, okLine } from '../pop3-replies.js';

/** STAT (RFC 1939 §5): `+OK count octets` of the messages not marked deleted. */
export function stat(conn: Pop3Connection): void {
  const { count, octets } = conn.maildrop.stat();
  conn.send(okLine(`${count} ${octets}`));
}

/** LIST [msg] (RFC 1939 §5): one scan listing, or all of them as a multi-line reply. */
export function list(conn: Pop3Connection, args: string): void {
  const drop = conn.maildrop;
  if (args !== '') {
    const e = drop.get(args);
    conn.send(okLine(`${e.number} ${e.size}`));
    return;
  }
  const { count, octets } = drop.stat();
  conn.send(multiline(`${count} messages (${octets} octets)`, drop.live.map((e) => `${e.number} ${e.size}`)));
}

/** UIDL [msg] (RFC 1939 §7): unique-ids `uidValidity.uid`, stable across sessions. */
export function uidl(conn: Pop3Connection, args: string): void {
  const drop = conn.maildrop;
  if (args !== '') {
    const e = drop.get(args);
    conn.send(okLine(`${e.number} ${e.uidl}`));
    return;
  }
  conn.send(multiline('unique-id listing follows', drop.live.map((e) => `${e.number} ${e.uidl}`)));
}

/** DELE msg (RFC 1939 §5): marks a message deleted; applied only at QUIT (UPDATE state). */
export function dele(conn: Pop3Connection, args: string): void {
  const e = conn.maildrop.get(args);
  e.deleted = true;
  conn.send(okLine(`message ${e.number} deleted`));
}

/** RSET (RFC 1939 §5): unmarks every deleted message. */
export function rset(conn: Pop3Connection): void {
  conn.maildrop.reset();
  const { count, octets } = conn.maildrop.stat();
  conn.send(okLine(`maildrop has ${count} messages (${octets} octets)`));
}

/** NOOP (RFC 1939 §5). */
export function noop(conn: Pop3Connection): void {
  conn.send(okLine(''));
}

/** RETR msg (RFC 1939 §5): the whole message, byte-stuffed. */
export async function retr(conn: Pop3Connection, args: string): Promise<void> {
  await conn.sendMessage(conn.maildrop.get(args));
}

const LINE_COUNT = /^[0-9]{1,9}$/;

/** TOP msg n (RFC 1939 §7): the header, the blank line and the first n body lines. */
export async function top(conn: Pop3Connection, args: string): Promise<void> {
  const [msg, n, ...extra] = args.split(' ');
  if (n === undefined || extra.length > 0 || !LINE_COUNT.test(n)) throw new ProtocolSyntaxError('usage: TOP msg n');
  await conn.sendMessage(conn.maildrop.get(msg), Number(n));
}
