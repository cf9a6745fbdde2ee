import type { Connection } from '../core/connection.js';
import { MAX_LINE_LENGTH, MAX_SKIPPED_LINE_OCTETS, READ_HIGH_WATER_MARK } from './limits.js';

/** One result of {@link LineReader.readLine}. */
export type LineResult =
  /** A complete line without its CRLF. Lines split on CRLF only: a bare LF stays inside the line. */
  | { readonly kind: 'line'; readonly line: Buffer }
  /** A line longer than the limit; it has been skipped up to and including its CRLF. */
  | { readonly kind: 'too-long' }
  /** A line so long that its CRLF never came within {@link MAX_SKIPPED_LINE_OCTETS}: end the session. */
  | { readonly kind: 'runaway' }
  /** The connection closed (or the reader was stopped). */
  | { readonly kind: 'closed' };

/** Limits for a {@link LineReader}. */
export interface LineReaderOptions {
  /** Longest line accepted, without CRLF. */
  maxLineLength?: number;
  /** Buffered octets before the connection is paused. */
  highWaterMark?: number;
  /**
   * Milliseconds one {@link LineReader.readLine} may wait for its complete line, however the bytes trickle in
   * (0 or absent: no limit). The socket's idle timer restarts on every byte, so without this a client sending one
   * byte per second holds a session forever (slowloris).
   */
  lineTimeoutMs?: number;
  /** Called once when `lineTimeoutMs` passes; the owner ends the session (which makes the read resolve `closed`). */
  onLineTimeout?: () => void;
  /**
   * Milliseconds one body read ({@link LineReader.readDotBody}, {@link LineReader.readBytes}) may take from start
   * to end (0 or absent: no limit): the same slowloris bound for DATA, BDAT chunks and IMAP literals.
   */
  bodyTimeoutMs?: number;
  /** Called once when `bodyTimeoutMs` passes; the owner ends the session (the read then ends as if the peer left). */
  onBodyTimeout?: () => void;
}

const CRLF = Buffer.from('\r\n');
const CRLF_DOT = Buffer.from('\r\n.');
const EMPTY = Buffer.alloc(0);

/**
 * Pull-based reader over a {@link Connection}: CRLF lines, exact byte counts (literals, BDAT) and dot-terminated
 * bodies (SMTP DATA). Memory stays bounded: the connection is paused while more than `highWaterMark` octets
 * wait, and an over-long line is dropped as it arrives rather than buffered.
 *
 * Only one read may be outstanding at a time (a session reads sequentially). Call {@link discardBuffered}
 * right before a TLS upgrade; the reader keeps working on the TLS stream afterwards because the connection
 * re-emits `'data'` from the TLS socket.
 */
export class LineReader {
  private buf: Buffer = EMPTY;
  /** Offset from which to search for the next CRLF (the part before it has been searched). */
  private scanFrom = 0;
  private skipped = -1; // ≥ 0 while skipping an over-long line
  private closed = false;
  private wake?: () => void;
  private readonly maxLine: number;
  private readonly highWater: number;
  private paused = false;
  private bodyComplete = false;
  private readonly lineTimeoutMs: number;
  private readonly onLineTimeout?: () => void;
  private readonly bodyTimeoutMs: number;
  private readonly onBodyTimeout?: () => void;

