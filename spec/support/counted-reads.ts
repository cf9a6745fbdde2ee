/** Counting what a command reads of a stored message: whole, streamed, or a prefix (specs of the partial reads). */
import type { Readable } from 'node:stream';
import { canReadPrefix, isStreamable, type StoredMessage } from '../../lib/contracts/mail-store.js';

/** What was read of a message: whole (`raw()`), octets streamed, and the length of each prefix read. */
export interface Reads {
  whole: number;
  streamed: number;
  prefixes: number[];
}

/** Nothing read yet. */
export function noReads(): Reads {
  return { whole: 0, streamed: 0, prefixes: [] };
}

/** `message` with what is read of it added to `reads` (its stream and prefix reads too, when it offers them). */
export function countingReads(message: StoredMessage, reads: Reads): StoredMessage {
  const counted: StoredMessage & Record<string, unknown> = { ...message, raw: () => (reads.whole++, message.raw()) };
  if (isStreamable(message)) {
    counted.openStream = async (): Promise<Readable> => {
      const stream = await message.openStream();
      stream.on('data', (chunk: Buffer) => (reads.streamed += chunk.length));
      return stream;
    };
  }
  if (canReadPrefix(message)) {
    counted.readPrefix = async (octets: number): Promise<Buffer> => {
      const prefix = await message.readPrefix(octets);
      reads.prefixes.push(prefix.length);
      return prefix;
    };
  }
  return counted;
}
