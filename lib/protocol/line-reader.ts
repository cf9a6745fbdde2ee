import type { Connection } from '../core/connection.js';
import { MAX_LINE_LENGTH, MAX_SKIPPED_LINE_OCTETS, READ_HIGH_WATER_MARK } from './limits.js';
import { BodyReader, EMPTY } from './body-reader.js';

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

const CRLF = Buffer.from('\r\n');

/**
 * Pull-based reader over a {@link Connection}: CRLF lines, exact byte counts (literals, BDAT) and dot-terminated
 * bodies (SMTP DATA). Memory stays bounded: the connection is paused while more than `highWaterMark` octets
 * wait, and an over-long line is dropped as it arrives rather than buffered.
 *
 * Only one read may be outstanding at a time (a session reads sequentially). Call {@link discardBuffered}
 * right before a TLS upgrade; the reader keeps working on the TLS stream afterwards because the connection
 * re-emits `'data'` from the TLS socket.
 *
 * Its base {@link BodyReader} (`body-reader.ts`) holds the buffer with its flow control, and the byte and body reads.
 */
export class LineReader extends BodyReader {
  private skipped = -1; // ≥ 0 while dropping the rest of a line (over-long, or after dropped octets)
  /** Raw octets still to drop before {@link skipped} applies (a refused literal's data). */
  private skipOctets = 0;
  /** The last octets of the line being dropped, for `octetsAfterDroppedLine`. */
  private tail: Buffer = EMPTY;
  /** Set once a dropped line could not be resynchronized: every further read reports `runaway`. */
  private runaway = false;
  private readonly octetsAfterDropped?: (tail: Buffer) => number | 'end' | undefined;
  private maxLine: number;
  private lineTimeoutMs: number;
  private readonly onLineTimeout?: () => void;

  constructor(conn: Connection, options: LineReaderOptions = {}) {
    const maxLine = options.maxLineLength ?? MAX_LINE_LENGTH;
    super(conn, Math.max(options.highWaterMark ?? READ_HIGH_WATER_MARK, maxLine + 2), options.bodyTimeoutMs ?? 0, options.onBodyTimeout);
    this.maxLine = maxLine;
    this.lineTimeoutMs = options.lineTimeoutMs ?? 0;
    this.onLineTimeout = options.onLineTimeout;
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


  /** True when a complete line is already buffered (the client pipelined): replies can wait for one flush. */
  hasBufferedLine(): boolean {
    return !this.isDropping && this.buf.indexOf(0x0a, this.scanFrom) !== -1;
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
}
