import type { CloseReason } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import { TlsHandshakeError } from '../core/tls-errors.js';
import { debugEnabled } from '../log/logger.js';
import { REPLY_QUEUE_LIMIT } from './limits.js';
import type { LineResult } from './line-reader.js';
import { FaultSession } from './fault-session.js';

export type { SessionLimits } from './limited-session.js';
export type { LoginCheck, LoginPolicy } from './login-session.js';

/**
 * Base of the SMTP, POP3 and IMAP sessions (and yours): owns the connection, the line reader, the reply
 * buffer, the error budget, idle timeouts and the one STARTTLS path.
 *
 * Replies are queued with {@link send} and written with one `write` per pipelined group: the queue is flushed
 * whenever no further complete command is buffered (RFC 2920 §3.1 lets the server batch replies that way).
 *
 * Lifecycle: `TcpServer` calls the protocol's `handle()`, which constructs the session and awaits {@link run};
 * `run` returns when the connection has closed. {@link end} says goodbye and closes.
 *
 * Its bases hold the rest: `LimitedSession` (`limited-session.ts`) the connection, the reader, the limits and the
 * timers; `LoginSession` (`login-session.ts`) the failed-login policy and the SASL continuation reader;
 * `FaultSession` (`fault-session.ts`) fault injection.
 */
export abstract class TextSession extends FaultSession {
  private out: Array<string | Buffer> = [];
  /** Length of `out` (string lengths approximate octets; only compared with REPLY_QUEUE_LIMIT). */
  private queued = 0;
  private errors = 0;
  private ending = false;

  /** Size of the replies queued and not yet written (diagnostics; bounded by REPLY_QUEUE_LIMIT plus one reply). */
  get queuedReplyLength(): number {
    return this.queued;
  }

  /** True after a TLS handshake. */
  get isSecure(): boolean {
    return this.connection.isSecure;
  }

  /** True once {@link end} was called or the connection closed. */
  get isEnding(): boolean {
    return this.ending || this.connection.isClosed;
  }

  /** Queues a reply (CRLF included by the caller). Logged at debug as `S:`. */
  send(data: string | Buffer): void {
    if (debugEnabled(this.log)) {
      if (typeof data === 'string') this.log.debug('S: ' + data.replace(/\r\n$/, ''));
      else this.log.debug('S: [bytes]', { size: data.length });
    }
    this.out.push(data);
    this.queued += data.length;
  }

  /** Writes every queued reply in one write. Resolves when the socket accepted it (waits for drain if full). */
  flush(): Promise<void> {
    return this.writeQueued() ?? SETTLED;
  }

