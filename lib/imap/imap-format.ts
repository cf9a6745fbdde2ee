/**
 * Serialization of IMAP response data (RFC 3501 §4, RFC 9051 §4) and mailbox-name encoding.
 *
 * Response data is built as a small value tree ({@link ImapResponseValue}) by the FETCH/SEARCH helpers and
 * the session, then turned into wire octets once with {@link serializeImap}. Strings choose quoted or literal
 * form automatically, so callers never hand-escape.
 */

/** An atom written verbatim (flag names, `BODY[1]<0>`, `UID`). The caller guarantees it is a valid atom. */
export interface ImapAtomOut {
  readonly atom: string;
}

/** A string that must be sent as a literal `{n}\r\n…` (body sections, RFC822.*), or `~{n}` when `binary`. */
export interface ImapLiteralOut {
  readonly literal: Buffer | string;
  /** RFC 3516 literal8 (`~{n}`), for BINARY[] data that may contain NUL. */
  readonly binary?: boolean;
}

/**
 * Values written back to back without separating spaces. RFC 3501 §9 needs this inside lists whose grammar has
 * no SP between elements: `body-type-mpart = 1*body SP media-subtype` and `env-from = "(" 1*address ")"`,
 * which Dovecot and Cyrus write as `((…)(…) "mixed")` and `((…)(…))`.
 */
export interface ImapConcatOut {
  readonly concat: readonly ImapResponseValue[];
}

/**
 * Response data serialized beforehand (latin1: one char per octet), written as it is; made by {@link preserialized}
 * for data a caller caches (a message's ENVELOPE).
 */
export interface ImapWireOut {
  readonly wire: string;
}

/**
 * Response data: `null` → NIL, number → number, string/Buffer → quoted string or literal,
 * array → parenthesized list, {@link ImapAtomOut} → atom, {@link ImapLiteralOut} → forced literal,
 * {@link ImapConcatOut} → items without spaces.
 */
export type ImapResponseValue =
  | null
  | number
  | string
  | Buffer
  | ImapAtomOut
  | ImapLiteralOut
  | ImapConcatOut
  | ImapWireOut
  | readonly ImapResponseValue[];

/** Options for {@link serializeImap}. */
export interface SerializeOptions {
  /**
   * The client enabled UTF8=ACCEPT (RFC 6855 §3) or the session is IMAP4rev2 (RFC 9051 §4.3): 8-bit UTF-8 may
   * appear inside quoted strings. Otherwise any octet ≥ 0x80 forces a literal (RFC 3501 §4.3).
   */
  readonly utf8?: boolean;
}

/** Builds an {@link ImapAtomOut}. */
export function atom(text: string): ImapAtomOut {
  return { atom: text };
}

/** Builds an {@link ImapLiteralOut}. */
export function literal(data: Buffer | string, binary = false): ImapLiteralOut {
  return binary ? { literal: data, binary: true } : { literal: data };
}

/** Builds an {@link ImapConcatOut}. */
export function concat(items: readonly ImapResponseValue[]): ImapConcatOut {
  return { concat: items };
}

/** Quoted strings longer than this are sent as literals; keeps response lines short (no RFC limit, Dovecot-like). */
const MAX_QUOTED_LENGTH = 1024;

/** Serializes `value` once (default options: 8-bit text goes in literals, valid for every session). */
export function preserialized(value: ImapResponseValue): ImapWireOut {
  return { wire: serializeImap(value).toString('latin1') };
}

function isWireOut(v: ImapResponseValue): v is ImapWireOut {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && 'wire' in v;
}

function isAtomOut(v: ImapResponseValue): v is ImapAtomOut {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && 'atom' in v;
}

function isLiteralOut(v: ImapResponseValue): v is ImapLiteralOut {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && 'literal' in v;
}

function isConcatOut(v: ImapResponseValue): v is ImapConcatOut {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && 'concat' in v;
}