  constructor(
    private readonly conn: Connection,
    options: LineReaderOptions = {},
  ) {
    this.maxLine = options.maxLineLength ?? MAX_LINE_LENGTH;
    this.highWater = Math.max(options.highWaterMark ?? READ_HIGH_WATER_MARK, this.maxLine + 2);
    this.lineTimeoutMs = options.lineTimeoutMs ?? 0;
    this.onLineTimeout = options.onLineTimeout;
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? 0;
    this.onBodyTimeout = options.onBodyTimeout;
    conn.on('data', (chunk) => this.push(chunk));
    conn.once('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  /** Octets received and not yet consumed. */
  get bufferedLength(): number {
    return this.buf.length;
  }

  /** True when a complete line is already buffered (the client pipelined): replies can wait for one flush. */
  hasBufferedLine(): boolean {
    return this.buf.indexOf(CRLF, this.scanFrom > 0 ? this.scanFrom - 1 : 0) !== -1;
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
   * Drops everything received but not consumed. Called right before a TLS upgrade (RFC 3207 §4.2,
   * RFC 2595 §3.1): plaintext pipelined after STARTTLS/STLS must never be executed. Returns the count dropped.
   */
  discardBuffered(): number {
    const n = this.buf.length;
    this.buf = EMPTY;
    this.scanFrom = 0;
    this.skipped = -1;
    this.resumeIfLow();
    return n;
  }

  /**
   * Returns the next line when it is already buffered, without allocating a promise (the pipelined fast path);
   * undefined when {@link readLine} has to wait or skip.
   */
  tryReadLine(): LineResult | undefined {
    if (this.skipped >= 0) return undefined;
    const end = this.buf.indexOf(CRLF, this.scanFrom);
    if (end === -1 || end > this.maxLine) return undefined;
    const line = this.buf.subarray(0, end);
    this.consume(end + 2);
    return { kind: 'line', line };
  }

  /**
   * Reads the next CRLF-terminated line. When it has to wait, the `lineTimeoutMs` deadline runs from that moment
   * until the line is complete (RFC 5321 §4.5.3.2.7 times the wait for a *command*, not the gaps between bytes).
   */
  async readLine(): Promise<LineResult> {
    let deadline: NodeJS.Timeout | undefined;
    try {
      return await this.readLineUntimed(() => {
        if (deadline === undefined && this.lineTimeoutMs > 0 && this.onLineTimeout) deadline = setTimeout(this.onLineTimeout, this.lineTimeoutMs);
      });
    } finally {
      if (deadline !== undefined) clearTimeout(deadline);
    }
  }

  private async readLineUntimed(beforeWait: () => void): Promise<LineResult> {
    for (;;) {
      if (this.skipped >= 0) {
        const end = this.buf.indexOf(CRLF);
        if (end !== -1) {
          this.consume(end + 2);
          this.skipped = -1;
          return { kind: 'too-long' };
        }
        // Keep a trailing CR: its LF may arrive in the next chunk.
        const keep = this.buf.length > 0 && this.buf[this.buf.length - 1] === 0x0d ? 1 : 0;
        this.skipped += this.buf.length - keep;
        this.consume(this.buf.length - keep);
        if (this.skipped > MAX_SKIPPED_LINE_OCTETS) return { kind: 'runaway' };
      } else {
        const end = this.buf.indexOf(CRLF, this.scanFrom);
        if (end !== -1) {
          if (end > this.maxLine) {
            this.consume(end + 2);
            return { kind: 'too-long' };
          }
          const line = this.buf.subarray(0, end);
          this.consume(end + 2);
          return { kind: 'line', line };
        }
        if (this.buf.length > this.maxLine + 1) {
          this.skipped = 0;
          continue;
        }
        this.scanFrom = Math.max(0, this.buf.length - 1);
      }
      if (this.closed) return { kind: 'closed' };
      beforeWait();
      await this.more();
    }
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
    let atLineStart = true;
    for (;;) {
      if (atLineStart && this.buf.length > 0 && this.buf[0] === 0x2e) {
        if (this.buf.length < 3 && !this.closed) {
          // ".", ".\r": not yet known whether this is the terminator.
          if (this.buf.length === 1 || this.buf[1] === 0x0d) {
            await this.more();
            continue;
          }
        }
        if (this.buf.length >= 3 && this.buf[1] === 0x0d && this.buf[2] === 0x0a) {
          this.consume(3);
          this.bodyComplete = true;
          return;
        }
        this.consume(1); // unstuff: "..x" → ".x"
        atLineStart = false;
        continue;
      }
      if (this.buf.length > 0) {
        const idx = this.buf.indexOf(CRLF_DOT);
        if (idx !== -1) {
          const part = this.buf.subarray(0, idx + 2);
          this.consume(idx + 2);
          atLineStart = true;
          yield part;
          continue;
        }
        // Hold back a tail that could start "\r\n.": it is decided by the next chunk.
        const n = this.buf.length;
        const keep = this.buf[n - 1] === 0x0d ? 1 : n >= 2 && this.buf[n - 2] === 0x0d && this.buf[n - 1] === 0x0a ? 2 : 0;
        if (n - keep > 0) {
          const part = this.buf.subarray(0, n - keep);
          this.consume(n - keep);
          atLineStart = false;
          yield part;
          continue;
        }
      }
      if (this.closed) return;
      await this.more();
    }
  }

  private push(chunk: Buffer): void {
    if (this.skipped >= 0 && this.buf.length === 0) {
      // Skipping an over-long line: look for its end without keeping the chunk around.
      const end = chunk.indexOf(CRLF);
      if (end === -1) {
        const keep = chunk[chunk.length - 1] === 0x0d ? 1 : 0;
        this.skipped += chunk.length - keep;
        chunk = keep ? chunk.subarray(chunk.length - 1) : EMPTY;
      }
    }
    if (chunk.length > 0) this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.highWater && !this.paused) {
      this.paused = true;
      this.conn.pause();
    }
    this.notify();
  }

  private consume(n: number): void {
    this.buf = n >= this.buf.length ? EMPTY : this.buf.subarray(n);
    this.scanFrom = 0;
    this.resumeIfLow();
  }

  private resumeIfLow(): void {
    if (this.paused && this.buf.length <= this.highWater) {
      this.paused = false;
      this.conn.resume();
    }
  }

  private more(): Promise<void> {
    if (this.paused) {
      this.paused = false;
      this.conn.resume();
    }
    return new Promise((resolve) => (this.wake = resolve));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
