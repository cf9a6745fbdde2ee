import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection, CloseReason } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import { TlsHandshakeError } from '../core/tls-errors.js';
import { debugEnabled, type Logger } from '../log/logger.js';
import { BODY_TIMEOUT_MS, IDLE_TIMEOUT_MS, MAX_BAD_COMMANDS, MAX_LINE_LENGTH, REPLY_QUEUE_LIMIT, SASL_RESPONSE_MAX_LENGTH, THROTTLE_TICK_MS } from './limits.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { SessionMetrics } from './session-metrics.js';
import { LineReader, type LineResult } from './line-reader.js';
import type { FaultAction, FaultInjector, FaultStage } from './faults.js';
import type { AuthRequest, Authenticator } from '../contracts/authenticator.js';
import { BUILTIN_SASL_MECHANISMS } from './sasl/builtin-mechanisms.js';
import type { ContinuationResult } from './sasl/sasl-engine.js';
import type { SaslMechanism } from './sasl/sasl-mechanism.js';

/** Limits every text session honours. */
export interface SessionLimits {
  /** Longest command line without CRLF. */
  maxLineLength?: number;
  /** Client errors in a row before the session ends. */
  maxBadCommands?: number;
  /** Idle timeout in ms while waiting for a command: both silence and the wait for one complete line. */
  idleTimeoutMs?: number;
  /** Whole-transfer bound in ms for one body or literal (DATA, a BDAT chunk, an IMAP literal). */
  bodyTimeoutMs?: number;
  /**
   * Longest time in ms one command line may take from its first octet to its CRLF (default: `idleTimeoutMs`; the
   * smaller of the two applies).
   */
  commandTimeoutMs?: number;
  /**
   * Longest time in ms a session may stay before authentication ({@link TextSession.isPastPreAuth}) from its
   * greeting; then the protocol's goodbye (0 or absent: none). Dovecot closes an unauthenticated login after 3 min.
   */
  preAuthTimeoutMs?: number;
}

/** The one failed-login policy's knobs: the delay before a refusal, and the failures that end the session. */
export interface LoginPolicy {
  readonly delayMs: number;
  readonly maxFailures: number;
}

/**
 * What {@link TextSession.checkLogin} decided: the canonical user, or why not (`throttled`: refused before any
 * check; `temporary`: the Authenticator could not decide; `invalid`: wrong credentials, answered after the delay,
 * `isLast` when the session must close after the refusal).
 */
export type LoginCheck =
  | { readonly ok: true; readonly username: string }
  | { readonly ok: false; readonly why: 'throttled' | 'temporary' | 'invalid'; readonly isLast: boolean };

/**
 * Base of the SMTP, POP3 and IMAP sessions (and yours): owns the connection, the line reader, the reply
 * buffer, the error budget, idle timeouts and the one STARTTLS path.
 *
 * Replies are queued with {@link send} and written with one `write` per pipelined group: the queue is flushed
 * whenever no further complete command is buffered (RFC 2920 §3.1 lets the server batch replies that way).
 *
 * Lifecycle: `TcpServer` calls the protocol's `handle()`, which constructs the session and awaits {@link run};
 * `run` returns when the connection has closed. {@link end} says goodbye and closes.
 */
export abstract class TextSession {
  /** Reads lines, literals and bodies from the connection. */
  readonly reader: LineReader;
  readonly log: Logger;
  private out: Array<string | Buffer> = [];
  /** Length of `out` (string lengths approximate octets; only compared with REPLY_QUEUE_LIMIT). */
  private queued = 0;
  private errors = 0;
  private loginFailures = 0;
  /** Made on first use by {@link gone} (most sessions never sleep, and an abort costs a DOMException). */
  private goneController?: AbortController;
  /** True once the connection emitted `'close'`. */
  private hasGone = false;
  private ending = false;
  private timedOut = false;
  protected readonly limits: Required<SessionLimits>;
  /** Failed-login counters shared across connections (set by `SessionHandler`); none: per-connection delays only. */
  authThrottle?: AuthThrottle;
  /** Where commands, logins and messages are counted (set by `SessionHandler`); none: not counted. */
  metrics?: SessionMetrics;
  /** The SASL registry (set by `SessionHandler` from the `SaslMechanism` multi-binding); the built-ins otherwise. */
  saslMechanisms: readonly SaslMechanism[] = BUILTIN_SASL_MECHANISMS;
  /**
   * Run after every successful login, before the session counts as authenticated: the container's bridge that makes
   * sure the user exists in the store (set by `SessionHandler`); none: nothing runs.
   */
  userDirectory?: (username: string) => Promise<void>;
  /** Protocol name for metrics labels: the listener's name without its `s` (`smtps` → `smtp`). */
  private protocolLabel = 'unknown';
  /** Fault injection ("chaos"), set by the SessionHandler before {@link run}; none by default. */
  faults?: { readonly injector: FaultInjector; readonly protocol: string };
  /** Output limit set by a `throttle` fault, in octets per second; 0 = unlimited. */
  private throttleBps = 0;
  /** Set by a `tls-abort` fault: the next STARTTLS/STLS handshake is cut off. */
  private abortNextHandshake = false;

