/**
 * The request side of FETCH (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 BINARY): the attribute list parsed once per
 * command into a {@link FetchRequest}. Re-exported by `imap-fetch.ts`, which builds the response items from it.
 */
import { valueText, type ImapValue } from './imap-parser.js';

/** Attributes without a section. */
export type SimpleFetchName =
  | 'FLAGS'
  | 'INTERNALDATE'
  | 'RFC822.SIZE'
  | 'ENVELOPE'
  | 'BODY'
  | 'BODYSTRUCTURE'
  | 'UID'
  | 'RFC822'
  | 'RFC822.HEADER'
  | 'RFC822.TEXT';

/** `HEADER`, `HEADER.FIELDS`, `HEADER.FIELDS.NOT`, `TEXT`, `MIME`, or `''` for the whole part. */
export type SectionSpecifier = '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

/** One requested attribute, normalized. */
export type FetchAttribute =
  | { readonly kind: 'simple'; readonly name: SimpleFetchName }
  | {
      readonly kind: 'section';
      /** BODY, BINARY (decoded, RFC 3516), or BINARY.SIZE. */
      readonly name: 'BODY' | 'BINARY' | 'BINARY.SIZE';
      readonly peek: boolean;
      /** Numeric part path (`1.2.3` → [1, 2, 3]), empty for the message. */
      readonly path: readonly number[];
      readonly specifier: SectionSpecifier;
      /** Upper-cased header names for HEADER.FIELDS[.NOT]. */
      readonly fields: readonly string[];
      readonly partial?: { readonly offset: number; readonly length: number };
    };

/** A parsed FETCH request. */
export interface FetchRequest {
  readonly attributes: readonly FetchAttribute[];
  /** Some attribute implicitly sets `\Seen` (BODY[…] without PEEK, RFC822, RFC822.TEXT, BINARY[…]). */
  readonly setsSeen: boolean;
  /** Message octets are needed (anything beyond FLAGS, INTERNALDATE, RFC822.SIZE, UID). */
  readonly needsContent: boolean;
}

/** A malformed attribute list; the session answers `BAD` with this fixed-phrase message. */
export class FetchAttributeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FetchAttributeError';
  }
}

const SIMPLE: readonly SimpleFetchName[] = [
  'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'UID', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT',
];
/** RFC 3501 §6.4.5 macros, valid only on their own. */
const MACROS: Readonly<Record<string, readonly SimpleFetchName[]>> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

function parseSection(value: Extract<ImapValue, { type: 'section' }>): FetchAttribute {
  const [head, list, ...rest] = value.section;
  const text = head === undefined ? '' : valueText(head);
  if (text === undefined || head?.type === 'quoted' || head?.type === 'literal') throw new FetchAttributeError('Invalid section');
  const m =
    /^(?:([1-9]\d*(?:\.[1-9]\d*)*)(?:\.(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?|(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT))?$/i.exec(
      text,
    );
  if (!m) throw new FetchAttributeError('Invalid section');
  const path = m[1] === undefined ? [] : m[1].split('.').map(Number);
  const specifier = ((m[2] ?? m[3])?.toUpperCase() ?? '') as SectionSpecifier;
  if (specifier === 'MIME' && path.length === 0) throw new FetchAttributeError('MIME needs a part number');
  const withFields = specifier === 'HEADER.FIELDS' || specifier === 'HEADER.FIELDS.NOT';
  let fields: string[] = [];
  if (withFields) {
    if (list?.type !== 'list' || list.items.length === 0 || rest.length > 0) throw new FetchAttributeError('Invalid header list');
    fields = list.items.map((item) => {
      const name = valueText(item);
      if (name === undefined || name === '' || !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
        throw new FetchAttributeError('Invalid header name');
      }
      return name.toUpperCase();
    });
  } else if (list !== undefined) {
    throw new FetchAttributeError('Invalid section');
  }
  const isBinary = value.name.startsWith('BINARY');
  if (isBinary && specifier !== '') throw new FetchAttributeError('BINARY takes a part number only');
  if (value.name === 'BINARY.SIZE' && value.partial) throw new FetchAttributeError('BINARY.SIZE takes no partial');
  const name = value.name === 'BINARY.SIZE' ? 'BINARY.SIZE' : isBinary ? 'BINARY' : 'BODY';
  const peek = value.name.endsWith('.PEEK') || name === 'BINARY.SIZE';
  return value.partial
    ? { kind: 'section', name, peek, path, specifier, fields, partial: value.partial }
    : { kind: 'section', name, peek, path, specifier, fields };
}

function parseOne(value: ImapValue): FetchAttribute {
  if (value.type === 'section') return parseSection(value);
  if (value.type !== 'atom') throw new FetchAttributeError('Invalid fetch attribute');
  const name = value.value.toUpperCase();
  const simple = SIMPLE.find((n) => n === name);
  if (!simple) throw new FetchAttributeError('Unknown fetch attribute');
  return { kind: 'simple', name: simple };
}

/**
 * Parses the fetch-att argument: a macro atom, one attribute, or a parenthesized list (RFC 3501 §6.4.5).
 * With `uid` (UID FETCH), `UID` is added first when absent (RFC 3501 §6.4.8). Throws {@link FetchAttributeError}.
 */
export function parseFetchAttributes(arg: ImapValue | undefined, options: { uid?: boolean } = {}): FetchRequest {
  if (arg === undefined) throw new FetchAttributeError('Missing fetch attributes');
  let attributes: FetchAttribute[];
  const macro = arg.type === 'atom' ? MACROS[arg.value.toUpperCase()] : undefined;
  if (macro) attributes = macro.map((name) => ({ kind: 'simple', name }));
  else if (arg.type === 'list') {
    if (arg.items.length === 0) throw new FetchAttributeError('Empty fetch attribute list');
    attributes = arg.items.map(parseOne);
  } else attributes = [parseOne(arg)];
  if (options.uid && !attributes.some((a) => a.kind === 'simple' && a.name === 'UID')) {
    attributes.unshift({ kind: 'simple', name: 'UID' });
  }
  const setsSeen = attributes.some(
    (a) => (a.kind === 'section' && !a.peek) || (a.kind === 'simple' && (a.name === 'RFC822' || a.name === 'RFC822.TEXT')),
  );
  return { attributes, setsSeen, needsContent: needsContent(attributes) };
}

/** Attributes answered from the store's metadata alone (everything else needs the message or its structure). */
const METADATA_ATTRIBUTES: ReadonlySet<string> = new Set(['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'UID']);

/** True when one of `attributes` needs the message's octets or its MIME structure ({@link FetchRequest.needsContent}). */
export function needsContent(attributes: readonly FetchAttribute[]): boolean {
  return attributes.some((a) => a.kind === 'section' || !METADATA_ATTRIBUTES.has(a.name));
}
