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

/** winston (CommonJS), loaded on the first JSON logger so that `import 'postern'`, text and silent loggers skip it. */
let loaded: { w: typeof winston; redact: () => winston.Logform.Format } | undefined;

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
  loaded = { w, redact };
  return loaded;
}

/** Keys a line's metadata cannot set: the line's own fields (winston's info object has them too). */
const OWN_FIELDS = new Set(['level', 'message', 'timestamp']);

/** One metadata value as the text format writes it: strings as they are, anything else as (scrubbed) JSON. */
function textValue(key: string, value: unknown): string {
  if (SECRET_KEYS.has(key)) return '[redacted]';
  return typeof value === 'string' ? value : String(JSON.stringify(scrub(value, 1)));
}

/**
 * A logger's bound metadata, with its ` k=v` text once the first text line made it (see {@link boundFields}).
 */
interface Bound {
  readonly fields: Readonly<Record<string, unknown>>;
  /** Undefined until the first text line; null when the fields cannot be formatted once for all lines. */
  text?: string | null;
}

/**
 * The text line (`<ISO time> <level> <message> k=v …`) built straight from the bound and the call's metadata, without
 * merging them into an info object first. Same output as winston's `combine(redact, timestamp, printf)` did: keys in
 * first-seen order (bound, then the call's own), the call's value winning, `undefined` values left out, secrets redacted.
 */
function textLine(level: string, message: string, bound: Bound, meta: Record<string, unknown> | undefined): string {
  const fixed = boundFields(bound);
  if (fixed !== undefined) {
    // The common case (issue 15: one line per message): the child's fields formatted once, the call's own appended.
    // Same output as below whenever the call's metadata names no bound key.
    let fields = fixed;
    let timestamp: unknown;
    if (meta !== undefined) {
      for (const k in meta) {
        if (!Object.prototype.hasOwnProperty.call(meta, k)) continue;
        if (Object.prototype.hasOwnProperty.call(bound.fields, k)) return textLineSlow(level, message, bound.fields, meta);
        const v = meta[k];
        if (k === 'timestamp') timestamp = v;
        else if (v !== undefined && !OWN_FIELDS.has(k)) fields += ` ${k}=${textValue(k, v)}`;
      }
    }
    return `${timestamp ? String(timestamp) : isoNow()} ${level} ${message}${fields}\n`;
  }
  return textLineSlow(level, message, bound.fields, meta);
}

/**
 * The ` k=v` text of a child's bound fields, made on its first line and kept on the child itself (issue 15: a
 * connection writes a line per message; a WeakMap keyed by the fields cost every connection an ephemeron entry and
 * its write barrier): undefined when a bound value is not a string, number or boolean (an object may change between
 * lines, so it is formatted each time) or a key is one of the line's own fields.
 */
function boundFields(bound: Bound): string | undefined {
  let text = bound.text;
  if (text === undefined) {
    text = '';
    for (const k in bound.fields) {
      const v = bound.fields[k];
      const t = typeof v;
      if (OWN_FIELDS.has(k) || (v !== undefined && t !== 'string' && t !== 'number' && t !== 'boolean')) {
        text = null;
        break;
      }
      if (v !== undefined) text += ` ${k}=${textValue(k, v)}`;
    }
    bound.text = text;
  }
  return text ?? undefined;
}

/** {@link textLine} for any bound and call metadata (keys in first-seen order, the call's value winning). */
function textLineSlow(level: string, message: string, bound: Readonly<Record<string, unknown>>, meta: Record<string, unknown> | undefined): string {
  let timestamp: unknown;
  let fields = '';
  for (const k in bound) {
    const v = meta !== undefined && Object.prototype.hasOwnProperty.call(meta, k) ? meta[k] : bound[k];
    if (k === 'timestamp') timestamp = v;
    else if (v !== undefined && !OWN_FIELDS.has(k)) fields += ` ${k}=${textValue(k, v)}`;
  }
  if (meta !== undefined) {
    for (const k in meta) {
      if (Object.prototype.hasOwnProperty.call(bound, k) || !Object.prototype.hasOwnProperty.call(meta, k)) continue;
      const v = meta[k];
      if (k === 'timestamp') timestamp = v;
      else if (v !== undefined && !OWN_FIELDS.has(k)) fields += ` ${k}=${textValue(k, v)}`;
    }
  }
  return `${timestamp ? String(timestamp) : isoNow()} ${level} ${message}${fields}\n`;
}