/** True when `bytes` can be a quoted string (RFC 3501 §9 `QUOTED-CHAR`; RFC 9051 adds UTF-8). */
function canQuote(bytes: Buffer, utf8: boolean): boolean {
  if (bytes.length > MAX_QUOTED_LENGTH) return false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x00 || b === 0x0d || b === 0x0a) return false;
    if (b >= 0x80 && !utf8) return false;
  }
  return !utf8 || isValidUtf8(bytes);
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** True when the octets are well-formed UTF-8. */
export function isValidUtf8(bytes: Buffer): boolean {
  try {
    fatalUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Strings that can be quoted as they are: ASCII without NUL, CR, LF (RFC 3501 §9 `QUOTED-CHAR`). */
const QUOTABLE_ASCII = /^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/;
/** Characters escaped inside a quoted string. */
const QUOTE_SPECIALS = /["\\]/g;
const NON_ASCII = /[^\x00-\x7f]/;

function quotedText(latin1: string): string {
  return `"${latin1.includes('"') || latin1.includes('\\') ? latin1.replace(QUOTE_SPECIALS, '\\$&') : latin1}"`;
}

/**
 * Accumulates serialized response data for one or many responses: the text as a latin1 string (one char per octet,
 * so few small allocations) and literal payloads as the caller's Buffers, not copied. The FETCH loop writes many
 * responses into one builder and hands {@link take}'s chunks to the session.
 */
export class ImapWireBuilder {
  private text = '';
  private parts: Buffer[] = [];
  private partOctets = 0;

  constructor(private readonly options: SerializeOptions = {}) {}

  /** Octets accumulated since the last {@link take}. */
  get size(): number {
    return this.partOctets + this.text.length;
  }

  /** Appends ASCII text as it is (`* 3 FETCH `, `\r\n`). */
  ascii(text: string): this {
    this.text += text;
    return this;
  }

  /** Appends one serialized value (see {@link serializeImap}). */
  value(value: ImapResponseValue): this {
    this.write(value);
    return this;
  }

  /** Appends values separated by single spaces (see {@link serializeImapItems}). */
  items(values: readonly ImapResponseValue[]): this {
    for (let i = 0; i < values.length; i++) {
      if (i > 0) this.text += ' ';
      this.write(values[i]!);
    }
    return this;
  }

  /** Appends a literal header and payload (RFC 3501 §4.3; `~{n}` is RFC 3516 literal8); the payload is not copied. */
  literal(data: Buffer, binary = false): this {
    this.text += `${binary ? '~' : ''}{${data.length}}\r\n`;
    this.pushBytes(data);
    return this;
  }

  /** Takes what was accumulated as wire chunks, in order, and empties the builder. */
  take(): Buffer[] {
    this.endText();
    const parts = this.parts;
    this.parts = [];
    this.partOctets = 0;
    return parts;
  }

  /** Takes what was accumulated as one Buffer. */
  toBuffer(): Buffer {
    if (this.parts.length === 0) {
      const out = Buffer.from(this.text, 'latin1');
      this.text = '';
      return out;
    }
    const parts = this.take();
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private endText(): void {
    if (this.text.length === 0) return;
    const bytes = Buffer.from(this.text, 'latin1');
    this.text = '';
    this.parts.push(bytes);
    this.partOctets += bytes.length;
  }

  private pushBytes(data: Buffer): void {
    this.endText();
    this.parts.push(data);
    this.partOctets += data.length;
  }

  private string(value: string): void {
    if (value.length <= MAX_QUOTED_LENGTH && QUOTABLE_ASCII.test(value)) this.text += quotedText(value);
    else this.bytes(Buffer.from(value, 'utf8'));
  }

  private bytes(value: Buffer): void {
    if (canQuote(value, this.options.utf8 === true)) this.text += quotedText(value.toString('latin1'));
    else this.literal(value);
  }

  private write(value: ImapResponseValue): void {
    if (value === null) {
      this.text += 'NIL';
    } else if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not an IMAP number: ${value}`);
      this.text += String(value);
    } else if (typeof value === 'string') {
      this.string(value);
    } else if (Buffer.isBuffer(value)) {
      this.bytes(value);
    } else if (Array.isArray(value)) {
      this.text += '(';
      this.items(value as readonly ImapResponseValue[]);
      this.text += ')';
    } else if (isAtomOut(value)) {
      this.text += NON_ASCII.test(value.atom) ? Buffer.from(value.atom, 'utf8').toString('latin1') : value.atom;
    } else if (isConcatOut(value)) {
      for (const item of value.concat) this.write(item);
    } else if (isWireOut(value)) {
      this.text += value.wire;
    } else if (isLiteralOut(value)) {
      this.literal(typeof value.literal === 'string' ? Buffer.from(value.literal, 'utf8') : value.literal, value.binary === true);
    }
  }
}

/** Serializes one string-ish value as quoted string or literal (RFC 3501 §4.3). */
export function serializeString(value: string | Buffer, options: SerializeOptions = {}): Buffer {
  return new ImapWireBuilder(options).value(value).toBuffer();
}

/**
 * Serializes a value tree to wire octets (no trailing CRLF). Top-level arrays get their parentheses, so
 * `serializeImap([atom('UID'), 7])` is `(UID 7)`; use {@link serializeImapItems} for a bare space-separated run.
 * Throws RangeError for a negative or non-integer number (a caller bug).
 */
export function serializeImap(value: ImapResponseValue, options: SerializeOptions = {}): Buffer {
  return new ImapWireBuilder(options).value(value).toBuffer();
}

/** Serializes values separated by single spaces, without surrounding parentheses (`* SEARCH 1 2 3`). */
export function serializeImapItems(values: readonly ImapResponseValue[], options: SerializeOptions = {}): Buffer {
  return new ImapWireBuilder(options).items(values).toBuffer();
}

/** Formats a date as RFC 3501 `date-time` (`"17-Jul-1996 02:44:25 -0700"`, §9), in UTC (`+0000`). */
export function formatInternalDate(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const day = String(date.getUTCDate()).padStart(2, ' ');
  return `${day}-${MONTHS[date.getUTCMonth()]}-${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(
    date.getUTCMinutes(),
  )}:${pad(date.getUTCSeconds())} +0000`;
}

/** Month names used by IMAP dates (RFC 3501 §9 `date-month`). */
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/**
 * Parses RFC 3501 `date-time` (APPEND internal date: `"d-Mon-yyyy hh:mm:ss +zzzz"`, day may be space-padded).
 * Returns undefined when malformed.
 */
export function parseInternalDate(text: string): Date | undefined {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.findIndex((name) => name.toLowerCase() === m[2].toLowerCase());
  if (month < 0) return undefined;
  const [day, year, hh, mm, ss, zh, zm] = [m[1], m[3], m[4], m[5], m[6], m[8], m[9]].map(Number);
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zm > 59) return undefined;
  const offset = (m[7] === '-' ? -1 : 1) * (zh * 60 + zm);
  const utc = Date.UTC(year, month, day, hh, mm, Math.min(ss, 59)) - offset * 60_000;
  const date = new Date(utc);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
