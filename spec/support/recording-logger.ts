import type { Logger } from '../../lib/log/logger.js';

/** One line a {@link RecordingLogger} saw: level, fixed phrase, and the metadata of the line and its child loggers. */
export interface LogRecord {
  readonly level: 'error' | 'warn' | 'info' | 'debug';
  readonly message: string;
  readonly meta: Readonly<Record<string, unknown>>;
}

/**
 * A Logger that keeps every line in memory, for specs that assert what the server decided (a handshake refused
 * `rejected-by-policy`, the policy errors of an accepted one). Rebind `Logger` to it before anything resolves.
 */
export class RecordingLogger implements Logger {
  readonly isDebugEnabled = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly records: LogRecord[] = [],
    private readonly bound: Readonly<Record<string, unknown>> = {},
    private readonly root?: RecordingLogger,
  ) {}

  error(message: string, meta?: Record<string, unknown>): void {
    this.add('error', message, meta);
  }
  warn(message: string, meta?: Record<string, unknown>): void {
    this.add('warn', message, meta);
  }
  info(message: string, meta?: Record<string, unknown>): void {
    this.add('info', message, meta);
  }
  debug(message: string, meta?: Record<string, unknown>): void {
    // Wire traces (`C: …`, `S: …`) are not recorded; the per-connection steps (`connection accepted`, `tls
    // established`, debug since issue 15's one-line-per-connection change) are.
    if (message.startsWith('C: ') || message.startsWith('S: ')) return;
    this.add('debug', message, meta);
  }
  child(meta: Record<string, unknown>): Logger {
    return new RecordingLogger(this.records, { ...this.bound, ...meta }, this.root ?? this);
  }

  /** Records with this message (at this level, when given), in order. */
  find(message: string): LogRecord[];
  find(level: LogRecord['level'], message: string): LogRecord[];
  find(levelOrMessage: string, message?: string): LogRecord[] {
    if (message === undefined) return this.records.filter((r) => r.message === levelOrMessage);
    return this.records.filter((r) => r.level === levelOrMessage && r.message === message);
  }

  /** Resolves with the first record with this message, waiting for it (bounded by `timeoutMs`). */
  async next(message: string, timeoutMs = 5000): Promise<LogRecord> {
    const root = this.root ?? this;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.records.find((r) => r.message === message);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${message}" logged; saw ${JSON.stringify(this.records.map((r) => r.message))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        root.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private add(level: LogRecord['level'], message: string, meta?: Record<string, unknown>): void {
    this.records.push({ level, message, meta: { ...this.bound, ...meta } });
    const root = this.root ?? this;
    const w = root.waiters;
    root.waiters = [];
    for (const f of w) f();
  }
}
