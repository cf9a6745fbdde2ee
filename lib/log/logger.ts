import type { ServiceIdentifier } from 'inversify';
import { createRequire } from 'node:module';
import type winston from 'winston';

/**
 * The logging surface Postern uses everywhere: winston's leveled methods plus `child()`.
 *
 * Messages are fixed phrases; values go in the metadata object (`log.info('tls established', { protocol })`).
 * Never pass passwords, AUTH payloads, private keys or message bodies.
 */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  /** A logger whose every line carries `meta` (e.g. `{ cid, proto, remote }`). */
  child(meta: Record<string, unknown>): Logger;
  /**
   * Whether `debug` lines are written, so callers may skip building wire traces: a boolean, or a method as on a
   * winston `Logger` (which can be bound as is). Absent means "assume enabled". Read it with {@link debugEnabled}.
   */
  readonly isDebugEnabled?: boolean | (() => boolean);
}

/** True unless `log` says its `debug` lines are dropped (works for Postern's loggers and winston's alike). */
export function debugEnabled(log: Logger): boolean {
  const flag = log.isDebugEnabled;
  return typeof flag === 'function' ? flag.call(log) : flag !== false;
}
/** DI token for the root {@link Logger}. */
export const Logger = Symbol.for('postern.Logger') as ServiceIdentifier<Logger>;

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** `error` | `warn` | `info` | `debug` (default `info`, or `POSTERN_LOG_LEVEL`). */
  level?: string;
  /** `text` (readable, default) or `json` (one JSON object per line). */
  format?: 'text' | 'json';
  /** Send nothing anywhere (tests). */
  silent?: boolean;
}

/** Metadata keys whose values are replaced by `[redacted]` before any transport sees them. */
const SECRET_KEYS = new Set(['password', 'pass', 'passphrase', 'key', 'privateKey', 'secret', 'token', 'payload', 'body']);

/** Copies plain objects and arrays with secret keys replaced, to a bounded depth; other values pass through. */
function scrub(value: unknown, depth: number): unknown {
  if (depth > 5 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value; // Errors, Buffers, certificates: as they are
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : scrub(v, depth + 1);
  return out;
}

/** winston (CommonJS), loaded on the first non-silent logger so that `import 'postern'` and silent test doubles skip it. */
let loaded: { w: typeof winston; redact: () => winston.Logform.Format; textLine: winston.Logform.Format } | undefined;

function loadWinston(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const w = createRequire(import.meta.url)('winston') as typeof winston;
  const redact = w.format((info) => {
  const record = info as Record<string, unknown>;
    for (const k of Object.keys(record)) {
      record[k] = SECRET_KEYS.has(k) ? '[redacted]' : scrub(record[k], 1);
    }
    return info;
  });

  const textLine = w.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
  const meta = Object.entries(rest)
      .filter(([k, v]) => typeof k === 'string' && v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${String(timestamp)} ${String(level)} ${String(message)}${meta ? ' ' + meta : ''}`;
  });
  loaded = { w, redact, textLine };
  return loaded;
}

/**
 * Creates the root logger (winston formats and its Console transport). Called once per process by `createContainer` (or by you when you
 * bind your own). Output goes to stderr so that stdout stays free for the CLI's ready lines.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  if (options.silent === true) return SILENT;
  const { w, redact, textLine } = loadWinston();
  const level = options.level ?? process.env.POSTERN_LOG_LEVEL ?? 'info';
  const format =
    options.format === 'json'
      ? w.format.combine(redact(), w.format.timestamp(), w.format.json())
      : w.format.combine(redact(), w.format.timestamp(), textLine);
  const transport = new w.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] });
  const threshold = LEVELS[level] ?? LEVELS.info!;
  const sink: Sink = {
    enabled: (lvl) => LEVELS[lvl]! <= threshold,
    write: (lvl, message, meta) => {
      // winston's own formats and Console transport, called directly: a winston Logger would pass every line through
      // two object-mode streams (its Transform and the transport's Writable), which cost several times the
      // formatting itself on a per-connection line (issue 15's profile of accept → handshake → greeting).
      const info = format.transform({ ...meta, level: lvl, message, [LEVEL]: lvl } as winston.Logform.TransformableInfo, format.options);
      if (info !== false) transport.log!(info, noop);
    },
  };
  return new LevelGate(sink, {});
}

/** winston's npm levels that Postern uses. */
const LEVELS: Readonly<Record<string, number>> = { error: 0, warn: 1, info: 2, debug: 3 };
/** triple-beam's key for the level a transport filters on (what winston's logger sets on every info object). */
const LEVEL = Symbol.for('level');
const noop = (): void => undefined;

/** Where a {@link LevelGate} sends enabled lines. */
interface Sink {
  enabled(level: string): boolean;
  write(level: string, message: string, meta: Record<string, unknown>): void;
}

/**
 * The Logger over a {@link Sink}: disabled levels are dropped before any allocation, and `child()` only remembers its
 * metadata (merged into each line when one is written), so a per-connection child costs one small object.
 */
class LevelGate implements Logger {
  constructor(
    private readonly sink: Sink,
    private readonly bound: Readonly<Record<string, unknown>>,
  ) {}
  private write(level: string, message: string, meta: Record<string, unknown> | undefined): void {
    if (this.sink.enabled(level)) this.sink.write(level, message, meta === undefined ? { ...this.bound } : { ...this.bound, ...meta });
  }
  error(message: string, meta?: Record<string, unknown>): void {
    this.write('error', message, meta);
  }
  warn(message: string, meta?: Record<string, unknown>): void {
    this.write('warn', message, meta);
  }
  info(message: string, meta?: Record<string, unknown>): void {
    this.write('info', message, meta);
  }
  debug(message: string, meta?: Record<string, unknown>): void {
    this.write('debug', message, meta);
  }
  /** True when `debug` lines are written (lets callers skip building wire-trace strings). */
  get isDebugEnabled(): boolean {
    return this.sink.enabled('debug');
  }
  child(meta: Record<string, unknown>): Logger {
    return new LevelGate(this.sink, { ...this.bound, ...meta });
  }
}

/** The logger of `silent: true`: drops everything without loading winston. */
const SILENT: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  isDebugEnabled: false,
  child: () => SILENT,
};