  constructor(
    readonly connection: Connection,
    limits: SessionLimits = {},
  ) {
    this.limits = {
      maxLineLength: limits.maxLineLength ?? MAX_LINE_LENGTH,
      maxBadCommands: limits.maxBadCommands ?? MAX_BAD_COMMANDS,
      idleTimeoutMs: limits.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      bodyTimeoutMs: limits.bodyTimeoutMs ?? BODY_TIMEOUT_MS,
      commandTimeoutMs: limits.commandTimeoutMs ?? 0,
      preAuthTimeoutMs: limits.preAuthTimeoutMs ?? 0,
    };
    this.log = connection.log;
    // The same limit bounds silence (the socket timer) and the wait for one complete line (a client trickling
    // bytes of a line that never ends), so a slowloris gets no more time than a silent peer.
    this.reader = new LineReader(connection, {
      maxLineLength: this.limits.maxLineLength,
      lineTimeoutMs: lineDeadline(this.limits),
      // Bound methods rather than closures per session: V8 keeps a closure's optimized code only while a closure that
      // ran it is alive, so per-connection closures were recompiled after full collections (issue 15).
      onLineTimeout: this.timeOut.bind(this, 'line'),
      bodyTimeoutMs: this.limits.bodyTimeoutMs,
      onBodyTimeout: this.timeOut.bind(this, 'body'),
      octetsAfterDroppedLine: this.octetsAfterDroppedLine.bind(this),
    });
    connection.setIdleTimeout(this.limits.idleTimeoutMs);
    connection.on('timeout', this.timeOut.bind(this, 'idle'));
    connection.once('close', this.connectionGone.bind(this));
  }

  private connectionGone(): void {
    this.hasGone = true;
    this.goneController?.abort();
    if (this.preAuthTimer !== undefined) clearTimeout(this.preAuthTimer);
  }

  /**
   * Applies a listener's pre-authentication and whole-command deadlines (`TcpServerOptions`) where the session's own
   * limits set none. Called by `SessionHandler` before {@link run}.
   */
  applyListenerLimits(listener: { name?: string; preAuthTimeoutMs?: number; commandTimeoutMs?: number }): void {
    if (listener.name) this.protocolLabel = listener.name.endsWith('s') ? listener.name.slice(0, -1) : listener.name;
    if (this.limits.preAuthTimeoutMs === 0 && listener.preAuthTimeoutMs) this.limits.preAuthTimeoutMs = listener.preAuthTimeoutMs;
    if (this.limits.commandTimeoutMs === 0 && listener.commandTimeoutMs) {
      this.limits.commandTimeoutMs = listener.commandTimeoutMs;
      this.reader.setLineTimeout(lineDeadline(this.limits));
    }
  }

  /**
   * True once the session is past the pre-authentication deadline's reach: logged in (POP3, IMAP), or
   * authenticated or in a mail transaction (SMTP, where an unauthenticated client delivering mail is normal).
   * The default is false; a protocol without logins should leave `preAuthTimeoutMs` unset.
   */
  protected isPastPreAuth(): boolean {
    return false;
  }

  /** Runs the protocol's idle goodbye once, whichever timer fired first. */
  private timeOut(kind: 'idle' | 'line' | 'body' | 'pre-auth'): void {
    if (this.timedOut || this.isEnding) return;
    this.timedOut = true;
    if (kind === 'idle') this.log.info('idle timeout', { ms: this.limits.idleTimeoutMs });
    else if (kind === 'line') this.log.warn('line not completed in time, closing', { ms: lineDeadline(this.limits), buffered: this.reader.bufferedLength });
    else if (kind === 'pre-auth') this.log.warn('not authenticated in time, closing', { ms: this.limits.preAuthTimeoutMs });
    else this.log.warn('body not completed in time, closing', { ms: this.limits.bodyTimeoutMs });
    void (kind === 'pre-auth' ? this.onPreAuthTimeout() : this.onIdleTimeout());
  }

  /** Arms the pre-authentication deadline (from the greeting); it does nothing if the session got past it. */
  private armPreAuthDeadline(): void {
    const ms = this.limits.preAuthTimeoutMs;
    if (ms <= 0) return;
    if (this.hasGone) return;
    // Cleared by the constructor's close listener (no second listener per connection).
    this.preAuthTimer = setTimeout(this.preAuthExpired.bind(this), ms);
  }

