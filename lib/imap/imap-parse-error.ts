/**
 * How a command is refused ({@link ImapParseError} and its reason), and how much of a refused line's literal the
 * client may still be sending (RFC 7888 §4). Re-exported by `imap-parser.ts`.
 */

/** `syntax` → `BAD`; `too-big` → literal refused (`NO [TOOBIG]` for APPEND, else `BAD`); `limit` → `BAD`. */
export type ImapParseErrorReason = 'syntax' | 'too-big' | 'limit';

/**
 * A client error in a command. `message` is a fixed phrase safe to put on the wire. `tag` is set once the
 * tag was read (answer `tag BAD …`), else undefined (answer `* BAD …`).
 * `nonSyncLiteral` is set when the refused line announced a `{N+}` literal: the client sends those N octets
 * (and the rest of its command) without waiting, so the session must drop them before reading commands again,
 * or close the connection (RFC 7888 §4 allows BYE). It is `Infinity` when the announcement is malformed
 * (`{5 +}`) or beyond 32 bits: the octet count is unknown and only closing keeps the connection safe.
 */
export class ImapParseError extends Error {
  constructor(
    message: string,
    readonly tag: string | undefined,
    readonly reason: ImapParseErrorReason = 'syntax',
    readonly nonSyncLiteral?: number,
  ) {
    super(message);
    this.name = 'ImapParseError';
  }
}

/** A literal announced at the end of a line, as far as it can be read. See {@link announcedLiteral}. */
export interface AnnouncedLiteral {
  /** False for `{N+}` (RFC 7888): the client sends the octets without waiting for `+`. */
  readonly sync: boolean;
  /** The octet count; `Infinity` when malformed or beyond 2^32 - 1 (RFC 3501 §9 `number`). */
  readonly size: number;
}

/**
 * Reads a literal announcement (`{N}`, `{N+}`, `~{N}`, and malformed look-alikes such as `{5 +}`) at the end
 * of `line` (CRLF excluded), for a line that is refused rather than parsed. Anything between braces that holds a
 * `+` counts as non-synchronizing: a client that wrote it may be sending data now, so the caller must drop it or
 * close. Undefined when the line does not end in `}` after a `{`.
 */
export function announcedLiteral(line: Buffer): AnnouncedLiteral | undefined {
  if (line.length < 2 || line[line.length - 1] !== 0x7d) return undefined;
  const open = line.lastIndexOf(0x7b);
  if (open < 0) return undefined;
  const inner = line.subarray(open + 1, line.length - 1).toString('latin1');
  const m = /^(\d+)(\+?)$/.exec(inner);
  if (m) return { sync: m[2] === '', size: literalSize(m[1]) };
  return { sync: !inner.includes('+'), size: Number.POSITIVE_INFINITY };
}

/**
 * RFC 3501 §9 `number`: digits, leading zeros allowed, at most 2^32 - 1; larger counts are `Infinity`.
 * Exported for the assembler's literal heads (`imap-command-assembler.ts`); `imap-parser.ts` does not re-export it.
 */
export function literalSize(digits: string): number {
  const significant = digits.replace(/^0+(?=\d)/, '');
  return significant.length > 10 ? Number.POSITIVE_INFINITY : Number(significant);
}
