/**
 * The one failed-login policy every login command and SASL mechanism goes through, and the SASL continuation reader
 * ({@link LoginSession}, the base of `TextSession`), with what `SessionHandler` sets for them: the shared throttle,
 * the metrics, the SASL registry and the user directory. `text-session.ts` re-exports {@link LoginPolicy} and
 * {@link LoginCheck}.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CloseReason } from '../core/connection.js';
import type { AuthRequest, Authenticator } from '../contracts/authenticator.js';
import { SASL_RESPONSE_MAX_LENGTH } from './limits.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { SessionMetrics } from './session-metrics.js';
import type { LineResult } from './line-reader.js';
import { BUILTIN_SASL_MECHANISMS } from './sasl/builtin-mechanisms.js';
import type { ContinuationResult } from './sasl/sasl-engine.js';
import type { SaslMechanism } from './sasl/sasl-mechanism.js';
import { LimitedSession } from './limited-session.js';

/** The one failed-login policy's knobs: the delay before a refusal, and the failures that end the session. */
export interface LoginPolicy {
  readonly delayMs: number;
  readonly maxFailures: number;
}

/**
 * What {@link LoginSession.checkLogin} decided: the canonical user, or why not (`throttled`: refused before any
 * check; `temporary`: the Authenticator could not decide; `invalid`: wrong credentials, answered after the delay,
 * `isLast` when the session must close after the refusal).
 */
export type LoginCheck =
  | { readonly ok: true; readonly username: string }
  | { readonly ok: false; readonly why: 'throttled' | 'temporary' | 'invalid'; readonly isLast: boolean };

/**
 * The base of `FaultSession`, and so of `TextSession`: the failed-login policy ({@link checkLogin} and its parts) and
 * the SASL continuation reader ({@link readContinuation}), called by the protocols' login commands. The session members
 * they use that `TextSession` defines are declared here.
 */
export abstract class LoginSession extends LimitedSession {
  private loginFailures = 0;
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

  /** `TextSession.send`. */
  abstract send(data: string | Buffer): void;
  /** `TextSession.flush`. */
  abstract flush(): Promise<void>;
  /** `TextSession.end`. */
  abstract end(reason?: CloseReason): Promise<void>;
  /** `TextSession.onLineTooLong`: {@link readContinuation} sends the fatal goodbye for a line that never ends. */
  protected abstract onLineTooLong(fatal: boolean): Promise<void>;
}
