import { ReplyError } from '../protocol/reply-error.js';

/**
 * Response codes this server sends inside `[…]` (RFC 3501 §7.1, RFC 5530, RFC 4315, RFC 7889):
 * refusal codes of RFC 5530 plus `TRYCREATE`, `READ-ONLY`/`READ-WRITE` and `TOOBIG`.
 */
export type ImapResponseCode =
  | 'ALERT'
  | 'AUTHENTICATIONFAILED'
  | 'PRIVACYREQUIRED'
  | 'UNAVAILABLE'
  | 'NONEXISTENT'
  | 'ALREADYEXISTS'
  | 'CANNOT'
  /** RFC 5530 §3: the user may not use this mailbox this way (the usual `onMailbox` refusal). */
  | 'NOPERM'
  | 'INUSE'
  | 'TRYCREATE'
  | 'SERVERBUG'
  | 'CLIENTBUG'
  | 'OVERQUOTA'
  | 'LIMIT'
  | 'TOOBIG'
  | 'EXPUNGEISSUED'
  | 'BADCHARSET (UTF-8 US-ASCII)'
  | 'UNKNOWN-CTE'
  /** RFC 4978 §3: COMPRESS while compression is active. */
  | 'COMPRESSIONACTIVE'
  /** RFC 6154 §6: CREATE with a special use the server cannot give. */
  | 'USEATTR'
  /** RFC 4469 §6: a CATENATE URL that cannot be resolved, with the URL. */
  | `BADURL ${string}`
  /** RFC 7162 §3.1.3: messages a conditional STORE left alone. */
  | `MODIFIED ${string}`;

/**
 * An IMAP refusal thrown by handlers: `dispatch()` sends it as `tag NO [code] text` (or `tag BAD …`) with the
 * session state unchanged. `BAD` ones count against the error budget (they are client errors), `NO` ones do not.
 */
export class ImapError extends ReplyError {
  override name = 'ImapError';
  /**
   * @param status `NO` (refused: RFC 3501 §7.1.2) or `BAD` (protocol error: §7.1.3).
   * @param code optional response code.
   * @param text fixed, safe text (never raw client data).
   */
  constructor(
    readonly status: 'NO' | 'BAD',
    readonly code: ImapResponseCode | undefined,
    text: string,
  ) {
    super(text);
  }
}

/** `tag status [code] text` with CRLF. */
export function taggedLine(tag: string, status: 'OK' | 'NO' | 'BAD', code: string | undefined, text: string): string {
  return `${tag} ${status} ${code ? `[${code}] ` : ''}${text}\r\n`;
}

/** `* status [code] text` with CRLF. */
export function untaggedLine(status: 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH', code: string | undefined, text: string): string {
  return `* ${status} ${code ? `[${code}] ` : ''}${text}\r\n`;
}
