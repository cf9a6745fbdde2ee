/**
 * A MIME splitter over the raw message octets, keeping byte offsets of every header and body
 * (RFC 2045, RFC 2046 §5.1 multipart, §5.2.1 message/rfc822).
 *
 * FETCH needs exact octet ranges (`BODY[1.2]`, `BODY[1.HEADER]`, sizes and line counts in BODYSTRUCTURE), which
 * stream parsers such as mailparser do not expose. The tree is cheap: it stores offsets and parsed header fields,
 * never copies of bodies. Boundary matching follows Dovecot's tolerant rule (a line that starts with
 * `--boundary`; the innermost open multipart wins), and the CRLF before a delimiter belongs to the delimiter
 * (RFC 2046 §5.1.1).
 */

/** One header field. `value` is unfolded (CRLF before WSP removed) and UTF-8 decoded, encoded-words kept. */
export interface HeaderField {
  /** Name as written. */
  readonly name: string;
  readonly value: string;
  /** Octet offsets of the whole field in the message, including continuation lines and the final line end. */
  readonly start: number;
  readonly end: number;
}

/** A parsed `Content-Type`/`Content-Disposition`-style value: `value; key=val; …`. */
export interface ParsedHeaderValue {
  readonly value: string;
  /** Parameters in order, keys lower-cased, RFC 2231 continuations merged (`key*` when the value is extended). */
  readonly params: ReadonlyArray<readonly [string, string]>;
}

/** One node of the MIME tree. The root node is the whole message. */
export interface MimePart {
  /** Offset of the first header octet. */
  readonly start: number;
  /** Offset of the first body octet (after the blank line ending the header). */
  readonly bodyStart: number;
  /** Offset after the last body octet (the CRLF before a boundary delimiter is excluded). */
  readonly end: number;
  readonly fields: readonly HeaderField[];
  /** Lower-cased media type and subtype, as used for decisions. */
  readonly type: string;
  readonly subtype: string;
  /** Content-Type as written (case kept), for BODYSTRUCTURE; undefined when defaulted. */
  readonly contentType?: ParsedHeaderValue;
  /** Multipart children (never empty for a multipart node). */
  readonly children: readonly MimePart[];
  /** The embedded message of a `message/rfc822` (or `message/global`) part. */
  readonly message?: MimePart;
  /** Number of LF octets in the body (RFC 3501 §7.4.2 body-fld-lines, counted as Dovecot does). */
  readonly bodyLines: number;
}

/** Nesting bound: deeper multiparts/messages become opaque leaves (mail bombs, RFC 2046 has no limit). */
export const MAX_MIME_DEPTH = 32;
/** Parts bound per message, for the same reason. */
export const MAX_MIME_PARTS = 2000;

const LF = 0x0a;
const CR = 0x0d;

/** Parses the message into a MIME tree. Never throws for malformed input; it degrades to leaves. */
export function parseMime(raw: Buffer): MimePart {
  const budget = { parts: MAX_MIME_PARTS };
  return parsePart(raw, 0, raw.length, 0, false, budget);
}

/** The value of the first field named `name` (case-insensitive), or undefined. */
export function headerValue(fields: readonly HeaderField[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === lower)?.value;
}

