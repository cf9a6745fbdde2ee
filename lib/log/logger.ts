import type { ServiceIdentifier } from 'inversify';
import { createRequire } from 'node:module';
import type winston from 'winston';
import { SECRET_KEYS, scrub, textLine, type Bound } from './text-line.js';

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