/**
 * `new Date().toISOString()`, built once per millisecond (several lines of one connection share it), and from a
 * prefix kept for the whole second: `toISOString` formats through V8's C++ date code (a few µs), the milliseconds
 * are three digits.
 */
let lastMs = -1;
let lastIso = '';
let secondStart = -1;
let secondPrefix = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const ms = now % 1000;
    if (now - ms !== secondStart) {
      secondStart = now - ms;
      secondPrefix = new Date(secondStart).toISOString().slice(0, 20); // 2026-01-02T03:04:05.
    }
    lastIso = `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  }
  return lastIso;
}

/**
 * Lines for stderr, written once per turn of the event loop: many connections logging in the same turn cost one
 * `write` system call instead of one each, and a line still reaches stderr before the next turn's I/O (a peer
 * reading our reply can count on the line that came before it). Whatever is still queued is written synchronously
 * on process exit.
 */
const stderrLines = {
  queued: '',
  scheduled: false,
  hooked: false,
  add(line: string): void {
    this.queued += line;
    if (this.scheduled) return;
    this.scheduled = true;
    if (!this.hooked) {
      this.hooked = true;
      process.once('exit', () => this.flush());
    }
    setImmediate(() => this.flush());
  },
  flush(): void {
    this.scheduled = false;
    if (this.queued === '') return;
    const text = this.queued;
    this.queued = '';
    process.stderr.write(text);
  },
};

/**
 * Writes the log lines still queued for this turn of the event loop now. Call it before writing to stderr yourself
 * (the CLI does before its one-line errors) so the lines stay in the order they happened.
 */
export function flushLogOutput(): void {
  stderrLines.flush();
}

/**
 * Creates the root logger: text lines by default, formatted by hand (see {@link textLine}), or JSON through winston's
 * formats. Called once per process by `createContainer` (or by you when you bind your own). Output goes to stderr so
 * that stdout stays free for the CLI's ready lines.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  if (options.silent === true) return SILENT;
  const level = options.level ?? process.env.POSTERN_LOG_LEVEL ?? 'info';
  const threshold = LEVELS[level] ?? LEVELS.info!;
  const enabled = (lvl: string): boolean => LEVELS[lvl]! <= threshold;
  if (options.format !== 'json') return new LevelGate({ enabled, write: (lvl, message, bound, meta) => stderrLines.add(textLine(lvl, message, bound, meta)) }, {});
  const { w, redact } = loadWinston();
  const format = w.format.combine(redact(), w.format.timestamp(), w.format.json());
  return new LevelGate(
    {
      enabled,
      write: (lvl, message, bound, meta) => {
        // winston's formats called directly, without a winston Logger's two object-mode streams per line (issue 15).
        const info = format.transform({ ...bound.fields, ...meta, level: lvl, message, [LEVEL]: lvl } as winston.Logform.TransformableInfo, format.options);
        if (info !== false) stderrLines.add(`${String((info as Record<symbol, unknown>)[MESSAGE])}\n`);
      },
    },
    {},
  );
}

/** winston's npm levels that Postern uses. */
const LEVELS: Readonly<Record<string, number>> = { error: 0, warn: 1, info: 2, debug: 3 };
/** triple-beam's keys for the level and the finished line of winston's info objects. */
const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');

/** Where a {@link LevelGate} sends enabled lines. */
interface Sink {
  enabled(level: string): boolean;
  /** Writes one line; `meta` (the call's own) wins over `bound.fields` (the child's) for a key in both. Neither is modified. */
  write(level: string, message: string, bound: Bound, meta: Record<string, unknown> | undefined): void;
}

/**
 * The Logger over a {@link Sink}: disabled levels are dropped before any allocation, and `child()` only remembers its
 * metadata (merged into each line when one is written), so a per-connection child costs one small object.
 */
class LevelGate implements Logger {
  /** The child's metadata and its formatted text (the sink fills that in on the first text line). */
  private readonly bound: Bound;
  constructor(
    private readonly sink: Sink,
    fields: Readonly<Record<string, unknown>>,
  ) {
    this.bound = { fields, text: undefined };
  }
  private write(level: string, message: string, meta: Record<string, unknown> | undefined): void {
    if (this.sink.enabled(level)) this.sink.write(level, message, this.bound, meta);
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
    return new LevelGate(this.sink, { ...this.bound.fields, ...meta });
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
