import { ReplyError } from '../protocol/reply-error.js';

/**
 * Extended response codes this server sends inside `-ERR [CODE] text`:
 * - `AUTH` (RFC 3206 §4): the credentials (or the lack of TLS) are the problem; retrying with other credentials may help;
 * - `SYS/TEMP` (RFC 3206 §5): a temporary system problem (store failure, shutdown, internal error);
 * - `SYS/PERM` (RFC 3206 §5): a permanent system problem (no maildrop for the user);
 * - `IN-USE` (RFC 2449 §8.1.1): the maildrop is locked by another session;
 * - `LOGIN-DELAY` (RFC 2449 §8.1.2): logging in again too soon (reserved for a policy that enforces it).
 */
export type Pop3RespCode = 'AUTH' | 'SYS/TEMP' | 'SYS/PERM' | 'IN-USE' | 'LOGIN-DELAY';

/**
 * A POP3 refusal: thrown by handlers (and by custom authenticators' callers), sent by `dispatch()` as
 * `-ERR [respCode] text` with the session state unchanged. Not counted against the error budget.
 */
export class Pop3Error extends ReplyError {
  override name = 'Pop3Error';
  /**
   * @param respCode optional RFC 2449/3206 response code.
   * @param text human-readable text; never user-controlled data without sanitising (see {@link safeText}).
   */
  constructor(
    readonly respCode: Pop3RespCode | undefined,
    text: string,
  ) {
    super(text);
  }
}

/** `+OK text` with CRLF. */
export function okLine(text: string): string {
  return text ? `+OK ${text}\r\n` : '+OK\r\n';
}

/** `-ERR [code] text` with CRLF. */
export function errLine(respCode: Pop3RespCode | undefined, text: string): string {
  return `-ERR ${respCode ? `[${respCode}] ` : ''}${text}\r\n`;
}

/** The multi-line terminator (RFC 1939 §3). */
export const END_OF_MULTILINE = '.\r\n';

/**
 * A multi-line reply of short lines (CAPA, LIST, UIDL): status line, lines (byte-stuffed), terminator
 * (RFC 1939 §3).
 */
export function multiline(status: string, lines: readonly string[]): string {
  let out = okLine(status);
  for (const l of lines) out += (l.startsWith('.') ? '.' : '') + l + '\r\n';
  return out + END_OF_MULTILINE;
}

/** Client text echoed in a reply: printable ASCII only, at most 40 characters. */
export function safeText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}
