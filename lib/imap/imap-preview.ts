/**
 * PREVIEW (RFC 8970): a short plain-text preview of a message for a message list, made by the server. The text of
 * the first `text/plain` part that is not an attachment (else the first `text/html` one, markup removed), transfer
 * encoding and charset decoded, whitespace runs collapsed to one space, at most 256 characters (§3.3). A message
 * with no such text gets the empty string (§3.2: nothing meaningful to show). Fetching it never sets `\Seen`.
 */
import type { StoredMessage } from '../contracts/mail-store.js';
import { parseMime, type MimePart } from '../mime/mime-parse.js';
import { decodeCharset, decodeTransferEncoding } from './imap-decode.js';
import { readsInPart } from './imap-partial-read.js';
import { headerValue } from './imap-mime.js';
import { isAtomNamed, type ImapValue } from './imap-parser.js';

/** RFC 8970 §3.3: the most characters (not octets) a preview may have. */
export const PREVIEW_MAX_CHARS = 256;
/** Encoded octets of the chosen part read at most: enough for 256 characters of text under any encoding or markup. */
const PREVIEW_SOURCE_OCTETS = 64 * 1024;

/** The first leaf of `root` (depth first, embedded messages left out) that is `text/<subtype>` and not an attachment. */
function firstText(root: MimePart, subtype: string): MimePart | undefined {
  if (root.children.length > 0) {
    for (const child of root.children) {
      const found = firstText(child, subtype);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (root.type !== 'text' || root.subtype !== subtype) return undefined;
  const disposition = headerValue(root.fields, 'content-disposition')?.trim().toLowerCase();
  return disposition?.startsWith('attachment') ? undefined : root;
}

/** The named and numeric character references a preview is likely to meet; others are left as written. */
const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** HTML to text for a preview: no head, style, script or comments; tags become spaces; common references decoded. */
function htmlText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, ' ')
    .replace(/<(head|style|script|title)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, ' ')
    .replace(/<[^>]*>?/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all: string, ref: string) => {
      if (ref[0] !== '#') return ENTITIES[ref.toLowerCase()] ?? all;
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : all;
    });
}

/** Whitespace and control characters collapsed to single spaces, trimmed, cut to {@link PREVIEW_MAX_CHARS} code points. */
function previewOf(text: string): string {
  const flat = text.replace(/[\s\u0000-\u001f\u007f-\u009f\u200b\ufeff]+/g, ' ').trim();
  const chars = Array.from(flat);
  return chars.length <= PREVIEW_MAX_CHARS ? flat : chars.slice(0, PREVIEW_MAX_CHARS).join('').trimEnd();
}

/** The part a preview is made of: the first readable `text/plain` part, else the first `text/html` one. */
function previewPart(root: MimePart): MimePart | undefined {
  return firstText(root, 'plain') ?? firstText(root, 'html');
}

/** The preview of `part`, from octets of its message that reach at least {@link PREVIEW_SOURCE_OCTETS} into its body. */
function partPreview(raw: Buffer, part: MimePart): string {
  const body = raw.subarray(part.bodyStart, Math.min(part.end, part.bodyStart + PREVIEW_SOURCE_OCTETS));
  const decoded = decodeTransferEncoding(body, headerValue(part.fields, 'content-transfer-encoding'));
  if (decoded === undefined) return ''; // an unknown transfer encoding: nothing readable (RFC 8970 §3.2)
  const text = decodeCharset(decoded, part.contentType?.params.find(([k]) => k === 'charset')?.[1]);
  return previewOf(part.subtype === 'html' ? htmlText(text) : text);
}

/** The RFC 8970 preview of `raw` (see the module comment). */
export function messagePreview(raw: Buffer): string {
  const part = previewPart(parseMime(raw));
  return part === undefined ? '' : partPreview(raw, part);
}

/**
 * The preview of a stored message. A large one whose store keeps its structure and reads its start alone is read up to
 * {@link PREVIEW_SOURCE_OCTETS} into its text part: listing previews of messages that carry big attachments costs a
 * few KB each, not the messages.
 */
async function storedPreview(message: StoredMessage): Promise<string> {
  if (!readsInPart(message)) return messagePreview(await message.raw());
  const part = previewPart(await message.structure());
  if (part === undefined) return '';
  return partPreview(await message.readPrefix(Math.min(part.end, part.bodyStart + PREVIEW_SOURCE_OCTETS)), part);
}

/** Previews made so far, per stored message object (a client that lists a mailbox again asks again). */
const made = new WeakMap<object, string>();

/**
 * The preview of `message` (see the module comment), made once per message object: from `raw` when the caller has
 * read the message already, else from as little of it as the store allows.
 */
export async function cachedPreview(message: StoredMessage, raw?: Buffer): Promise<string> {
  let preview = made.get(message);
  if (preview === undefined) {
    preview = raw !== undefined ? messagePreview(raw) : await storedPreview(message);
    made.set(message, preview);
  }
  return preview;
}

/**
 * Whether `value` is a `PREVIEW` modifier list (RFC 8970 §4): `(LAZY)`, the only modifier, which lets a server answer
 * NIL when a preview is not at hand (Postern always makes it, so LAZY changes nothing). `other` for any other list.
 */
export function previewModifiers(value: ImapValue | undefined): 'none' | 'lazy' | 'other' {
  if (value?.type !== 'list') return 'none';
  return value.items.length > 0 && value.items.every((i) => isAtomNamed(i, 'LAZY')) ? 'lazy' : 'other';
}
