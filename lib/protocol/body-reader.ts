/**
 * The input side under `LineReader` (its base class {@link BodyReader}): the octets received and not yet
 * consumed, with the flow control that bounds them (pause above the high-water mark, wait for more, wake on data or
 * close), and the reads that take octets rather than lines: exact counts (IMAP literals, BDAT chunks) and
 * dot-terminated bodies (SMTP DATA), each under the whole-body deadline.
 */
import type { Connection } from '../core/connection.js';

const CRLF_DOT = Buffer.from('\r\n.');
/** The empty buffer the input (and a dropped line's tail) starts from and returns to. */
export const EMPTY = Buffer.alloc(0);
/** {@link BodyReader}'s dot-body steps: wait for more octets / the body is over. */
const DOT_MORE = 0;
const DOT_END = 1;

/**
 * The base of `LineReader`: the buffer and its flow control, and the byte and body reads. `LineReader` adds the
 * line framing on the same buffer, and receives into it (its `push` drops an over-long line's chunks as they arrive).
 */
export abstract class BodyReader {
  protected buf: Buffer = EMPTY;
  /** Offset from which to search for the next LF (the part before it has been searched). */
  protected scanFrom = 0;
  protected closed = false;
  private wake?: () => void;
  protected highWater: number;
  protected paused = false;
  private bodyComplete = false;
  private readonly bodyTimeoutMs: number;
  private readonly onBodyTimeout?: () => void;

  protected constructor(
    protected readonly conn: Connection,
    highWater: number,
    bodyTimeoutMs: number,
    onBodyTimeout: (() => void) | undefined,
  ) {
    this.highWater = highWater;
    this.bodyTimeoutMs = bodyTimeoutMs;
    this.onBodyTimeout = onBodyTimeout;
  }

  /** Octets received and not yet consumed. */
  get bufferedLength(): number {
    return this.buf.length;
  }

  /**
   * True when the last {@link readDotBody} ended at its CRLF "." CRLF terminator — as opposed to the peer
   * vanishing first. A complete body stays complete even if the peer closes right after the dot.
   */
  get lastBodyComplete(): boolean {
    return this.bodyComplete;
  }

  /** True once the connection closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Yields exactly `count` octets (an IMAP literal, a BDAT chunk) as they arrive. Ends early only when the
   * connection closes; check {@link isClosed} afterwards.
   */
  async *readBytes(count: number): AsyncGenerator<Buffer, void, undefined> {
    const timer = this.bodyTimer();
    try {
      yield* this.readBytesUntimed(count);
    } finally {
      clearTimeout(timer);
    }
  }

  private async *readBytesUntimed(count: number): AsyncGenerator<Buffer, void, undefined> {
    let left = count;
    while (left > 0) {
      if (this.buf.length > 0) {
        const n = Math.min(left, this.buf.length);
        const part = this.buf.subarray(0, n);
        this.consume(n);
        left -= n;
        yield part;
        continue;
      }
      if (this.closed) return;
      await this.more();
    }
  }

  /** Reads exactly `count` octets into one Buffer (small literals); undefined when the connection closed first. */
  async readExactly(count: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let got = 0;
    for await (const p of this.readBytes(count)) {
      parts.push(p);
      got += p.length;
    }
    return got === count ? Buffer.concat(parts, count) : undefined;
  }

  /**
   * Yields a dot-terminated body (RFC 5321 §4.5.2): leading dots are unstuffed and the body ends at the first
   * CRLF "." CRLF — only that sequence ends it, so a bare LF "." LF cannot smuggle a second message. The final
   * CRLF before the dot belongs to the body. Yields slices of received chunks, with no per-line copies.
   * Returns normally at the terminator or when the peer vanished; {@link lastBodyComplete} tells which.
   */
  async *readDotBody(): AsyncGenerator<Buffer, void, undefined> {
    this.bodyComplete = false;
    const timer = this.bodyTimer();
    try {
      yield* this.readDotBodyUntimed();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Arms the whole-body deadline, if configured. */
  private bodyTimer(): NodeJS.Timeout | undefined {
    return this.bodyTimeoutMs > 0 && this.onBodyTimeout ? setTimeout(this.onBodyTimeout, this.bodyTimeoutMs) : undefined;
  }

  private async *readDotBodyUntimed(): AsyncGenerator<Buffer, void, undefined> {
    this.atLineStart = true;
    for (;;) {
      const part = this.dotBodyStep();
      if (part === DOT_END) return;
      if (part === DOT_MORE) await this.more();
      else yield part;
    }
  }

  /**
   * The same body as {@link readDotBody}, handed to `onChunk` part by part (awaited only when it returns a promise),
   * without a generator and a promise per part (issue 15: the SMTP DATA path). Resolves at the terminator or when
   * the peer vanished; {@link lastBodyComplete} tells which. `onChunk` may keep the parts.
   */
  async readDotBodyTo(onChunk: (part: Buffer) => void | Promise<void>): Promise<void> {
    this.bodyComplete = false;
    this.atLineStart = true;
    const timer = this.bodyTimer();
    try {
      for (;;) {
        const part = this.dotBodyStep();
        if (part === DOT_END) return;
        if (part === DOT_MORE) await this.more();
        else {
          const pending = onChunk(part);
          if (pending !== undefined) await pending;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** While reading a dot-terminated body: true at the start of a body line (where a dot is stuffing or the end). */
  private atLineStart = true;

  /**
   * One step through a dot-terminated body over what is buffered: the next part of the body, {@link DOT_MORE} (wait
   * for more octets) or {@link DOT_END} (terminator consumed, or the peer vanished).
   */
  private dotBodyStep(): Buffer | typeof DOT_MORE | typeof DOT_END {
    for (;;) {
      if (this.atLineStart && this.buf.length > 0 && this.buf[0] === 0x2e) {
        // ".", ".\r": not yet known whether this is the terminator.
        if (this.buf.length < 3 && !this.closed && (this.buf.length === 1 || this.buf[1] === 0x0d)) return DOT_MORE;
        if (this.buf.length >= 3 && this.buf[1] === 0x0d && this.buf[2] === 0x0a) {
          this.consume(3);
          this.bodyComplete = true;
          return DOT_END;
        }
        this.consume(1); // unstuff: "..x" → ".x"
        this.atLineStart = false;
        continue;
      }
      if (this.buf.length > 0) {
        const idx = this.buf.indexOf(CRLF_DOT);
        if (idx !== -1) {
          const part = this.buf.subarray(0, idx + 2);
          this.consume(idx + 2);
          this.atLineStart = true;
          return part;
        }
        // Hold back a tail that could start "\r\n.": it is decided by the next chunk.
        const n = this.buf.length;
        const keep = this.buf[n - 1] === 0x0d ? 1 : n >= 2 && this.buf[n - 2] === 0x0d && this.buf[n - 1] === 0x0a ? 2 : 0;
        if (n - keep > 0) {
          const part = this.buf.subarray(0, n - keep);
          this.consume(n - keep);
          this.atLineStart = false;
          return part;
        }
      }
      return this.closed ? DOT_END : DOT_MORE;
    }
  }

  protected consume(n: number): void {
    this.buf = n >= this.buf.length ? EMPTY : this.buf.subarray(n);
    this.scanFrom = 0;
    this.resumeIfLow();
  }

  protected resumeIfLow(): void {
    if (this.paused && this.buf.length <= this.highWater) {
      this.paused = false;
      this.conn.resume();
    }
  }

  protected more(): Promise<void> {
    if (this.paused) {
      this.paused = false;
      this.conn.resume();
    }
    return new Promise((resolve) => (this.wake = resolve));
  }

  protected notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
