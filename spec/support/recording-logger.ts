import type { Logger } from '../../lib/log/logger.js';

/** One recorded log call, with the metadata of every `child()` merged in. */
export interface LogRecord {
  readonly level: 'error' | 'warn' | 'info' | 'debug';
  readonly message: string;
  readonly meta: Record<string, unknown>;
}

/**
 * A {@link Logger} that keeps every line in memory (no output), for specs that assert a log line. Bind it as the
 * `Logger` token; children share the parent's record list. `debug` is recorded only when `debug` is true.
 */
export class RecordingLogger implements Logger {
  constructor(
    readonly records: LogRecord[] = [],
    private readonly base: Record<string, unknown> = {},
    private readonly debugOn = false,
  ) {}
  get isDebugEnabled(): boolean {
    return this.debugOn;
  }
  error(message: string, meta?: Record<string, unknown>): void {
    this.records.push({ level: 'error', message, meta: { ...this.base, ...meta } });
  }
  warn(message: string, meta?: Record<string, unknown>): void {
    this.records.push({ level: 'warn', message, meta: { ...this.base, ...meta } });
  }
  info(message: string, meta?: Record<string, unknown>): void {
    this.records.push({ level: 'info', message, meta: { ...this.base, ...meta } });
  }
  debug(message: string, meta?: Record<string, unknown>): void {
    if (this.debugOn) this.records.push({ level: 'debug', message, meta: { ...this.base, ...meta } });
  }
  child(meta: Record<string, unknown>): Logger {
    return new RecordingLogger(this.records, { ...this.base, ...meta }, this.debugOn);
  }
  /** Records at `level` whose message is `message`. */
  find(level: LogRecord['level'], message: string): LogRecord[] {
    return this.records.filter((r) => r.level === level && r.message === message);
  }
}
