/**
 * What the IMAP parser produces (RFC 3501 §9 / RFC 9051 §9 values): one type per kind of argument, the parsed
 * command, and the helpers command handlers read arguments with. Re-exported by `imap-parser.ts`.
 */

/** An atom that is neither NIL, a number nor a sequence set (`INBOX`, `\Seen`, `BODYSTRUCTURE`, `1-Feb-1994`). */
export interface ImapAtom {
  readonly type: 'atom';
  readonly value: string;
}
/** `number` / `number64` (RFC 9051 §9). Digit runs beyond 2^53 stay atoms. */
export interface ImapNumber {
  readonly type: 'number';
  readonly value: number;
}
/** An atom made of digits, `*`, `$`, `:` and `,` that is not a plain number (`1:*`, `2,4:6`, `*`, `$`). */
export interface ImapSequence {
  readonly type: 'sequence';
  readonly value: string;
}
/** A quoted string, unescaped. 8-bit content must be valid UTF-8 (RFC 9051 §4.3, RFC 6855). */
export interface ImapQuoted {
  readonly type: 'quoted';
  readonly value: string;
}
/** A literal's octets. `binary` for RFC 3516 `~{N}`; `sync` false for RFC 7888 `{N+}`. */
export interface ImapLiteral {
  readonly type: 'literal';
  readonly value: Buffer;
  readonly sync: boolean;
  readonly binary: boolean;
}
/** The atom NIL (any case). */
export interface ImapNil {
  readonly type: 'nil';
}
/** A parenthesized list. */
export interface ImapList {
  readonly type: 'list';
  readonly items: readonly ImapValue[];
}
/**
 * A FETCH attribute with a section (RFC 3501 §6.4.5): `BODY[…]`, `BODY.PEEK[…]`, `BINARY[…]`,
 * `BINARY.PEEK[…]`, `BINARY.SIZE[…]`. `section` holds the tokens between the brackets
 * (`HEADER.FIELDS (FROM TO)` → atom + list); `partial` is `<offset.length>`. Only parsed in FETCH/UID FETCH.
 */
export interface ImapSection {
  readonly type: 'section';
  readonly name: SectionAttName;
  readonly section: readonly ImapValue[];
  readonly partial?: { readonly offset: number; readonly length: number };
}
/** Names that may carry a `[section]`. */
export type SectionAttName = 'BODY' | 'BODY.PEEK' | 'BINARY' | 'BINARY.PEEK' | 'BINARY.SIZE';

/** One parsed argument. */
export type ImapValue = ImapAtom | ImapNumber | ImapSequence | ImapQuoted | ImapLiteral | ImapNil | ImapList | ImapSection;

/** A complete command. `command` is upper-cased; `UID x` is joined into one word pair (`UID FETCH`). */
export interface ImapCommand {
  readonly tag: string;
  readonly command: string;
  readonly args: readonly ImapValue[];
}

/**
 * The text of an `astring`/`string` argument (atom, number, sequence, quoted, literal as UTF-8), or undefined for
 * lists and sections. Use for mailbox names, user names, header names, search strings. The atom NIL is the
 * string `NIL` here: RFC 3501 §9 `astring` includes every atom, so `SEARCH SUBJECT NIL` searches for "NIL";
 * callers where the grammar has `nil` (ID, APPEND's date) check `type === 'nil'` first.
 */
export function valueText(value: ImapValue | undefined): string | undefined {
  switch (value?.type) {
    case 'atom':
    case 'quoted':
    case 'sequence':
      return value.value;
    case 'number':
      return String(value.value);
    case 'nil':
      return 'NIL';
    case 'literal':
      return value.value.toString('utf8');
    default:
      return undefined;
  }
}

/** The octets of a string argument (literal octets as-is, others UTF-8), or undefined. */
export function valueBytes(value: ImapValue | undefined): Buffer | undefined {
  if (value?.type === 'literal') return value.value;
  const text = valueText(value);
  return text === undefined ? undefined : Buffer.from(text, 'utf8');
}

/** True when `value` is an atom equal to `name` ignoring case. */
export function isAtomNamed(value: ImapValue | undefined, name: string): boolean {
  return value?.type === 'atom' && value.value.toUpperCase() === name.toUpperCase();
}
