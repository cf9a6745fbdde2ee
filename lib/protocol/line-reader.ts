import type { Connection } from '../core/connection.js';
import { MAX_LINE_LENGTH, MAX_SKIPPED_LINE_OCTETS, READ_HIGH_WATER_MARK } from './limits.js';

/** One result of {@link LineReader.readLine}. */
export type LineResult =
  /** A complete line without its CRLF. Lines end at CRLF only. */
  | { readonly kind: 'line'; readonly line: Buffer }
  /**
   * A line longer than the limit, reported as soon as the limit is crossed (RFC 5321 §4.5.3.1.4 lets the server
   * answer a too-long line with 500; Postfix and Dovecot do so without waiting for its end). The next read first
   * skips the rest of that line, up to its line end, without reporting it again.
   */
  | { readonly kind: 'too-long' }
  /**
   * A bare LF (no CR before it) in a line, reported as soon as it arrives. Lines end at CRLF only, so the whole
   * line is dropped: the octets up to the LF now, the rest up to its CRLF by the next read (nothing after a bare
   * LF is ever executed: no command smuggling). No protocol here allows a bare LF in a command line (RFC 5321
   * §2.3.8, RFC 1939 §3, RFC 9051 §2.2); answering at once spares an `EHLO x\n` client a wait until a timeout.
   */
  | { readonly kind: 'bare-lf' }
  /** The rest of an over-long line went on past {@link MAX_SKIPPED_LINE_OCTETS} without a line end: end the session. */
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
   * Milliseconds one line may take from its first octet to its CRLF, however the bytes trickle in (0 or absent: no
   * limit). The socket's idle timer restarts on every byte, so without this a client sending one byte per second
   * holds a session forever (slowloris). Silence before the first octet is the idle timer's business, so a client
   * in IMAP IDLE is not cut off.
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
  /**
   * Called with the last octets (up to {@link DROPPED_TAIL_OCTETS}, line end excluded) of every line the reader
   * drops — over-long, or ended by a bare LF. Returns how many octets follow that line as data rather than lines
   * (an IMAP literal announced at its end, RFC 7888 `{N+}`, which the client sends without waiting): the reader
   * drops them too, then the rest of the line after them, and asks again at that line's end. `'end'` means the
   * octets cannot be told apart from commands: the next read reports `runaway` and the session ends.
   * Absent or undefined: nothing follows, the next line is a command.
   */
  octetsAfterDroppedLine?: (tail: Buffer) => number | 'end' | undefined;
}

/** Octets kept from the end of a dropped line for {@link LineReaderOptions.octetsAfterDroppedLine}. */
export const DROPPED_TAIL_OCTETS = 64;

