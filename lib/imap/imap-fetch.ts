/**
 * FETCH attributes (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 BINARY): parsing the request and building the
 * data items of one `* n FETCH (…)` response.
 *
 * Usage by the session: `const req = parseFetchAttributes(args[1], { uid })` once per command; for each message,
 * if `req.setsSeen` and the mailbox is read-write, add `\Seen` first; then
 * `serializeImap(await buildFetchItems(msg, req, { flags }))` after `* n FETCH `.
 */
import { hasCachedStructure, type StoredMessage } from '../contracts/mail-store.js';
import { buildBodyStructure } from './imap-bodystructure.js';
import { decodeTransferEncoding } from './imap-decode.js';
import { buildEnvelope } from './imap-envelope.js';
import { atom, formatInternalDate, literal, preserialized, type ImapResponseValue, type ImapWireOut } from './imap-format.js';
import { headerValue, parseHeader, parseMime, type HeaderField, type MimePart } from './imap-mime.js';
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

/** Options for {@link buildFetchItems}. */
export interface FetchBuildOptions {
  /** Flags to report (session view: after an implicit `\Seen`, plus `\Recent`). Defaults to `message.flags`. */
  readonly flags?: Iterable<string>;
  /** Add FLAGS even if not requested: RFC 3501 §6.4.5 wants it when this FETCH set `\Seen`. */
  readonly includeFlags?: boolean;
}

/** Section text for the response name: `1.2.HEADER.FIELDS (FROM TO)`. */
function sectionName(a: Extract<FetchAttribute, { kind: 'section' }>): string {
  const parts = [...a.path.map(String), ...(a.specifier ? [a.specifier] : [])].join('.');
  const fields = a.fields.length > 0 ? ` (${a.fields.join(' ')})` : '';
  const origin = a.partial ? `<${a.partial.offset}>` : '';
  return `${a.name}[${parts}${fields}]${origin}`;
}

/** Finds the part for a numeric path (RFC 3501 §6.4.5 part numbering); undefined when it does not exist. */
export function findPart(root: MimePart, path: readonly number[]): MimePart | undefined {
  let cur = root;
  let atMessage = true;
  for (const n of path) {
    if (!atMessage && cur.message) {
      cur = cur.message;
      atMessage = true;
    }
    if (cur.children.length > 0) {
      const child = cur.children[n - 1];
      if (!child) return undefined;
      cur = child;
    } else if (!(atMessage && n === 1)) {
      return undefined;
    }
    atMessage = false;
  }
  return cur;
}

function selectFields(raw: Buffer, fields: readonly HeaderField[], names: readonly string[], not: boolean): Buffer {
  const wanted = new Set(names);
  const chunks: Buffer[] = [];
  for (const f of fields) {
    if (wanted.has(f.name.toUpperCase()) === not) continue;
    const bytes = raw.subarray(f.start, f.end);
    chunks.push(bytes);
    if (bytes[bytes.length - 1] !== 0x0a) chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from('\r\n'));
  return Buffer.concat(chunks);
}

/** The octets of a section, or undefined when the part or the message it names does not exist. */
export function extractSection(raw: Buffer, root: MimePart, a: Extract<FetchAttribute, { kind: 'section' }>): Buffer | undefined {
  const part = findPart(root, a.path);
  if (!part) return undefined;
  if (a.specifier === '' && a.path.length === 0) return raw;
  if (a.specifier === '' || a.specifier === 'MIME') {
    return a.specifier === 'MIME' ? raw.subarray(part.start, part.bodyStart) : raw.subarray(part.bodyStart, part.end);
  }
  const message = a.path.length === 0 ? root : part.message;
  if (!message) return undefined;
  switch (a.specifier) {
    case 'HEADER':
      return raw.subarray(message.start, message.bodyStart);
    case 'TEXT':
      return raw.subarray(message.bodyStart, message.end);
    default:
      return selectFields(raw, message.fields, a.fields, a.specifier === 'HEADER.FIELDS.NOT');
  }
}

/** Thrown for BINARY on a part whose encoding is unknown: answer `NO [UNKNOWN-CTE]` (RFC 3516 §4.3). */
export class UnknownTransferEncodingError extends Error {
  constructor() {
    super('Unknown Content-Transfer-Encoding');
    this.name = 'UnknownTransferEncodingError';
  }
}

