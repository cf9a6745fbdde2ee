import { ReplyError } from '../protocol/reply-error.js';

/**
 * An SMTP refusal with a basic code (RFC 5321 §4.2) and an enhanced status code (RFC 3463, RFC 2034).
 * Thrown by handlers, hooks and backends (`throw new SmtpReplyError(550, '5.7.1', 'Relaying denied')`);
 * the session sends it as-is and its state does not change.
 */
export class SmtpReplyError extends ReplyError {
  override name = 'SmtpReplyError';
  /**
   * @param code three-digit reply code, 4xx or 5xx.
   * @param enhanced enhanced status code `class.subject.detail`, its class matching `code`'s first digit.
   * @param text human-readable text (single line; CR/LF are replaced).
   * @param countsAsError true when the refusal is a client error that counts against the error budget.
   */
  constructor(
    readonly code: number,
    readonly enhanced: string,
    text: string,
    readonly countsAsError = false,
  ) {
    super(text);
    if (!Number.isInteger(code) || code < 400 || code > 599) throw new RangeError(`SMTP refusal code must be 4xx or 5xx, got ${code}`);
    if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced)) throw new RangeError(`bad enhanced status code ${enhanced}`);
  }
}

/** Formats a one-line reply: `250 2.0.0 OK\r\n`. Text is cleaned of CR/LF so a reply can never be split. */
export function reply(code: number, enhanced: string, text: string): string {
  return `${code} ${enhanced} ${clean(text)}\r\n`;
}

/** Formats a multi-line reply (RFC 5321 §4.2.1): `250-first`, …, `250 last`. The enhanced code prefixes none (EHLO style). */
export function multiline(code: number, lines: readonly string[]): string {
  return lines.map((l, i) => `${code}${i === lines.length - 1 ? ' ' : '-'}${clean(l)}\r\n`).join('');
}

/** The first line of a multi-line reply (`250-text`), as {@link multiline} writes it. */
export function continuationLine(code: number, text: string): string {
  return `${code}-${clean(text)}\r\n`;
}

function clean(text: string): string {
  // Almost every text has neither (issue 15: once per reply line): two native searches instead of a regex replace.
  return text.includes('\n') || text.includes('\r') ? text.replace(/[\r\n]+/g, ' ') : text;
}

/**
 * The fixed replies of the server, in one place (RFC 5321 §4.2.2/§4.2.3 codes, RFC 3463 enhanced codes).
 *
 * Enhanced status codes (RFC 2034 §3) go on every reply except the greeting, the EHLO/HELO reply, `354` and the
 * `334` challenges, whether the client said EHLO or HELO (Postfix does the same): the code is part of the text, so a
 * HELO client loses nothing, and one rule is easier to keep than two.
 */
export const REPLIES = {
  ok: reply(250, '2.0.0', 'OK'),
  bye: reply(221, '2.0.0', 'Bye'),
  unknown: reply(500, '5.5.1', 'Command not recognized'),
  badSequence: reply(503, '5.5.1', 'Bad sequence of commands'),
  // RFC 5321 §4.2.2: 500 covers "command line too long"; RFC 3463 X.5.2 is the syntax error. X.5.6 is registered
  // for AUTH exchange lines only (RFC 4954 §6), which readSaslResponse uses.
  lineTooLong: reply(500, '5.5.2', 'Line too long'),
  nul: reply(500, '5.5.2', 'NUL, bare CR or bare LF not allowed in commands'),
  // Past MAX_SKIPPED_LINE_OCTETS without a line end the session gives up: 421 closes it (RFC 5321 §3.8), where
  // a 5xx would tell the client the connection goes on.
  lineRunaway: reply(421, '4.7.0', 'Line too long, closing connection'),
  // An HTTP request line (a browser's form posted to this port, ALPACA): the session closes, so 421 (RFC 5321 §3.8).
  httpRequest: reply(421, '4.7.0', 'HTTP request refused, closing connection'),
  eightBit: reply(500, '5.5.2', '8-bit characters allowed only in SMTPUTF8 addresses'),
  authRequiresTls: reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authRequired: reply(530, '5.7.0', 'Authentication required'),
  tlsRequired: reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
  bug: reply(451, '4.3.0', 'Internal error, try again later'),
  tooManyErrors: reply(421, '4.7.0', 'Too many errors, closing connection'),
  idle: reply(421, '4.4.2', 'Idle timeout, closing connection'),
  preAuthTimeout: reply(421, '4.4.2', 'No mail transaction or login in time, closing connection'),
  shutdown: reply(421, '4.3.2', 'Service shutting down, closing connection'),
  vrfy: reply(252, '2.0.0', 'Cannot VRFY user, but will accept message and attempt delivery'),
  expn: reply(502, '5.5.1', 'EXPN not implemented'),
  startTls: reply(220, '2.0.0', 'Ready to start TLS'),
  alreadySecure: reply(503, '5.5.1', 'TLS already active'),
  dataGoAhead: '354 End data with <CR><LF>.<CR><LF>\r\n',
} as const;