function parsePart(
  raw: Buffer,
  start: number,
  end: number,
  depth: number,
  inDigest: boolean,
  budget: { parts: number },
): MimePart {
  budget.parts--;
  const { fields, bodyStart } = parseHeader(raw, start, end);
  const ctHeader = headerValue(fields, 'content-type');
  let contentType = ctHeader !== undefined ? parseHeaderParams(ctHeader) : undefined;
  const slash = contentType?.value.indexOf('/') ?? -1;
  let type = inDigest ? 'message' : 'text';
  let subtype = inDigest ? 'rfc822' : 'plain';
  if (contentType && slash > 0 && slash < contentType.value.length - 1) {
    type = contentType.value.slice(0, slash).toLowerCase();
    subtype = contentType.value.slice(slash + 1).toLowerCase();
  } else {
    contentType = undefined;
  }
  const base = { start, bodyStart, end, fields, bodyLines: countLines(raw, bodyStart, end) };
  const opaque = depth >= MAX_MIME_DEPTH || budget.parts <= 0;
  if (type === 'multipart') {
    const boundary = contentType?.params.find(([k]) => k === 'boundary')?.[1];
    if (boundary === undefined || boundary === '' || opaque) {
      return { ...base, type: 'text', subtype: 'plain', children: [] };
    }
    const ranges = splitMultipart(raw, bodyStart, end, boundary);
    const digest = subtype === 'digest';
    const children = ranges.map(([s, e]) => parsePart(raw, s, e, depth + 1, digest, budget));
    if (children.length === 0) children.push(emptyPart(end));
    return { ...base, type, subtype, contentType, children };
  }
  if (type === 'message' && (subtype === 'rfc822' || subtype === 'global') && !opaque) {
    const message = parsePart(raw, bodyStart, end, depth + 1, false, budget);
    return { ...base, type, subtype, contentType, children: [], message };
  }
  return { ...base, type, subtype, contentType, children: [] };
}

/** RFC 2046 §5.1.1: a multipart without body parts is invalid; stand in an empty text/plain (as Dovecot does). */
function emptyPart(at: number): MimePart {
  return { start: at, bodyStart: at, end: at, fields: [], type: 'text', subtype: 'plain', children: [], bodyLines: 0 };
}

function countLines(raw: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = raw.indexOf(LF, start); i >= 0 && i < end; i = raw.indexOf(LF, i + 1)) n++;
  return n;
}

/** Offset after the line starting at `pos` (past its LF), or `end`. */
function lineEnd(raw: Buffer, pos: number, end: number): number {
  const lf = raw.indexOf(LF, pos);
  return lf < 0 || lf >= end ? end : lf + 1;
}

/** Reads header fields from `start` until the blank line (included in the header) or `end`. */
export function parseHeader(raw: Buffer, start: number, end: number): { fields: HeaderField[]; bodyStart: number } {
  const fields: HeaderField[] = [];
  let pos = start;
  let current: { start: number; end: number } | undefined;
  const flush = (): void => {
    if (!current) return;
    const text = raw.subarray(current.start, current.end).toString('utf8');
    const colon = text.indexOf(':');
    const unfolded = text.replace(/\r?\n$/, '').replace(/\r?\n(?=[ \t])/g, '');
    const name = colon < 0 ? '' : text.slice(0, colon).trim();
    const value = colon < 0 ? unfolded : unfolded.slice(colon + 1).trim();
    fields.push({ name, value, start: current.start, end: current.end });
    current = undefined;
  };
  while (pos < end) {
    const next = lineEnd(raw, pos, end);
    const isBlank = raw[pos] === LF || (raw[pos] === CR && raw[pos + 1] === LF && pos + 1 < end);
    if (isBlank) {
      flush();
      return { fields, bodyStart: next };
    }
    if ((raw[pos] === 0x20 || raw[pos] === 0x09) && current) {
      current.end = next;
    } else {
      flush();
      current = { start: pos, end: next };
    }
    pos = next;
  }
  flush();
  return { fields, bodyStart: end };
}

/**
 * Finds the body parts of a multipart body in `[start, end)`. Returns the `[start, end)` range of each part:
 * from after its delimiter line to before the CRLF that precedes the next delimiter. Preamble and epilogue are
 * dropped. Parts are taken up to the close delimiter or, when it is missing, to `end`.
 */
