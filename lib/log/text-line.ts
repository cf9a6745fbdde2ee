/**
 * The text format of Postern's log lines ({@link textLine}: `<ISO time> <level> <message> k=v …`), built by hand for
 * each line, with the redaction of secret metadata ({@link SECRET_KEYS}, {@link scrub}) that the JSON format's winston
 * step in `logger.ts` uses too.
 */

/** Metadata keys whose values are replaced by `[redacted]` before any transport sees them. */
export const SECRET_KEYS = new Set(['password', 'pass', 'passphrase', 'key', 'privateKey', 'secret', 'token', 'payload', 'body']);

/** Copies plain objects and arrays with secret keys replaced, to a bounded depth; other values pass through. */
export function scrub(value: unknown, depth: number): unknown {
  if (depth > 5 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value; // Errors, Buffers, certificates: as they are
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : scrub(v, depth + 1);
  return out;
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
export interface Bound {
  readonly fields: Readonly<Record<string, unknown>>;
  /** Undefined until the first text line; null when the fields cannot be formatted once for all lines. */
  text?: string | null;
}

/**
 * The text line (`<ISO time> <level> <message> k=v …`) built straight from the bound and the call's metadata, without
 * merging them into an info object first. Same output as winston's `combine(redact, timestamp, printf)` did: keys in
 * first-seen order (bound, then the call's own), the call's value winning, `undefined` values left out, secrets redacted.
 */
export function textLine(level: string, message: string, bound: Bound, meta: Record<string, unknown> | undefined): string {
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