  /**
   * {@link flush} for hot paths: writes the queued replies and returns a promise only when there is something to wait
   * for (backpressure, a `throttle` fault), so a write the socket takes at once costs no promise and no await
   * (issue 15).
   */
  writeQueued(): Promise<void> | undefined {
    if (this.out.length === 0) return undefined;
    const parts = this.out;
    this.out = [];
    this.queued = 0;
    const data =
      parts.length === 1
        ? parts[0]
        : parts.every((p) => typeof p === 'string')
          ? parts.join('')
          : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
    if (this.throttleBps > 0) return this.writeThrottled(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    if (!this.connection.write(data)) return this.connection.drained();
    return undefined;
  }

  /**
   * The command loop: greets, then reads one line at a time and hands it to {@link onLine} until the
   * connection closes. Replies to pipelined commands are flushed together.
   */
  async run(): Promise<void> {
    this.armPreAuthDeadline();
    if (this.faults && ((await this.injectFault('connect')) || (await this.injectFault('greeting')))) {
      await this.end(this.connection.isClosed ? 'peer-closed' : 'refused');
      await this.closed();
      return;
    }
    await this.greet();
    while (!this.isEnding) {
      // Flush when the client waits for us, or when a pipelining client has made us queue a lot: flush() waits for
      // the socket to drain, so a peer that sends without reading stops being read (bounded memory either way).
      if (!this.reader.hasBufferedLine() || this.queued > REPLY_QUEUE_LIMIT) {
        const writing = this.writeQueued();
        if (writing !== undefined) await writing;
      }
      const r: LineResult = this.reader.tryReadLine() ?? (await this.reader.readLine());
      if (r.kind === 'closed' || this.connection.isClosed) break;
      if (r.kind === 'runaway') {
        this.log.warn('line without end, closing', {});
        await this.onLineTooLong(true);
        break;
      }
      if (r.kind === 'too-long') {
        // Answered as soon as the limit is crossed; the reader skips the rest of the line on the next read.
        this.log.warn('line too long', { max: this.limits.maxLineLength });
        await this.onLineTooLong(false);
        if (!(await this.countError())) break;
        continue;
      }
      if (r.kind === 'bare-lf') {
        this.log.warn('bare LF in a command line', {});
        await this.onBareLf();
        if (!(await this.countError())) break;
        continue;
      }
      // A command that finished synchronously costs no await (issue 15: no microtask per pipelined command).
      const handling = this.onLine(r.line);
      if (handling !== undefined) await handling;
    }
    // Every way out of the loop (runaway line, spent budget, peer gone) ends the connection too.
    await this.end(this.connection.isClosed ? 'peer-closed' : 'closed');
    await this.closed();
  }

  /** Sends the greeting (or, for a refused peer, a refusal and end()). */
  protected abstract greet(): Promise<void>;
  /**
   * Handles one command line (without CRLF). Return a promise while the command is pending, or nothing when it
   * finished synchronously (the loop then reads the next line at once).
   */
  protected abstract onLine(line: Buffer): void | Promise<void>;
  /**
   * Replies to an over-long line, sent as soon as the line crosses the limit (its rest is skipped); `fatal` when
   * the rest ran past the hard limit without a line end and the session is about to close (421 / -ERR / BYE).
   */
  protected abstract override onLineTooLong(fatal: boolean): Promise<void>;
  /**
   * Replies to a command line ended by a bare LF (the line is dropped, never run). The default answers like an
   * over-long line; the built-in protocols send their own syntax error.
   */
  protected async onBareLf(): Promise<void> {
    await this.onLineTooLong(false);
  }
  /**
   * Says how many octets of data follow a line the reader dropped (over-long or ended by a bare LF), judging by its
   * last octets: see `LineReaderOptions.octetsAfterDroppedLine`. Line-only protocols keep the default (none); IMAP
   * answers for a `{N+}` literal announced at the end of the line.
   */
  protected octetsAfterDroppedLine(_tail: Buffer): number | 'end' | undefined {
    return undefined;
  }
  /** Sends the protocol's goodbye for a spent error budget (421 / -ERR / BYE). */
  protected abstract onTooManyErrors(): Promise<void>;
  /** Sends the protocol's goodbye for an idle timeout, then the session ends. */
  protected abstract override onIdleTimeout(): Promise<void>;
  /** Sends the protocol's goodbye when the pre-authentication deadline passed, then ends; defaults to the idle one. */
  protected async onPreAuthTimeout(): Promise<void> {
    await this.onIdleTimeout();
  }
  /** Called once when the session is over (release locks, close backend sessions). */
  protected async closed(): Promise<void> {}

  /**
   * DispatchTarget: a command line that is an HTTP request (a browser sent to this port, as in the ALPACA
   * cross-protocol attacks). Logged at warn; the protocol's {@link httpRequestGoodbye} is sent and the session ends
   * (reason `refused`), so no later line of the request (its headers, a body of commands) is run or echoed. Not
   * counted as a client error: it ends the session by itself.
   */
  refuseHttpRequest(method: string): Promise<void> {
    this.log.warn('HTTP request on a mail port, closing', { method });
    const goodbye = this.httpRequestGoodbye();
    if (goodbye !== undefined) this.send(goodbye);
    return this.end('refused');
  }

  /** The line sent before closing on an HTTP request (CRLF included), or none: the default closes without a word. */
  protected httpRequestGoodbye(): string | undefined {
    return undefined;
  }

  /** Counts a client error. When the budget is spent, says goodbye, ends the session and returns false. */
  async countError(): Promise<boolean> {
    this.errors++;
    if (this.errors < this.limits.maxBadCommands) return true;
    this.log.warn('error budget spent, closing', { errors: this.errors });
    await this.onTooManyErrors();
    await this.end('closed');
    return false;
  }


  /** Dispatch hook: the command's duration, into the metrics. */
  observeCommand(verb: string, seconds: number): void {
    this.metrics?.command(this.protocolLabel, verb, seconds);
  }

  /** Resets the consecutive-error count (called after a successful command). */
  clearErrors(): void {
    this.errors = 0;
  }

  /** Drops the queued replies and destroys the connection without a goodbye (a `disconnect` fault). */
  protected destroyWithoutGoodbye(): void {
    this.out = [];
    this.queued = 0;
    this.ending = true;
    this.connection.destroy('refused');
  }

  /** Flushes and closes the connection. Idempotent. */
  async end(reason: CloseReason = 'closed'): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    await this.flush();
    await this.connection.close(reason);
  }

  /**
   * Starts compression (IMAP COMPRESS=DEFLATE, RFC 4978 §3): writes the replies already queued (the go-ahead) as they
   * are, drops anything the client sent after the command (it must wait for the go-ahead), and compresses both
   * directions from then on. Limits and timeouts are unchanged; they apply to the inflated data.
   */
  startCompression(): void {
    const dropped = this.reader.discardBuffered();
    if (dropped > 0) this.log.warn('discarded data sent before compression started', { octets: dropped });
    const parts = this.out;
    this.out = [];
    this.queued = 0;
    for (const p of parts) this.connection.write(p);
    this.connection.startCompression();
  }

  /**
   * The one STARTTLS/STLS path: flushes the go-ahead reply already queued, drops any plaintext the client sent
   * after the command (never executed: RFC 3207 §4.2, RFC 2595 §3.1), and upgrades in place.
   * Returns false when the handshake failed (the connection is closed by then; send nothing more).
   */
  async startTls(security: ServerSecurity): Promise<boolean> {
    // Material must be ready before the go-ahead leaves: the wrap below has to happen in the same tick.
    if (!security.isPrepared) await security.prepare();
    const dropped = this.reader.discardBuffered();
    if (dropped > 0) this.log.warn('discarded plaintext sent after the TLS command', { octets: dropped });
    // Write the go-ahead and wrap in the same tick: the ClientHello can then only reach the TLS socket.
    const parts = this.out;
    this.out = [];
    this.queued = 0;
    for (const p of parts) this.connection.write(p);
    if (this.abortNextHandshake) {
      // A `tls-abort` fault: the go-ahead is out, and the handshake the client starts is cut off.
      this.abortNextHandshake = false;
      this.ending = true;
      await this.connection.drained();
      this.connection.destroy('tls-failed');
      return false;
    }
    try {
      await this.connection.authenticateAsServer(security);
      return true;
    } catch (err) {
      if (err instanceof TlsHandshakeError) {
        this.ending = true;
        return false;
      }
      throw err;
    }
  }
}

/** What {@link TextSession.flush} returns when the socket took everything at once: one settled promise for all. */
const SETTLED: Promise<void> = Promise.resolve();