function splitMultipart(raw: Buffer, start: number, end: number, boundary: string): Array<[number, number]> {
  const delimiter = Buffer.from(`--${boundary}`, 'utf8');
  const ranges: Array<[number, number]> = [];
  let partStart = -1;
  let pos = start;
  while (pos < end) {
    const next = lineEnd(raw, pos, end);
    if (next - pos >= delimiter.length && raw.compare(delimiter, 0, delimiter.length, pos, pos + delimiter.length) === 0) {
      const isClose = raw[pos + delimiter.length] === 0x2d && raw[pos + delimiter.length + 1] === 0x2d;
      if (partStart >= 0) {
        let partEnd = pos;
        if (partEnd > partStart && raw[partEnd - 1] === LF) partEnd--;
        if (partEnd > partStart && raw[partEnd - 1] === CR) partEnd--;
        ranges.push([partStart, Math.max(partStart, partEnd)]);
      }
      if (isClose) return ranges;
      partStart = next;
    }
    pos = next;
  }
  if (partStart >= 0) ranges.push([partStart, end]);
  return ranges;
}

/**
 * Parses `value *(";" key "=" (token / quoted-string))` with comments (RFC 2045 §5.1, RFC 2183 §2), merging
 * RFC 2231 §3/§4 continuations. Lenient: junk parameters are skipped.
 */
export function parseHeaderParams(header: string): ParsedHeaderValue {
  const s = stripComments(header);
  const semi = indexOutsideQuotes(s, ';', 0);
  const value = (semi < 0 ? s : s.slice(0, semi)).trim();
  const raw: Array<[string, string]> = [];
  let pos = semi;
  while (pos >= 0 && pos < s.length) {
    const eq = s.indexOf('=', pos + 1);
    const nextSemi = indexOutsideQuotes(s, ';', pos + 1);
    if (eq < 0 || (nextSemi >= 0 && nextSemi < eq)) {
      pos = nextSemi;
      continue;
    }
    const key = s.slice(pos + 1, eq).trim().toLowerCase();
    let rest = s.slice(eq + 1).trimStart();
    let val: string;
    if (rest.startsWith('"')) {
      let i = 1;
      val = '';
      while (i < rest.length && rest[i] !== '"') {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        val += rest[i];
        i++;
      }
      rest = rest.slice(i + 1);
      const after = rest.indexOf(';');
      pos = after < 0 ? -1 : s.length - rest.length + after;
    } else {
      const stop = rest.indexOf(';');
      val = (stop < 0 ? rest : rest.slice(0, stop)).trim();
      pos = stop < 0 ? -1 : s.length - rest.length + stop;
    }
    if (/^[!#$%&'*+\-.^_`{|}~0-9a-z]+$/.test(key)) raw.push([key, val]);
  }
  return { value, params: mergeContinuations(raw) };
}

function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && (quoted || depth > 0)) {
      if (depth === 0) out += c + s[i + 1];
      i++;
    } else if (depth === 0 && c === '"') {
      quoted = !quoted;
      out += c;
    } else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

function indexOutsideQuotes(s: string, ch: string, from: number): number {
  let quoted = false;
  for (let i = from; i < s.length; i++) {
    if (s[i] === '\\' && quoted) i++;
    else if (s[i] === '"') quoted = !quoted;
    else if (s[i] === ch && !quoted) return i;
  }
  return -1;
}

/** RFC 2231: `k*0=a; k*1=b` → `k=ab`; `k*0*=utf-8''x; k*1*=y` → `k*=utf-8''xy` (still encoded, like Dovecot). */
function mergeContinuations(params: Array<[string, string]>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const groups = new Map<string, { index: number; extended: boolean; segments: Array<[number, string]> }>();
  for (const [key, val] of params) {
    const m = /^(.+?)\*(\d+)(\*?)$/.exec(key);
    if (!m) {
      out.push([key, val]);
      continue;
    }
    let g = groups.get(m[1]);
    if (!g) {
      g = { index: out.length, extended: false, segments: [] };
      groups.set(m[1], g);
      out.push([m[1], '']);
    }
    if (m[2] === '0') g.extended = m[3] === '*';
    g.segments.push([Number(m[2]), val]);
  }
  for (const [name, g] of groups) {
    const value = g.segments.sort((a, b) => a[0] - b[0]).map(([, v]) => v).join('');
    out[g.index] = [g.extended ? `${name}*` : name, value];
  }
  return out;
}
