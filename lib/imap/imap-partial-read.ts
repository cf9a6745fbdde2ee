/**
 * Reading a large message only as far as a FETCH needs it. A message list asks for the header of every message
 * (`BODY.PEEK[HEADER.FIELDS (…)]`, `BODY.PEEK[HEADER]`, `RFC822.HEADER`) and for PREVIEW; from a store that keeps
 * each message's structure and can stream it (Maildir), a large message is read up to the end of its header, or
 * into its text part, instead of whole: a mailbox of mail with big attachments lists at the cost of its headers.
 */
import type { Readable } from 'node:stream';
import { hasCachedStructure, isStreamable, type CachedStructure, type StoredMessage, type StreamableMessage } from '../contracts/mail-store.js';
import type { FetchAttribute } from './imap-fetch-attributes.js';

/** From this size on a message is streamed or read in part rather than read whole (below it one read is cheaper). */
export const LARGE_MESSAGE_OCTETS = 256 * 1024;

/** True when `message` is large and its store gives its structure and a stream of it. */
export function readsInPart(message: StoredMessage): message is StoredMessage & CachedStructure & StreamableMessage {
  return message.size >= LARGE_MESSAGE_OCTETS && hasCachedStructure(message) && isStreamable(message);
}

/** The first `octets` of the message (fewer when it is shorter); the stream is closed once they are in. */
export async function readPrefix(message: StreamableMessage, octets: number): Promise<Buffer> {
  const stream: Readable = await message.openStream();
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= octets) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks, Math.min(length, octets));
}

/**
 * True when the message's header is all of its octets `attribute` needs, given a cached structure for ENVELOPE,
 * BODY and BODYSTRUCTURE: the top-level header sections of BODY and RFC822.HEADER, or no octets at all.
 */
export function needsHeaderAtMost(attribute: FetchAttribute): boolean {
  if (attribute.kind === 'simple') return attribute.name !== 'RFC822' && attribute.name !== 'RFC822.TEXT';
  return attribute.name === 'BODY' && attribute.path.length === 0 && attribute.specifier.startsWith('HEADER');
}
