/**
 * The reports `RelayDsnNoticeSender` hands to the relay, held in memory and sent one at a time in the background, so
 * that a client's `250` never waits for the relay, and a relay that is down or slow costs a retry instead of the report.
 */
import type { Logger } from '../log/logger.js';
import type { DsnNotice } from './dsn-notices.js';

/** Waits before each retry of a report the relay did not take (RFC 5321 §4.5.4.1 suggests retrying for days; these are a process's hours). */
export const DSN_RELAY_RETRY_DELAYS_MS: readonly number[] = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000];
/** Reports held for the relay at once; past that a new one is dropped (and logged). */
export const DSN_RELAY_MAX_QUEUED = 1_000;
/** How long {@link DsnRelayQueue.close} waits for the report being sent. */
export const DSN_RELAY_CLOSE_WAIT_MS = 5_000;

/** {@link DsnRelayQueue}'s schedule and bound. */
export interface DsnRelayQueueOptions {
  /** One wait per retry (default {@link DSN_RELAY_RETRY_DELAYS_MS}): a report gets `length + 1` attempts. */
  readonly retryDelaysMs?: readonly number[];
  /** Reports held at once (default {@link DSN_RELAY_MAX_QUEUED}). */
  readonly maxQueued?: number;
}

interface Waiting {
  readonly notice: DsnNotice;
  /** Attempts made so far. */
  attempts: number;
  /** When the next attempt may start (ms since the epoch). */
  dueAt: number;
}

/** True for a relay's permanent refusal (a 5xx reply, as nodemailer reports it in `responseCode`): no retry helps. */
export function isPermanentRefusal(err: unknown): boolean {
  const code = (err as { responseCode?: unknown } | undefined)?.responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/**
 * Reports waiting for the relay: sent one at a time, the earliest due first; a failed attempt is retried after the
 * next wait of the schedule, a permanent refusal (5xx) or the last failed attempt drops the report with a warn line.
 * Everything lives in this process: {@link close} (the container's shutdown) logs what was never relayed.
 */
export class DsnRelayQueue {
  private readonly waiting: Waiting[] = [];
  private readonly delays: readonly number[];
  private readonly maxQueued: number;
  private sending?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly deliver: (notice: DsnNotice, attempt: number) => Promise<void>,
    options: DsnRelayQueueOptions,
    private readonly log: Logger,
  ) {
    this.delays = options.retryDelaysMs ?? DSN_RELAY_RETRY_DELAYS_MS;
    this.maxQueued = options.maxQueued ?? DSN_RELAY_MAX_QUEUED;
  }

  /** Reports not yet relayed (waiting or being sent). */
  get size(): number {
    return this.waiting.length;
  }

  /** Queues a report; it is sent as soon as the ones before it are done. */
  add(notice: DsnNotice): void {
    if (this.closed) {
      this.log.warn('delivery notice dropped', { to: notice.to, reason: 'shutting down', attempts: 0 });
      return;
    }
    if (this.waiting.length >= this.maxQueued) {
      this.log.warn('delivery notice dropped', { to: notice.to, reason: 'queue full', max: this.maxQueued, attempts: 0 });
      return;
    }
    this.waiting.push({ notice, attempts: 0, dueAt: 0 });
    this.pump();
  }

  /** Stops retrying, waits a little for the report being sent, and logs how many reports were never relayed. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.sending) {
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([this.sending, new Promise<void>((r) => (bound = setTimeout(r, DSN_RELAY_CLOSE_WAIT_MS)))]);
      clearTimeout(bound);
    }
    if (this.waiting.length > 0) {
      this.log.warn('delivery notices not relayed', { count: this.waiting.length, to: this.waiting.map((w) => w.notice.to).join(',') });
      this.waiting.length = 0;
    }
  }

  /** Starts the next due report unless one is being sent; else sets one timer for the earliest due. */
  private pump(): void {
    if (this.sending || this.closed || this.waiting.length === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    let next = this.waiting[0]!;
    for (const w of this.waiting) if (w.dueAt < next.dueAt) next = w;
    if (next.dueAt > now) {
      this.timer = setTimeout(() => this.pump(), next.dueAt - now);
      this.timer.unref(); // a pending retry does not keep the process alive
      return;
    }
    this.sending = this.attempt(next).finally(() => {
      this.sending = undefined;
      this.pump();
    });
  }

  private async attempt(w: Waiting): Promise<void> {
    w.attempts++;
    try {
      await this.deliver(w.notice, w.attempts);
      this.remove(w);
    } catch (err) {
      const reason = (err as Error)?.message ?? String(err);
      if (isPermanentRefusal(err)) {
        this.remove(w);
        this.log.warn('delivery notice dropped', { to: w.notice.to, reason, attempts: w.attempts, refused: true });
        return;
      }
      const wait = this.delays[w.attempts - 1];
      if (wait === undefined) {
        this.remove(w);
        this.log.warn('delivery notice dropped', { to: w.notice.to, reason, attempts: w.attempts });
        return;
      }
      w.dueAt = Date.now() + wait;
      this.log.warn('delivery notice failed', { to: w.notice.to, reason, attempt: w.attempts, retryInMs: wait });
    }
  }

  private remove(w: Waiting): void {
    const i = this.waiting.indexOf(w);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}
