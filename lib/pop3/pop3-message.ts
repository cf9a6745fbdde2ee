/**
 * Wire form of a stored message for RETR and TOP (RFC 1939 §3, §11).
 *
 * Messages are normally stored with CRLF line ends. A stored message may still contain bare LF line ends
 * (or lack a final line end); on the wire every line ends in CRLF, so a bare LF becomes CRLF and a last
 * line without a line end gets one. The size reported by STAT, LIST and `+OK n octets` is the size of this
 * wire form before byte-stuffing (RFC 1939 §11: the octet count is of the message as transmitted, the
 * stuffed dots and the terminating `.` not counted), so it equals what a client has after un-stuffing.
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');

/** Octets per chunk yielded by {@link wireChunks}: large enough for few writes, small enough to bound memory. */
export const WIRE_CHUNK_OCTETS = 64 * 1024;

/** Yields `[start, end]` for each line of `raw`; `end` excludes the line end (LF, or the CR LF pair). */
function* lines(raw: Buffer): Generator<readonly [number, number], void, undefined> {
  let pos = 0;
  while (pos < raw.length) {
    const lf = raw.indexOf(LF, pos);
    let end = lf === -1 ? raw.length : lf;
    if (lf !== -1 && end > pos && raw[end - 1] === CR) end--;
    yield [pos, end];
    pos = lf === -1 ? raw.length : lf + 1;
  }
}

/** The size of `raw` in wire form (every line ending in CRLF), byte-stuffing not counted. */
export function wireSize(raw: Buffer): number {
  let size = 0;
  for (const [start, end] of lines(raw)) size += end - start + 2;
  return size;
}

const LF_DOT = Buffer.from('\n.');

/** True when `raw` is its own byte-stuffed wire form: every line ends in CRLF (the last too) and none starts with `.`. */
function isWireForm(raw: Buffer): boolean {
  const n = raw.length;
  if (n < 2 || raw[n - 1] !== LF || raw[n - 2] !== CR || raw[0] === DOT || raw.includes(LF_DOT)) return false;
  for (let lf = raw.indexOf(LF); lf !== -1; lf = raw.indexOf(LF, lf + 1)) if (lf === 0 || raw[lf - 1] !== CR) return false;
  return true;
}

/** How far a TOP (RFC 1939 §7) has come: still in the header, and the body lines it may still send. */
interface TopProgress {
  inHeader: boolean;
  bodyLeft: number;
}

/** True once a TOP has sent its header and all the body lines it asked for. */
function topDone(top: TopProgress): boolean {
  return !top.inHeader && top.bodyLeft <= 0;
}

/**
 * Yields the byte-stuffed wire form of `raw` (every line CRLF-terminated, lines starting with `.` get an extra
 * `.`), without the terminating `.CRLF`, in chunks of about {@link WIRE_CHUNK_OCTETS}: only one chunk is copied
 * at a time, so the caller can write each and wait for drain.
 * With `bodyLines` set (TOP, RFC 1939 §7), yields the header, the blank line after it (added when the stored
 * message has no body) and at most that many body lines.
 */
export function* wireChunks(raw: Buffer, bodyLines?: number): Generator<Buffer, void, undefined> {
  if (bodyLines === undefined && isWireForm(raw)) {
    // Already in wire form (the usual case: CRLF everywhere, no line starting with a dot): slices, no copy.
    for (let i = 0; i < raw.length; i += WIRE_CHUNK_OCTETS) yield raw.subarray(i, i + WIRE_CHUNK_OCTETS);
    return;
  }
  const top = bodyLines === undefined ? undefined : { inHeader: true, bodyLeft: bodyLines };
  yield* stuffedLines(raw, top);
  // RFC 1939 §7: TOP sends the header and the blank line after it, even for a message that has no body.
  if (top?.inHeader) yield CRLF;
}

/** The byte-stuffed lines of `raw` in chunks (see {@link wireChunks}); with `top`, only those TOP still sends. */
function* stuffedLines(raw: Buffer, top?: TopProgress): Generator<Buffer, void, undefined> {
  let parts: Buffer[] = [];
  let pending = 0;
  for (const [start, end] of lines(raw)) {
    if (top !== undefined) {
      if (!top.inHeader) {
        if (top.bodyLeft <= 0) break;
        top.bodyLeft--;
      } else if (start === end) {
        top.inHeader = false;
      }
    }
    if (end > start && raw[start] === DOT) parts.push(DOT_BYTE);
    parts.push(raw.subarray(start, end), CRLF);
    pending += end - start + 3;
    if (pending >= WIRE_CHUNK_OCTETS) {
      yield Buffer.concat(parts);
      parts = [];
      pending = 0;
    }
  }
  if (parts.length > 0) yield Buffer.concat(parts);
}

/**
 * {@link wireChunks} of a message read from a stream (RETR, or TOP with `bodyLines`): the stream's chunks are cut
 * after their last line end, so that only about one chunk plus one line is held at a time whatever the message
 * size. A TOP stops reading once its lines are out: the rest of a large message is never read.
 */
export async function* wireChunksOf(stream: AsyncIterable<Buffer>, bodyLines?: number): AsyncGenerator<Buffer, void, undefined> {
  const top = bodyLines === undefined ? undefined : { inHeader: true, bodyLeft: bodyLines };
  const wire = (data: Buffer): Generator<Buffer, void, undefined> => (top === undefined ? wireChunks(data) : stuffedLines(data, top));
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    const data = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    const last = data.lastIndexOf(LF);
    if (last < 0) {
      carry = data;
      continue;
    }
    yield* wire(data.subarray(0, last + 1));
    if (top !== undefined && topDone(top)) return;
    carry = data.subarray(last + 1);
  }
  if (carry.length > 0) yield* wire(carry);
  if (top?.inHeader) yield CRLF;
}

/**
 * A message's octets for TOP from a store that reads prefixes (`PrefixReadableMessage`): `prefix`, its first octets
 * read at once, then, only when TOP needs more lines than they hold and the message goes on, the rest from its stream
 * (`open`, closed when the consumer stops). TOP of a few lines thus costs one read, not a stream's open and reads.
 */
export async function* prefixThenRest(prefix: Buffer, asked: number, open: () => Promise<AsyncIterable<Buffer> & { destroy(): void }>): AsyncGenerator<Buffer, void, undefined> {
  yield prefix;
  if (prefix.length < asked) return; // the prefix is the whole message
  const stream = await open();
  try {
    let skip = prefix.length;
    for await (const chunk of stream) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      yield skip > 0 ? chunk.subarray(skip) : chunk;
      skip = 0;
    }
  } finally {
    stream.destroy();
  }
}
