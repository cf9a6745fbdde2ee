/**
 * Reading a large message only as far as a FETCH needs it. A message list asks for the header of every message
 * (`BODY.PEEK[HEADER.FIELDS (…)]`, `BODY.PEEK[HEADER]`, `RFC822.HEADER`) and for PREVIEW, and a client showing a
 * message with an attachment asks for its text part (`BODY.PEEK[1]`); from a store that keeps each message's
 * structure and reads its first octets alone (`PrefixReadableMessage`: Maildir), a large message is read up to the end of what is asked for, instead of
 * whole: a mailbox of mail with big attachments lists, and shows its texts, at the cost of its headers and texts.
 */
import { canReadPrefix, hasCachedStructure, type CachedStructure, type PrefixReadableMessage, type StoredMessage } from '../contracts/mail-store.js';
import type { MimePart } from '../mime/mime-parse.js';
import type { FetchAttribute, SectionSpecifier } from './imap-fetch-attributes.js';
import { findPart } from './imap-mime.js';

/** From this size on a message is streamed or read in part rather than read whole (below it one read is cheaper). */
export const LARGE_MESSAGE_OCTETS = 256 * 1024;

/** True when `message` is large and its store gives its structure and its first octets alone. */
export function readsInPart(message: StoredMessage): message is StoredMessage & CachedStructure & PrefixReadableMessage {
  return message.size >= LARGE_MESSAGE_OCTETS && hasCachedStructure(message) && canReadPrefix(message);
}

/**
 * True when the octets `attribute` needs can end before the message's end (see {@link octetsNeeded}): every
 * attribute but the whole message and its whole text (`BODY[]`, `BODY[TEXT]`, `RFC822`, `RFC822.TEXT`), which
 * reach the end anyway unless a partial range (`BODY.PEEK[]<0.2048>`) bounds them.
 */
export function endsBeforeMessageEnd(attribute: FetchAttribute): boolean {
  if (attribute.kind === 'simple') return attribute.name !== 'RFC822' && attribute.name !== 'RFC822.TEXT';
  if (attribute.path.length > 0 || (attribute.specifier !== '' && attribute.specifier !== 'TEXT')) return true;
  return attribute.name === 'BODY' && attribute.partial !== undefined;
}

/**
 * How many octets from the message's start `attribute` needs, by the offsets of `root` (the cached structure): the
 * header's end for header items, a part's end for a part (its header's end for `.MIME`), the end of the range of a
 * partial BODY section; 0 for items that need no octets or name a part that does not exist.
 */
export function octetsNeeded(attribute: FetchAttribute, root: MimePart): number {
  if (attribute.kind === 'simple') return attribute.name === 'RFC822.HEADER' ? root.bodyStart : 0;
  const part = findPart(root, attribute.path);
  if (part === undefined) return 0;
  const [start, end] = sectionOffsets(attribute.specifier, attribute.path.length === 0 ? root : part.message, part) ?? [0, 0];
  // A BODY range counts in the section's own octets (BINARY's in decoded ones; HEADER.FIELDS's in the fields chosen).
  const partial = attribute.partial;
  if (partial === undefined || attribute.name !== 'BODY' || attribute.specifier.startsWith('HEADER.FIELDS')) return end;
  return Math.min(end, start + partial.offset + partial.length);
}

/** Where a section of `part` (or of `message`, the part's embedded or the top-level message) starts and ends. */
function sectionOffsets(specifier: SectionSpecifier, message: MimePart | undefined, part: MimePart): readonly [number, number] | undefined {
  if (specifier === '') return message === part ? [part.start, part.end] : [part.bodyStart, part.end];
  if (specifier === 'MIME') return [part.start, part.bodyStart];
  if (message === undefined) return undefined;
  return specifier === 'TEXT' ? [message.bodyStart, message.end] : [message.start, message.bodyStart];
}
