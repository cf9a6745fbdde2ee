/**
 * FETCH attributes (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 BINARY): parsing the request and building the
 * data items of one `* n FETCH (…)` response.
 *
 * Usage by the session: `const req = parseFetchAttributes(args[1], { uid })` once per command; for each message,
 * if `req.setsSeen` and the mailbox is read-write, add `\Seen` first; then
 * `serializeImap(await buildFetchItems(msg, req, { flags }))` after `* n FETCH `.
 *
 * The request types and `parseFetchAttributes` live in `imap-fetch-attributes.ts` and are re-exported here.
 */
import { hasCachedStructure, type StoredMessage } from '../contracts/mail-store.js';
import { buildBodyStructure } from './imap-bodystructure.js';
import { decodeTransferEncoding } from './imap-decode.js';
import { buildEnvelope } from './imap-envelope.js';
import type { FetchAttribute, FetchRequest } from './imap-fetch-attributes.js';
import { atom, formatInternalDate, literal, preserialized, type ImapResponseValue, type ImapWireOut } from './imap-format.js';
import { findPart, headerValue, parseHeader, parseMime, type HeaderField, type MimePart } from './imap-mime.js';
import { endsBeforeMessageEnd, octetsNeeded, readsInPart } from './imap-partial-read.js';
import { cachedPreview } from './imap-preview.js';

export { FetchAttributeError, needsContent, parseFetchAttributes } from './imap-fetch-attributes.js';
export type { FetchAttribute, FetchRequest, SectionSpecifier, SimpleFetchName } from './imap-fetch-attributes.js';

/** Options for {@link buildFetchItems}. */
export interface FetchBuildOptions {
  /** Flags to report (session view: after an implicit `\Seen`, plus `\Recent`). Defaults to `message.flags`. */
  readonly flags?: Iterable<string>;
  /** Add FLAGS even if not requested: RFC 3501 §6.4.5 wants it when this FETCH set `\Seen`. */
  readonly includeFlags?: boolean;
  /**
   * Add PREVIEW (RFC 8970) after the other items, made from the message already read for them when there is one (a
   * `FETCH 1:* (BODY[] PREVIEW)` reads each message once).
   */
  readonly preview?: boolean;
}

/** Section text for the response name: `1.2.HEADER.FIELDS (FROM TO)`. */
function sectionName(a: Extract<FetchAttribute, { kind: 'section' }>): string {
  const parts = [...a.path.map(String), ...(a.specifier ? [a.specifier] : [])].join('.');
  const fields = a.fields.length > 0 ? ` (${a.fields.join(' ')})` : '';
  const origin = a.partial ? `<${a.partial.offset}>` : '';
  return `${a.name}[${parts}${fields}]${origin}`;
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

/**
 * The octets of a section, or undefined when the part or the message it names does not exist. `pruned`: `root` is a
 * store's cached structure, whose header fields are only some of them (`STRUCTURE_FIELDS`): HEADER.FIELDS then
 * parses the header from `raw`.
 */
export function extractSection(raw: Buffer, root: MimePart, a: Extract<FetchAttribute, { kind: 'section' }>, pruned = false): Buffer | undefined {
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
      return selectFields(raw, pruned ? parseHeader(raw, message.start, message.bodyStart).fields : message.fields, a.fields, a.specifier === 'HEADER.FIELDS.NOT');
  }
}

/** Thrown for BINARY on a part whose encoding is unknown: answer `NO [UNKNOWN-CTE]` (RFC 3516 §4.3). */
export class UnknownTransferEncodingError extends Error {
  constructor() {
    super('Unknown Content-Transfer-Encoding');
    this.name = 'UnknownTransferEncodingError';
  }
}

function sectionValue(raw: Buffer, mime: () => MimePart, a: Extract<FetchAttribute, { kind: 'section' }>, pruned: boolean): ImapResponseValue {
  // The whole message (BODY[], BINARY[]) needs no MIME parse.
  const whole = a.path.length === 0 && a.specifier === '';
  let data = whole ? raw : extractSection(raw, mime(), a, pruned);
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
  // Headers and parts of a large message (a message list, a text beside an attachment): the message is read up to
  // the end of the last octet asked for, as the cached structure places it (imap-partial-read.ts).
  const partly = readsInPart(message) ? message : undefined;
  const inPart = partly !== undefined && request.needsContent && !structureOnly && request.attributes.every(endsBeforeMessageEnd);
  const cached = request.needsContent && (structureOnly || inPart) && hasCachedStructure(message) ? await message.structure() : undefined;
  // Whether the whole message is read for these items; PREVIEW then makes its text from the same copy.
  const reads = request.needsContent && cached === undefined;
  const upTo = inPart && cached ? Math.max(0, ...request.attributes.map((a) => octetsNeeded(a, cached))) : 0;
  const raw = reads ? await message.raw() : inPart && upTo > 0 ? await partly.readPrefix(upTo) : Buffer.alloc(0);
  let tree: MimePart | undefined = cached;
  const mime = (): MimePart => (tree ??= parseMime(raw));
  const flags = [...(options.flags ?? message.flags)].map(atom);
  const out: ImapResponseValue[] = [];
  let hasFlags = false;
  for (const a of request.attributes) {
    if (a.kind === 'section') {
      out.push(atom(sectionName(a)), sectionValue(raw, mime, a, inPart));
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
  if (options.preview) out.push(atom('PREVIEW'), await cachedPreview(message, reads ? raw : undefined));
  return out;
}
