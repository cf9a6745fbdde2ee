import type { MimePart } from './mime-parse.js';

/**
 * Header fields an IMAP server needs to build ENVELOPE (RFC 3501 §7.4.2: date, subject, from, sender, reply-to, to,
 * cc, bcc, in-reply-to, message-id) and BODY/BODYSTRUCTURE (the Content-* fields of every part), lower-case.
 * A cached structure keeps only these, so that it stays small next to the message.
 */
export const STRUCTURE_FIELDS: ReadonlySet<string> = new Set([
  'date',
  'subject',
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'in-reply-to',
  'message-id',
  'content-type',
  'content-id',
  'content-description',
  'content-transfer-encoding',
  'content-md5',
  'content-disposition',
  'content-language',
  'content-location',
]);

/**
 * A copy of a MIME tree with only the {@link STRUCTURE_FIELDS} kept at every level (offsets and line counts stay),
 * plain JSON that a store may persist and give back through `CachedStructure.structure()`.
 */
export function pruneStructure(part: MimePart): MimePart {
  return {
    start: part.start,
    bodyStart: part.bodyStart,
    end: part.end,
    fields: part.fields.filter((field) => STRUCTURE_FIELDS.has(field.name.toLowerCase())),
    type: part.type,
    subtype: part.subtype,
    ...(part.contentType === undefined ? {} : { contentType: part.contentType }),
    children: part.children.map(pruneStructure),
    ...(part.message === undefined ? {} : { message: pruneStructure(part.message) }),
    bodyLines: part.bodyLines,
  };
}

/**
 * The size of a message in canonical form, every line ending in CRLF (RFC 5322 §2.1, RFC 1939 §3): a bare LF counts
 * as CRLF and a last line without a line end gets one. POP3 reports this size (before byte-stuffing).
 */
export function canonicalSize(raw: Buffer): number {
  let size = 0;
  let pos = 0;
  while (pos < raw.length) {
    const lf = raw.indexOf(0x0a, pos);
    let end = lf === -1 ? raw.length : lf;
    if (lf !== -1 && end > pos && raw[end - 1] === 0x0d) end--;
    size += end - pos + 2;
    pos = lf === -1 ? raw.length : lf + 1;
  }
  return size;
}