  private preAuthExpired(): void {
    if (!this.isPastPreAuth()) this.timeOut('pre-auth');
  }

  private preAuthTimer?: NodeJS.Timeout;

  /** True once the connection has emitted `'close'`. */
  protected get hasClosed(): boolean {
    return this.hasGone;
  }

  /** Aborted when the connection closes: cuts timers (like the failed-login delay) short. */
  private get gone(): AbortSignal {
    if (!this.goneController) {
      this.goneController = new AbortController();
      if (this.hasGone) this.goneController.abort();
    }
    return this.goneController.signal;
  }

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

  /** Writes in slices of a tenth of the allowed rate, one slice per 100 ms (a `throttle` fault: a slow link). */
  private async writeThrottled(data: Buffer): Promise<void> {
    const slice = Math.max(1, Math.floor(this.throttleBps / 10));
    for (let i = 0; i < data.length && !this.connection.isClosed; i += slice) {
      if (i > 0) await sleep(THROTTLE_TICK_MS, undefined, { signal: this.gone }).catch(() => undefined);
      if (!this.connection.write(data.subarray(i, i + slice))) await this.connection.drained();
    }
  }

  /**
   * Asks the fault injector about `stage` and applies its answer. Resolves true when the stage was consumed (a
   * reply was sent instead, or the connection is gone): the caller then does nothing more for it. No rule fires
   * (the common case): `false` at once, with no promise (issue 15: asked before every MAIL and RCPT).
   */
  injectFault(stage: FaultStage, subjects: readonly string[] = []): boolean | Promise<boolean> {
    if (!this.faults) return false;
    const action = this.faults.injector.decide(this.faults.protocol, stage, subjects);
    if (!action) return false;
    this.log.info('fault injected', { stage, action: action.kind });
    return this.applyFault(stage, action);
  }

  private async applyFault(stage: FaultStage, action: FaultAction): Promise<boolean> {
    switch (action.kind) {
      case 'delay':
        await this.flush();
        await sleep(action.ms, undefined, { signal: this.gone }).catch(() => undefined);
        return this.isEnding;
      case 'throttle':
        this.throttleBps = action.bytesPerSecond;
        return false;
      case 'tls-abort':
        this.abortNextHandshake = true;
        return false;
      case 'disconnect':
        this.out = [];
        this.queued = 0;
        this.ending = true;
        this.connection.destroy('refused');
        return true;
      case 'reply':
        await this.sendFaultReply(action.text, stage);
        if (stage === 'connect' || stage === 'greeting') await this.end('refused');
        return true;
    }
  }

  /**
   * Sends a fault's reply line in the protocol's framing (IMAP adds the command's tag) and applies the protocol's
   * rule for it (SMTP closes after `421`). The default sends the line as it is.
   */
  protected async sendFaultReply(text: string, _stage: FaultStage): Promise<void> {
    this.send(text + '\r\n');
  }

  /** The fault stage of a command about to run (and what an address pattern matches), or undefined. */
  protected faultStage(_verb: string, _args: string): { stage: FaultStage; subjects?: string[] } | undefined {
    return undefined;
  }

