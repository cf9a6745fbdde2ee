import type { SmtpConnection } from '../smtp-connection.js';
import { continuationLine, multiline } from '../smtp-replies.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { availableMechanisms } from '../../protocol/sasl/sasl-mechanism.js';

/** Inputs of {@link ehloKeywords}. */
export interface CapabilityInputs {
  readonly secure: boolean;
  readonly allowInsecureAuth: boolean;
  readonly maxMessageSize: number;
  /** The Authenticator can check challenge-response mechanisms (CRAM-MD5); used when `saslMechanisms` is absent. */
  readonly supportsSharedSecrets?: boolean;
  /** The SASL mechanisms available on this session, in order (from the registry): the AUTH keyword's list. */
  readonly saslMechanisms?: readonly string[];
  /** DSN (RFC 3461) is offered (`smtp.dsn`). */
  readonly dsn?: boolean;
  /** REQUIRETLS (RFC 8689) is offered on TLS sessions (`smtp.requireTlsExtension`, default on). */
  readonly requireTlsExtension?: boolean;
}

/**
 * The EHLO keywords: a pure function of security and configuration (STYLE §4). STARTTLS only in plaintext
 * (RFC 3207 §4.2: not after the upgrade); AUTH only once secure unless `allowInsecureAuth` (like Postfix's
 * smtpd_tls_auth_only, RFC 4954 §4).
 */
export function ehloKeywords(c: CapabilityInputs): string[] {
  const keys = ['PIPELINING', `SIZE ${c.maxMessageSize}`, '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'CHUNKING'];
  if (c.dsn) keys.push('DSN');
  // RFC 8689 §4.1: REQUIRETLS only on a session protected by TLS.
  if (c.secure && c.requireTlsExtension) keys.push('REQUIRETLS');
  if (!c.secure) keys.push('STARTTLS');
  const mechanisms = c.saslMechanisms ?? ['PLAIN', 'LOGIN', ...(c.supportsSharedSecrets ? ['CRAM-MD5'] : [])];
  if (advertisesAuth(c) && mechanisms.length > 0) keys.push(`AUTH ${mechanisms.join(' ')}`);
  keys.push('HELP');
  return keys;
}

/** AUTH is offered only over TLS, or in plaintext when configured (RFC 4954 §4, the same rule as the AUTH command's guard). */
function advertisesAuth(c: Pick<CapabilityInputs, 'secure' | 'allowInsecureAuth'>): boolean {
  return c.secure || c.allowInsecureAuth;
}

// RFC 5321 §4.1.1.1: EHLO takes a domain or an address literal; be lenient on the exact form but refuse junk.
const HELO_ARG = /^[\x21-\x7e\u0080-\u{10FFFF}]+$/u;

async function greet(conn: SmtpConnection, args: string, extended: boolean): Promise<void> {
  const domain = args.trim().split(' ')[0];
  if (!HELO_ARG.test(domain)) throw new ProtocolSyntaxError(`${extended ? 'EHLO' : 'HELO'} needs a domain or address literal`);
  // RFC 5321 §4.1.4: EHLO/HELO in a transaction is an implicit RSET.
  await conn.endTransaction();
  conn.helo = domain;
  conn.isExtended = extended;
  conn.enter('ready');
  const name = conn.settings.hostname;
  if (!extended) {
    conn.send(`250 ${name} greets ${domain}\r\n`);
    return;
  }
  const secure = conn.isSecure;
  const allowInsecureAuth = conn.allowsInsecureAuth;
  // Asked only when AUTH is advertised: the plaintext EHLO before STARTTLS needs no peer snapshot (issue 15).
  const mechanisms = advertisesAuth({ secure, allowInsecureAuth }) ? availableMechanisms(conn.saslMechanisms, conn.saslSession) : NO_MECHANISMS;
  conn.send(continuationLine(250, `${name} greets ${domain}`) + keywordLines(conn.settings, secure, allowInsecureAuth, mechanisms));
}

/** No SASL mechanism (plaintext without `allowInsecureAuth`). */
const NO_MECHANISMS: readonly string[] = [];

/** The keyword lines of the EHLO reply (`250-PIPELINING` … `250 HELP`) by settings, then security and mechanisms. */
const KEYWORD_LINES = new WeakMap<object, Map<string, string>>();
/** Keyword-line variants kept per settings object (a handful: plaintext, TLS, TLS with a client certificate…). */
const KEYWORD_VARIANTS = 16;

/** {@link ehloKeywords}' lines as they are sent, made once per settings and variant (issue 15: two EHLO per STARTTLS session). */
function keywordLines(
  settings: { readonly maxMessageSize: number; readonly dsn?: boolean; readonly requireTlsExtension?: boolean },
  secure: boolean,
  allowInsecureAuth: boolean,
  mechanisms: readonly string[],
): string {
  let variants = KEYWORD_LINES.get(settings);
  if (variants === undefined) KEYWORD_LINES.set(settings, (variants = new Map()));
  const key = `${secure ? 's' : 'p'}${allowInsecureAuth ? 'i' : ''} ${mechanisms.join(' ')}`;
  let lines = variants.get(key);
  if (lines === undefined) {
    const keys = ehloKeywords({
      secure,
      allowInsecureAuth,
      maxMessageSize: settings.maxMessageSize,
      saslMechanisms: mechanisms,
      dsn: settings.dsn,
      requireTlsExtension: settings.requireTlsExtension,
    });
    lines = multiline(250, keys);
    if (variants.size >= KEYWORD_VARIANTS) variants.clear();
    variants.set(key, lines);
  }
  return lines;
}

/** EHLO (RFC 5321 §4.1.1.1, RFC 1869): greeting plus the extension keywords. */
export function ehlo(conn: SmtpConnection, args: string): Promise<void> {
  return greet(conn, args, true);
}

/** HELO (RFC 5321 §4.1.1.1): plain SMTP, no keywords. */
export function helo(conn: SmtpConnection, args: string): Promise<void> {
  return greet(conn, args, false);
}