function sectionValue(raw: Buffer, mime: () => MimePart, a: Extract<FetchAttribute, { kind: 'section' }>): ImapResponseValue {
  // The whole message (BODY[], BINARY[]) needs no MIME parse.
  const whole = a.path.length === 0 && a.specifier === '';
  let data = whole ? raw : extractSection(raw, mime(), a);
  if (data === undefined) return null;
  if (a.name !== 'BODY' && !whole) {
    const part = findPart(mime(), a.path);
    if (part && a.path.length > 0 && part.children.length === 0 && !part.message) {
      data = decodeTransferEncoding(data, headerValue(part.fields, 'content-transfer-encoding'));
      if (data === undefined) throw new UnknownTransferEncodingError();
    }
  }
  if (a.name === 'BINARY.SIZE') return data.length; // also for the whole message, BINARY.SIZE[] (RFC 3516 §4.2)
  if (a.partial) {
    const start = Math.min(a.partial.offset, data.length);
    data = data.subarray(start, Math.min(data.length, start + a.partial.length));
  }
  if (data.length === 0) return '';
  return literal(data, a.name === 'BINARY' && data.includes(0));
}

/**
 * ENVELOPEs already serialized, per structure object a store keeps cached (like Dovecot's cached ENVELOPE): a
 * repeated `FETCH 1:* ENVELOPE` then costs no header parsing. Entries go with the store's cached structure.
 */
const envelopes = new WeakMap<MimePart, ImapWireOut>();
/** BODY and BODYSTRUCTURE serialized beforehand, the same way. */
const bodies = new WeakMap<MimePart, ImapWireOut>();
const bodyStructures = new WeakMap<MimePart, ImapWireOut>();

function memo(map: WeakMap<MimePart, ImapWireOut>, structure: MimePart, build: () => ImapResponseValue): ImapWireOut {
  let wire = map.get(structure);
  if (wire === undefined) {
    wire = preserialized(build());
    map.set(structure, wire);
  }
  return wire;
}

/**
 * Builds the data items of one FETCH response in request order: `[atom('UID'), 7, atom('FLAGS'), [...], …]`.
 * Serialize it as a list after `* <seq> FETCH `. Loads `message.raw()` at most once, and only when needed.
 * Throws {@link UnknownTransferEncodingError} for BINARY on an unknown encoding.
 */
export async function buildFetchItems(
  message: StoredMessage,
  request: FetchRequest,
  options: FetchBuildOptions = {},
): Promise<ImapResponseValue[]> {
  // ENVELOPE, BODY and BODYSTRUCTURE alone can come from the store's cached structure: no message file is read.
  const structureOnly = request.attributes.every((a) => a.kind === 'simple' && !['RFC822', 'RFC822.HEADER', 'RFC822.TEXT'].includes(a.name));
  const cached = request.needsContent && structureOnly && hasCachedStructure(message) ? await message.structure() : undefined;
  const raw = request.needsContent && cached === undefined ? await message.raw() : Buffer.alloc(0);
  let tree: MimePart | undefined = cached;
  const mime = (): MimePart => (tree ??= parseMime(raw));
  const flags = [...(options.flags ?? message.flags)].map(atom);
  const out: ImapResponseValue[] = [];
  let hasFlags = false;
  for (const a of request.attributes) {
    if (a.kind === 'section') {
      out.push(atom(sectionName(a)), sectionValue(raw, mime, a));
      continue;
    }
    out.push(atom(a.name));
    switch (a.name) {
      case 'FLAGS':
        hasFlags = true;
        out.push(flags);
        break;
      case 'UID':
        out.push(message.uid);
        break;
      case 'INTERNALDATE':
        out.push(formatInternalDate(message.internalDate));
        break;
      case 'RFC822.SIZE':
        out.push(message.size);
        break;
      case 'ENVELOPE':
        out.push(
          cached
            ? memo(envelopes, cached, () => buildEnvelope(cached.fields))
            : buildEnvelope(tree ? tree.fields : parseHeader(raw, 0, raw.length).fields),
        );
        break;
      case 'BODY':
      case 'BODYSTRUCTURE':
        if (cached) {
          const extended = a.name === 'BODYSTRUCTURE';
          out.push(memo(extended ? bodyStructures : bodies, cached, () => buildBodyStructure(cached, extended)));
        } else out.push(buildBodyStructure(mime(), a.name === 'BODYSTRUCTURE'));
        break;
      case 'RFC822':
        out.push(literal(raw));
        break;
      case 'RFC822.HEADER':
        out.push(literal(raw.subarray(0, mime().bodyStart)));
        break;
      case 'RFC822.TEXT':
        out.push(literal(raw.subarray(mime().bodyStart)));
        break;
    }
  }
  if (options.includeFlags && !hasFlags) out.push(atom('FLAGS'), flags);
  return out;
}