  /** DispatchTarget: runs the fault stage of a command whose guards passed; true when the command must not run. */
  beforeCommand(verb: string, args: string): boolean | Promise<boolean> {
    if (!this.faults) return false;
    const s = this.faultStage(verb, args);
    return s ? this.injectFault(s.stage, s.subjects) : false;
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
  protected abstract onLineTooLong(fatal: boolean): Promise<void>;
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
  protected abstract onIdleTimeout(): Promise<void>;
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

  /**
   * Records a failed login (logged at info with the user name, never the secret), then waits `delayMs` — a timer,
   * so other sessions run on; cut short if the peer leaves — to slow password guessing. Resolves true once
   * `maxFailures` is reached: the caller sends its refusal, then ends the session.
   */
  async recordLoginFailure(meta: { user: string; mechanism: string }, policy: { delayMs: number; maxFailures: number }): Promise<boolean> {
    this.loginFailures++;
    // Across connections the delay grows with the address's (or account's) failures: see AuthThrottle.failure.
    const delayMs = this.authThrottle ? this.authThrottle.failure(this.connection.remoteAddress, meta.user, policy.delayMs) : policy.delayMs;
    this.log.info('auth failed', { ...meta, failures: this.loginFailures, delayMs });
    this.metrics?.auth(this.protocolLabel, meta.mechanism, 'failure');
    await sleep(delayMs, undefined, { signal: this.gone }).catch(() => undefined);
    if (this.loginFailures < policy.maxFailures) return false;
    this.log.warn('too many failed logins, closing', { failures: this.loginFailures });
    return true;
  }

  /**
   * Asks the shared throttle, before any credential is checked, whether this login attempt is refused for now (too
   * many failures from this address, or on this account from addresses it never logged in from). Logs the refusal
   * at warn; the caller sends its protocol's temporary refusal (`454 4.7.0`, `-ERR [AUTH]`, `NO [UNAVAILABLE]`).
   */
  isLoginThrottled(meta: { user: string; mechanism: string }): boolean {
    const why = this.authThrottle?.isRefused(this.connection.remoteAddress, meta.user);
    if (why === undefined) return false;
    this.log.warn('login refused: too many failed logins', { ...meta, by: why });
    this.metrics?.auth(this.protocolLabel, meta.mechanism, 'throttled');
    return true;
  }

  /**
   * The one failed-login policy, for every login command and SASL mechanism: the shared throttle first (nothing is
   * checked when it refuses), then the Authenticator (skipped when `rejected`: the mechanism itself refused, as
   * EXTERNAL does for an unmapped certificate), then on failure the delay and the per-session count
   * ({@link recordLoginFailure}). On success the caller runs its login hooks and then calls {@link recordLoginSuccess}
   * at its protocol's one completion point; it only frames the replies.
   */
  async checkLogin(authenticator: Authenticator, request: AuthRequest, policy: LoginPolicy, rejected = false): Promise<LoginCheck> {
    const meta = { user: request.username, mechanism: request.mechanism };
    if (this.isLoginThrottled(meta)) return { ok: false, why: 'throttled', isLast: false };
    const result = rejected ? ({ ok: false, reason: 'invalid-credentials' } as const) : await authenticator.authenticate(request);
    if (result.ok) {
      await this.userDirectory?.(result.username);
      // The success is recorded by the caller once its login hooks accepted (recordLoginSuccess): a login a hook
      // refuses must not forgive the account's failures nor mark the address as one its owner uses.
      return { ok: true, username: result.username };
    }
    if (result.reason === 'temporary-failure') {
      this.log.warn('auth temporarily unavailable', meta);
      return { ok: false, why: 'temporary', isLast: false };
    }
    return { ok: false, why: 'invalid', isLast: await this.recordLoginFailure(meta, policy) };
  }

  /**
   * The one SASL continuation reader: queues `prompt` (the protocol's framed challenge, `334 …` or `+ …`, CRLF
   * included), flushes, and reads the client's response line (up to {@link SASL_RESPONSE_MAX_LENGTH} octets, or the
   * command-line limit when that is larger), which is never logged (`C: [redacted]`). A line of
   * just `*` is the cancel. An over-long line is reported as soon as it crosses the limit (its rest is skipped); a
   * line that never ends gets the protocol's fatal over-long goodbye and the session ends (`closed`).
   */
  async readContinuation(prompt: string): Promise<ContinuationResult> {
    this.send(prompt);
    await this.flush();
    const limit = Math.max(this.limits.maxLineLength, SASL_RESPONSE_MAX_LENGTH);
    const previous = this.reader.setMaxLineLength(limit);
    let r: LineResult;
    try {
      r = await this.reader.readLine();
    } finally {
      this.reader.setMaxLineLength(previous);
    }
    if (r.kind === 'closed' || this.connection.isClosed) return { kind: 'closed' };
    if (r.kind === 'runaway') {
      this.log.warn('line without end, closing', {});
      await this.onLineTooLong(true);
      await this.end('closed');
      return { kind: 'closed' };
    }
    if (r.kind === 'too-long') {
      this.log.warn('line too long', { max: limit });
      return { kind: 'too-long' };
    }
    if (r.kind === 'bare-lf') {
      this.log.warn('bare LF in a command line', {});
      return { kind: 'bare-lf' };
    }
    this.log.debug('C: [redacted]');
    const text = r.line.toString('latin1').trim();
    return text === '*' ? { kind: 'cancelled' } : { kind: 'line', text };
  }

  /** Records a successful login with the shared throttle (never delayed) and the metrics. */
  recordLoginSuccess(user: string, mechanism: string): void {
    this.authThrottle?.success(this.connection.remoteAddress, user);
    this.metrics?.auth(this.protocolLabel, mechanism, 'success');
  }

  /** Dispatch hook: the command's duration, into the metrics. */
  observeCommand(verb: string, seconds: number): void {
    this.metrics?.command(this.protocolLabel, verb, seconds);
  }

  /** Resets the consecutive-error count (called after a successful command). */
  clearErrors(): void {
    this.errors = 0;
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

/** The whole-line deadline: the command timeout when set and shorter, else the idle timeout. */
function lineDeadline(limits: Required<SessionLimits>): number {
  const { idleTimeoutMs: idle, commandTimeoutMs: command } = limits;
  return command > 0 && (idle === 0 || command < idle) ? command : idle;
}
