import type { SecurityState } from '../core/connection.js';

/** What the Received header says about one transaction. */
export interface ReceivedFacts {
  /** EHLO/HELO argument. */
  readonly helo: string;
  readonly remoteAddress: string;
  /** This server's name. */
  readonly hostname: string;
  /** RFC 3848 / RFC 6531 `with` keyword (see {@link withKeyword}). */
  readonly protocol: string;
  readonly security: SecurityState;
  /** Connection id, as the `id` clause (log correlation). */
  readonly id: string;
  /** Recipients: named in the `for` clause only when there is exactly one (RFC 5321 §7.2 privacy). */
  readonly rcptTo: readonly string[];
  readonly date: Date;
}

/**
 * The `with` keyword: `SMTP` after HELO, `ESMTP` after EHLO, plus `S` when encrypted and `A` when authenticated
 * (RFC 3848: ESMTPS, ESMTPA, ESMTPSA). A transaction that used the SMTPUTF8 parameter is `UTF8SMTP` with the same
 * suffixes (RFC 6531 §3.7.3: UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA). With `lmtp` (after LHLO): `LMTP`, `LMTPS`,
 * `LMTPA`, `LMTPSA` (RFC 3848 §2) and `UTF8LMTP…` (RFC 6531 §3.7.3).
 */
export function withKeyword(ehlo: boolean, secure: boolean, authenticated: boolean, smtpUtf8 = false, lmtp = false): string {
  if (lmtp) return `${smtpUtf8 ? 'UTF8LMTP' : 'LMTP'}${secure ? 'S' : ''}${authenticated ? 'A' : ''}`;
  if (!ehlo) return 'SMTP';
  return `${smtpUtf8 ? 'UTF8SMTP' : 'ESMTP'}${secure ? 'S' : ''}${authenticated ? 'A' : ''}`;
}

/**
 * Builds the trace header the server prepends to every message (RFC 5321 §4.4), folded at 78 columns with
 * TAB continuation, CRLF-terminated. When the session is encrypted, a comment after the `with` keyword names
 * the TLS version and cipher: `with ESMTPS (TLSv1.3:TLS_AES_256_GCM_SHA384)`.
 */
export function receivedHeader(f: ReceivedFacts): string {
  const address = f.remoteAddress;
  const ip = address.startsWith('::ffff:') ? address.slice(7) : address;
  const tls = f.security.tls ? ` (${f.security.protocol ?? 'TLS'}:${f.security.cipher ?? 'unknown'})` : '';
  const helo = PRINTABLE.test(f.helo) ? f.helo : f.helo.replace(/[^\x21-\x7e]/g, '?');
  // A Unix-socket peer has no address: the from clause is the LHLO/EHLO name alone (RFC 5321 §4.4 Extended-Domain).
  const from = ip === '' ? `Received: from ${helo}` : `Received: from ${helo} (${ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`})`;
  const by = `\tby ${f.hostname} with ${f.protocol}${tls} id ${f.id}`;
  const date = rfc5322Date(f.date);
  return f.rcptTo.length === 1 ? `${from}\r\n${by}\r\n\tfor <${f.rcptTo[0]}>; ${date}\r\n` : `${from}\r\n${by}; ${date}\r\n`;
}

/** A HELO name that needs no `?` for octets outside 0x21–0x7e (the common case: no replace). */
const PRINTABLE = /^[\x21-\x7e]*$/;

/** The last date formatted, by its whole second: a message a millisecond later needs no new string (issue 15). */
let lastSecond = NaN;
let lastDate = '';

/** RFC 5322 §3.3 date-time in UTC with a numeric zone: `Tue, 01 Jul 2025 12:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastSecond) {
    lastDate = d.toUTCString().replace(/GMT$/, '+0000');
    lastSecond = second;
  }
  return lastDate;
}
