/**
 * The ground floor of every text session ({@link LimitedSession}): the connection, its line reader and the session's
 * limits, with the timers that enforce them (idle, whole line, body, pre-authentication) and the signal that cuts
 * waits short when the peer leaves. `text-session.ts` re-exports {@link SessionLimits}.
 */
import type { Connection } from '../core/connection.js';
import type { Logger } from '../log/logger.js';
import { BODY_TIMEOUT_MS, IDLE_TIMEOUT_MS, MAX_BAD_COMMANDS, MAX_LINE_LENGTH } from './limits.js';
import { LineReader } from './line-reader.js';

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
   * Longest time in ms a session may stay before authentication ({@link LimitedSession.isPastPreAuth}) from its
   * greeting; then the protocol's goodbye (0 or absent: none). Dovecot closes an unauthenticated login after 3 min.
   */
  preAuthTimeoutMs?: number;
}

/**
 * The base of `LoginSession`, and so of `TextSession`: owns the connection, the line reader and the limits, and runs
 * the idle, whole-line, body and pre-authentication timers, each ending in the protocol's goodbye. The hooks those
 * timers call are declared here and defined (or left abstract) by `TextSession`.
 */
export abstract class LimitedSession {
  /** Reads lines, literals and bodies from the connection. */
  readonly reader: LineReader;
  readonly log: Logger;
  /** Made on first use by {@link gone} (most sessions never sleep, and an abort costs a DOMException). */
  private goneController?: AbortController;
  /** True once the connection emitted `'close'`. */
  private hasGone = false;
  private timedOut = false;
  protected readonly limits: Required<SessionLimits>;
  /** Protocol name for metrics labels: the listener's name without its `s` (`smtps` → `smtp`). */
  protected protocolLabel = 'unknown';

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
   * limits set none. Called by `SessionHandler` before `TextSession.run`.
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
  protected armPreAuthDeadline(): void {
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
  protected get gone(): AbortSignal {
    if (!this.goneController) {
      this.goneController = new AbortController();
      if (this.hasGone) this.goneController.abort();
    }
    return this.goneController.signal;
  }

  /** `TextSession.isEnding`: the timers do nothing once the session is ending. */
  abstract get isEnding(): boolean;
  /** `TextSession.onIdleTimeout`, called by the idle, line and body timers. */
  protected abstract onIdleTimeout(): Promise<void>;
  /** `TextSession.onPreAuthTimeout`, called by the pre-authentication deadline. */
  protected abstract onPreAuthTimeout(): Promise<void>;
  /** `TextSession.octetsAfterDroppedLine`, handed to the line reader. */
  protected abstract octetsAfterDroppedLine(tail: Buffer): number | 'end' | undefined;
}

/** The whole-line deadline: the command timeout when set and shorter, else the idle timeout. */
function lineDeadline(limits: Required<SessionLimits>): number {
  const { idleTimeoutMs: idle, commandTimeoutMs: command } = limits;
  return command > 0 && (idle === 0 || command < idle) ? command : idle;
}