const CRLF_DOT = Buffer.from('\r\n.');
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
/** {@link LineReader}'s dot-body steps: wait for more octets / the body is over. */
const DOT_MORE = 0;
const DOT_END = 1;

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
  /** Offset from which to search for the next LF (the part before it has been searched). */
  private scanFrom = 0;
  private skipped = -1; // ≥ 0 while dropping the rest of a line (over-long, or after dropped octets)
  /** Raw octets still to drop before {@link skipped} applies (a refused literal's data). */
  private skipOctets = 0;
  /** The last octets of the line being dropped, for `octetsAfterDroppedLine`. */
  private tail: Buffer = EMPTY;
  /** Set once a dropped line could not be resynchronized: every further read reports `runaway`. */
  private runaway = false;
  private readonly octetsAfterDropped?: (tail: Buffer) => number | 'end' | undefined;
  private closed = false;
  private wake?: () => void;
  private maxLine: number;
  private highWater: number;
  private paused = false;
  private bodyComplete = false;
  private lineTimeoutMs: number;
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
    this.octetsAfterDropped = options.octetsAfterDroppedLine;
    // Bound methods, not closures per connection: V8 keeps a closure's optimized code only while a closure that ran
    // it is alive, so per-connection closures were recompiled after full collections (issue 15).
    conn.on('data', this.push.bind(this));
    conn.once('close', this.connectionClosed.bind(this));
  }

  private connectionClosed(): void {
    this.closed = true;
    this.notify();
  }

  /**
   * Changes the longest accepted line from the next read on (a SASL exchange reads longer lines than commands) and
   * returns the previous limit, for the caller to restore. The pause threshold grows with it when needed.
   */
  setMaxLineLength(octets: number): number {
    const previous = this.maxLine;
    this.maxLine = octets;
    this.highWater = Math.max(this.highWater, octets + 2);
    return previous;
  }

  /** Changes the whole-line deadline (see {@link LineReaderOptions.lineTimeoutMs}); applies from the next read. */
  setLineTimeout(ms: number): void {
    this.lineTimeoutMs = ms;
  }

  /** Octets received and not yet consumed. */
  get bufferedLength(): number {
    return this.buf.length;
  }

  /** True when a complete line is already buffered (the client pipelined): replies can wait for one flush. */
  hasBufferedLine(): boolean {
    return !this.isDropping && this.buf.indexOf(0x0a, this.scanFrom) !== -1;
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
    this.skipOctets = 0;
    this.tail = EMPTY;
    this.resumeIfLow();
    return n;
  }

  /**
   * Returns the next line when it is already buffered, without allocating a promise (the pipelined fast path);
   * undefined when {@link readLine} has to wait or skip.
   */
  tryReadLine(): LineResult | undefined {
    if (this.isDropping || this.runaway) return undefined;
    return this.scan();
  }

  /**
   * Reads the next CRLF-terminated line. Once part of it has arrived, the `lineTimeoutMs` deadline runs until the
   * line is complete (RFC 5321 §4.5.3.2.7 times the wait for a *command*, not the gaps between bytes).
   */
  async readLine(): Promise<LineResult> {
    try {
      return await this.readLineUntimed();
    } finally {
      if (this.lineDeadline !== undefined) {
        clearTimeout(this.lineDeadline);
        this.lineDeadline = undefined;
      }
    }
  }

  /** The running {@link readLine}'s whole-line deadline (one read at a time, so one field, not a closure per read). */
  private lineDeadline?: NodeJS.Timeout;

  /** Before {@link readLine} waits for more: starts the whole-line deadline once part of the line has arrived. */
  private armLineDeadline(): void {
    const started = this.buf.length > 0 || this.isDropping;
    if (this.lineDeadline === undefined && started && this.lineTimeoutMs > 0 && this.onLineTimeout) this.lineDeadline = setTimeout(this.onLineTimeout, this.lineTimeoutMs);
  }

  private async readLineUntimed(): Promise<LineResult> {
    for (;;) {
      if (this.runaway) return { kind: 'runaway' };
      if (this.skipOctets > 0) {
        const n = Math.min(this.skipOctets, this.buf.length);
        this.consume(n);
        this.skipOctets -= n;
        if (this.skipOctets === 0) continue;
      } else if (this.skipped >= 0) {
        // The rest of a line already answered: drop it up to its CRLF, silently.
        const end = this.buf.indexOf(CRLF);
        if (end !== -1) {
          this.keepTail(this.buf.subarray(0, end));
          this.consume(end + 2);
          this.skipped = -1;
          this.afterDroppedLine();
          continue;
        }
        // Keep a trailing CR: its LF may come in the next chunk.
        const n = this.buf.length - (this.buf.length > 0 && this.buf[this.buf.length - 1] === 0x0d ? 1 : 0);
        this.keepTail(this.buf.subarray(0, n));
        this.skipped += n;
        this.consume(n);
        if (this.skipped > MAX_SKIPPED_LINE_OCTETS) {
          this.skipped = -1;
          this.runaway = true;
          return { kind: 'runaway' };
        }
      } else {
        const r = this.scan();
        if (r) return r;
      }
      if (this.closed) return { kind: 'closed' };
      this.armLineDeadline();
      await this.more();
    }
  }

  /**
   * Decides the buffered line, if it can be decided yet: a complete line, a bare LF, or a line that is already
   * over the limit (answered at once; its rest is skipped by the next read, so the client hears about it while
   * it is still sending).
   */
  private scan(): LineResult | undefined {
    const lf = this.buf.indexOf(0x0a, this.scanFrom);
    if (lf !== -1) {
      const crlf = lf > 0 && this.buf[lf - 1] === 0x0d;
      const length = crlf ? lf - 1 : lf;
      this.tail = EMPTY;
      if (!crlf) {
        // Answered now; the rest of the line, up to its CRLF, is dropped by the next read.
        this.consume(lf + 1);
        this.skipped = 0;
        return { kind: length > this.maxLine ? 'too-long' : 'bare-lf' };
      }
      if (length > this.maxLine) {
        this.keepTail(this.buf.subarray(0, length));
        this.consume(lf + 1);
        this.afterDroppedLine();
        return { kind: 'too-long' };
      }
      const line = this.buf.subarray(0, length);
      this.consume(lf + 1);
      return { kind: 'line', line };
    }
    // maxLine octets and one more that is not the CR of a CRLF right after them: over the limit already.
    if (this.buf.length > this.maxLine + 1 || (this.buf.length === this.maxLine + 1 && this.buf[this.maxLine] !== 0x0d)) {
      this.skipped = 0;
      this.tail = EMPTY;
      return { kind: 'too-long' };
    }
    this.scanFrom = this.buf.length;
    return undefined;
  }

  /**
   * Drops the next `octets` raw octets and then the rest of the line they are part of, without reporting either
   * (at that line's end `octetsAfterDroppedLine` is asked again). Used after a refused command whose data is
   * already on its way: an IMAP `{N+}` literal (RFC 7888 §4) announced on a line that was answered `BAD`.
   */
  dropCommandRest(octets: number): void {
    this.skipOctets = octets;
    this.skipped = 0;
    this.tail = EMPTY;
  }

  /** True while the reader is dropping a refused line's rest or its data. */
  private get isDropping(): boolean {
    return this.skipped >= 0 || this.skipOctets > 0;
  }

  /** Remembers the last DROPPED_TAIL_OCTETS octets of the line being dropped. */
  private keepTail(part: Buffer): void {
    if (!this.octetsAfterDropped || part.length === 0) return;
    const joined = part.length >= DROPPED_TAIL_OCTETS ? part.subarray(part.length - DROPPED_TAIL_OCTETS) : Buffer.concat([this.tail, part]);
    this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - DROPPED_TAIL_OCTETS)));
  }

  /** A dropped line ended: asks whether data follows it, and arranges to drop it (or to end the session). */
  private afterDroppedLine(): void {
    const tail = this.tail;
    this.tail = EMPTY;
    const after = this.octetsAfterDropped?.(tail);
    if (after === 'end') this.runaway = true;
    else if (after !== undefined && after > 0) {
      this.skipOctets = after;
      this.skipped = 0;
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

  private push(chunk: Buffer): void {
    if (this.skipped >= 0 && this.skipOctets === 0 && this.buf.length === 0 && chunk.indexOf(0x0a) === -1 && chunk[chunk.length - 1] !== 0x0d) {
      // Dropping an over-long line: look for its end without keeping the chunk around.
      this.keepTail(chunk);
      this.skipped += chunk.length;
      chunk = EMPTY;
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
