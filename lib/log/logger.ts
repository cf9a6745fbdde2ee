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
  /** When false, callers may skip building debug-only strings (wire traces). Absent means "assume enabled". */
  readonly isDebugEnabled?: boolean;
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
 * Creates the root winston logger. Called once per process by `createContainer` (or by you when you
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
  const root = w.createLogger({
    level,
    format,
    silent: false,
    transports: [new w.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] })],
  });
  return new LevelGate(root, false);
}

/**
 * winston builds and pipes an info object for every call and filters by level only in the transport; on a hot
 * path (a `debug` wire line per command) that costs more than the command. This adapter drops disabled levels
 * before any allocation.
 */
class LevelGate implements Logger {
  constructor(
    private readonly inner: winston.Logger,
    private readonly silent: boolean,
  ) {}
  private on(level: string): boolean {
    return !this.silent && this.inner.isLevelEnabled(level);
  }
  error(message: string, meta?: Record<string, unknown>): void {
    if (this.on('error')) this.inner.error(message, meta);
  }
  warn(message: string, meta?: Record<string, unknown>): void {
    if (this.on('warn')) this.inner.warn(message, meta);
  }
  info(message: string, meta?: Record<string, unknown>): void {
    if (this.on('info')) this.inner.info(message, meta);
  }
  debug(message: string, meta?: Record<string, unknown>): void {
    if (this.on('debug')) this.inner.debug(message, meta);
  }
  /** True when `debug` lines are written (lets callers skip building wire-trace strings). */
  get isDebugEnabled(): boolean {
    return this.on('debug');
  }
  child(meta: Record<string, unknown>): Logger {
    return new LevelGate(this.inner.child(meta), this.silent);
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
