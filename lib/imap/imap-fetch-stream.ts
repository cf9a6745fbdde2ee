/**
 * FETCH of a large whole message as a streamed literal (issue 9): `BODY[]`, `BODY.PEEK[]` or `RFC822` of a message
 * of at least {@link LITERAL_STREAM_FROM_OCTETS}, from a store that can stream it, is sent as `{size}` followed by
 * the file's chunks, each written before the next is read, so the message is never held whole in memory.
 */
import { isStreamable, type StoredMessage, type StreamableMessage } from '../contracts/mail-store.js';
import { needsContent, type FetchAttribute, type FetchRequest } from './imap-fetch.js';
import { LARGE_MESSAGE_OCTETS } from './imap-partial-read.js';

/** Messages from this size on are streamed (the same threshold as POP3 RETR): below it one read is cheaper. */
export const LITERAL_STREAM_FROM_OCTETS = LARGE_MESSAGE_OCTETS;

/** A request that can stream its whole-message attribute. */
export interface StreamedFetch {
  /** The request without that attribute (built as usual). */
  readonly rest: FetchRequest;
  /** Where the literal goes among the built data items (two per attribute: name and value). */
  readonly itemIndex: number;
  /** The response name: `BODY[]` (also for `BODY.PEEK[]`, RFC 3501 §7.4.2) or `RFC822`. */
  readonly name: string;
}

function isWholeMessage(a: FetchAttribute): boolean {
  if (a.kind === 'simple') return a.name === 'RFC822';
  return a.name === 'BODY' && a.path.length === 0 && a.specifier === '' && a.partial === undefined;
}

/**
 * The streamable split of a request: exactly one whole-message attribute and otherwise only attributes that need
 * no message octets (FLAGS, UID, INTERNALDATE, RFC822.SIZE, and ENVELOPE/BODY/BODYSTRUCTURE from a cached
 * structure); undefined when the request does not qualify.
 */
export function streamedFetch(request: FetchRequest): StreamedFetch | undefined {
  const whole = request.attributes.filter(isWholeMessage);
  if (whole.length !== 1) return undefined;
  const others = request.attributes.filter((a) => !isWholeMessage(a));
  if (others.some((a) => a.kind === 'section' || a.name === 'RFC822.HEADER' || a.name === 'RFC822.TEXT')) return undefined;
  const index = request.attributes.indexOf(whole[0]!);
  return {
    rest: { attributes: others, setsSeen: request.setsSeen, needsContent: needsContent(others) },
    itemIndex: 2 * index,
    name: whole[0]!.kind === 'simple' ? 'RFC822' : 'BODY[]',
  };
}

/** True when `message` should be streamed for a {@link StreamedFetch}. */
export function shouldStream(message: StoredMessage): message is StoredMessage & StreamableMessage {
  return message.size >= LITERAL_STREAM_FROM_OCTETS && isStreamable(message);
}

/** What {@link pumpLiteral} needs of the session. */
export interface LiteralSink {
  send(data: Buffer): void;
  flush(): Promise<void>;
  readonly isEnding: boolean;
}

/**
 * Writes exactly `size` octets from `stream` (already opened, so that a vanished message is noticed before the
 * literal's `{size}` went out), one chunk at a time with a flush in between; destroys the stream at the end.
 * Resolves false when the file held fewer or more octets than announced: the literal cannot be completed, so the
 * caller must close the connection (nothing else could keep the client's parser in step).
 */
export async function pumpLiteral(stream: AsyncIterable<Buffer> & { destroy(): void }, size: number, sink: LiteralSink): Promise<boolean> {
  let left = size;
  try {
    for await (const chunk of stream) {
      if (chunk.length > left) return false;
      left -= chunk.length;
      sink.send(chunk);
      await sink.flush();
      if (sink.isEnding) return true;
    }
    return left === 0;
  } finally {
    stream.destroy();
  }
}
