import type { ImapState } from './imap-state.js';

/** What the CAPABILITY list depends on. */
export interface ImapCapabilityInput {
  readonly state: ImapState;
  /** TLS is active (implicit, or after STARTTLS). */
  readonly isSecure: boolean;
  /** Global `allowInsecureAuth`. */
  readonly allowInsecureAuth: boolean;
  /** Largest APPEND literal, advertised as APPENDLIMIT (RFC 7889). */
  readonly maxLiteralSize: number;
  /** The store enforces a quota (RFC 9208): QUOTA and QUOTA=RES-STORAGE. */
  readonly hasQuota?: boolean;
  /** LITERAL+ (true, the default) or LITERAL- (false) (RFC 7888). */
  readonly literalPlus?: boolean;
  /** The store has object identity: OBJECTID (RFC 8474) and SAVEDATE (RFC 8514). */
  readonly hasObjectIds?: boolean;
  /** COMPRESS is already active: COMPRESS=DEFLATE is no longer offered (RFC 4978 §3). */
  readonly isCompressed?: boolean;
  /** SASL mechanisms available on this session, in order, from the registry (default: PLAIN and LOGIN). */
  readonly saslMechanisms?: readonly string[];
}

/**
 * The CAPABILITY list (RFC 3501 §7.2.1): a pure function of state, security and configuration.
 *
 * - STARTTLS (RFC 3501 §6.2.1) only before TLS and before login.
 * - Before TLS, when logins need TLS: LOGINDISABLED (RFC 3501 §6.2.3) and no `AUTH=` (RFC 3501 §6.2.2, RFC 8314 §5.1).
 * - `AUTH=` for each available SASL mechanism (PLAIN, LOGIN for Outlook and older clients, CRAM-MD5 when secrets
 *   are known, EXTERNAL with a validated client certificate) and SASL-IR (RFC 4959) only before login, where
 *   AUTHENTICATE is valid.
 * - LITERAL+ (RFC 7888 §4): non-synchronizing literals up to the APPEND limit; or, with `literalPlus: false`,
 *   LITERAL- (RFC 7888 §5): up to 4096 octets. Only one is advertised: LITERAL+ is the stronger promise.
 * - CONDSTORE and QRESYNC (RFC 7162, enabled with ENABLE or a CONDSTORE-enabling command), ESEARCH (RFC 4731),
 *   LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154; a
 *   CREATE may ask only for the use the name conventionally has, the store contract cannot record others yet), MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), BINARY (RFC 3516),
 *   SORT, SORT=DISPLAY, ESORT, THREAD (RFC 5256, 5957, 5267), CONTEXT=SEARCH (RFC 5267), PARTIAL (RFC 9394),
 *   NOTIFY (RFC 5465), UTF8=ACCEPT (RFC 6855), STATUS=SIZE (RFC 8438); QUOTA (RFC 9208) only with a quota.
 * - COMPRESS=DEFLATE (RFC 4978) after login, until it is active.
 * - OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) when the store offers `ObjectIdentity`.
 * - IMAP4rev2 (RFC 9051) beside IMAP4rev1: the session is IMAP4rev1 until `ENABLE IMAP4rev2` (§6.3.1). SEARCHRES
 *   (RFC 5182), which IMAP4rev2 includes.
 */
export function imapCapabilities(input: ImapCapabilityInput): string[] {
  const caps = ['IMAP4rev1', 'IMAP4rev2'];
  if (input.state === 'not-authenticated') {
    if (!input.isSecure) caps.push('STARTTLS');
    if (input.isSecure || input.allowInsecureAuth) caps.push(...(input.saslMechanisms ?? ['PLAIN', 'LOGIN']).map((m) => `AUTH=${m}`), 'SASL-IR');
    else caps.push('LOGINDISABLED');
  }
  caps.push(
    input.literalPlus === false ? 'LITERAL-' : 'LITERAL+',
    'ID',
    'ENABLE',
    'IDLE',
    'NAMESPACE',
    'UIDPLUS',
    'MOVE',
    'UNSELECT',
    'CHILDREN',
    'CONDSTORE',
    'QRESYNC',
    'ESEARCH',
    'SEARCHRES',
    'LIST-EXTENDED',
    'LIST-STATUS',
    'SPECIAL-USE',
    'CREATE-SPECIAL-USE',
    'MULTIAPPEND',
    'CATENATE',
    'BINARY',
    'SORT',
    'SORT=DISPLAY',
    'ESORT',
    'CONTEXT=SEARCH',
    'PARTIAL',
    'NOTIFY',
    'UTF8=ACCEPT',
    'THREAD=ORDEREDSUBJECT',
    'THREAD=REFERENCES',
    `APPENDLIMIT=${input.maxLiteralSize}`,
    'STATUS=SIZE',
    'PREVIEW',
  );
  if (input.hasQuota) caps.push('QUOTA', 'QUOTA=RES-STORAGE');
  if (input.hasObjectIds) caps.push('OBJECTID', 'SAVEDATE');
  if (input.state !== 'not-authenticated' && !input.isCompressed) caps.push('COMPRESS=DEFLATE');
  return caps;
}
