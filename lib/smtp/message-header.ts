const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const CRLF = Buffer.from('\r\n');

/**
 * RFC 5322 §3.6.8: a field name is printable US-ASCII except the colon. The obsolete syntax (§4.5) allows blanks
 * between the name and the colon, so they are accepted when reading (never written).
 */
const FIELD_LINE = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
/** RFC 5322 §2.1.1: a line is at most 998 octets without its CRLF. */
const MAX_LINE_OCTETS = 998;

/** One header field: its name as written and its exact octets (folded lines and final line break included). */
interface Field {
  readonly name: string;
  readonly raw: Buffer;
}

/** Where a header block ends inside the octets that start a message (see {@link findHeaderEnd}). */
export interface HeaderSplit {
  /** Octets of the fields, from the first octet to the end of the last field line. */
  readonly fieldsEnd: number;
  /** Where the body starts: after the empty separator line, or `fieldsEnd` when there is none. */
  readonly bodyStart: number;
}

/**
 * Finds the end of the header block at the start of `data` (RFC 5322 §2.1: fields, then an empty line, then the
 * body). A line that is neither a field nor a folded continuation also ends the block (a message with no
 * separator line). Lines end at LF, with or without CR, so that BDAT content with bare LFs splits the same way.
 * @param final true when `data` is the whole message: a last line without a line break then counts too.
 * @returns undefined when more data is needed to decide.
 */
export function findHeaderEnd(data: Buffer, final: boolean): HeaderSplit | undefined {
  let start = 0;
  let inField = false;
  while (start < data.length) {
    const lf = data.indexOf(LF, start);
    if (lf === -1 && !final) return undefined;
    const end = lf === -1 ? data.length : lf + 1;
    const first = data[start];
    if (first === LF || (first === CR && (end - start === 2 || (lf === -1 && end - start === 1)))) {
      return { fieldsEnd: start, bodyStart: end };
    }
    const continues = first === SP || first === HTAB;
    if (continues ? !inField : !FIELD_LINE.test(data.toString('latin1', start, Math.min(end, start + 1000)))) {
      return { fieldsEnd: start, bodyStart: start };
    }
    inField = true;
    start = end;
  }
  return final ? { fieldsEnd: data.length, bodyStart: data.length } : undefined;
}

/**
 * The header block of a message being received, as `SmtpHooks.onHeader` sees and edits it. Fields keep their
 * order and their exact octets: a field no hook touched is stored byte for byte as the client sent it. The server's
 * `Received:` field is the first one.
 *
 * Reading: {@link get} and {@link getAll} unfold values (RFC 5322 §2.2.3) and decode them as UTF-8; names compare
 * case-insensitively. Editing: {@link add} (at the end), {@link prepend} (at the top, where trace fields go),
 * {@link set} (replaces in place) and {@link remove}. New values are written as given, in UTF-8: use RFC 2047
 * encoded-words for non-ASCII text unless the message is internationalized (RFC 6532). A value may be folded with
 * CRLF followed by a space or tab; any other CR or LF, a NUL, an invalid name or a line over 998 octets
 * (RFC 5322 §2.1.1) throws a `TypeError` / `RangeError` (a bug in the hook: the client gets `451 4.3.0`).
 *
 * Once the server writes the header out (after every `onHeader`, or after every `scan` that a hook asked for),
 * the header is final and editing it throws.
 */
export class MessageHeader {
  private fieldList: Field[];
  private final = false;

  /** @param fields the parsed fields, in order (see {@link MessageHeader.parse}). */
  private constructor(
    fields: Field[],
    /** The separator line (`\r\n`), empty when the message had none. */
    private readonly separator: Buffer,
  ) {
    this.fieldList = fields;
  }

  /** Parses a header block (`block` = fields plus the separator line, as split by {@link findHeaderEnd}). */
  static parse(block: Buffer, split: HeaderSplit): MessageHeader {
    const fields: Field[] = [];
    let start = 0;
    while (start < split.fieldsEnd) {
      let end = start;
      // A field runs to the line break after which the next line does not start with a blank.
      do {
        const lf = block.indexOf(LF, end);
        end = lf === -1 || lf >= split.fieldsEnd ? split.fieldsEnd : lf + 1;
      } while (end < split.fieldsEnd && (block[end] === SP || block[end] === HTAB));
      const raw = block.subarray(start, end);
      const m = FIELD_LINE.exec(raw.toString('latin1', 0, Math.min(raw.length, 1000)));
      fields.push({ name: m ? m[1] : '', raw });
      start = end;
    }
    return new MessageHeader(fields, block.subarray(split.fieldsEnd, split.bodyStart));
  }

  /** The fields in order, names as written, values unfolded. */
  get fields(): ReadonlyArray<{ readonly name: string; readonly value: string }> {
    return this.fieldList.map((f) => ({ name: f.name, value: valueOf(f) }));
  }

  /** True once the header was written out; edits then throw. */
  get isFinal(): boolean {
    return this.final;
  }

  /** The unfolded value of the first field called `name`, or undefined. */
  get(name: string): string | undefined {
    const f = this.fieldList.find((x) => sameName(x.name, name));
    return f ? valueOf(f) : undefined;
  }

  /** The unfolded values of every field called `name`, in order. */
  getAll(name: string): string[] {
    return this.fieldList.filter((x) => sameName(x.name, name)).map(valueOf);
  }

  /** True when at least one field is called `name`. */
  has(name: string): boolean {
    return this.fieldList.some((x) => sameName(x.name, name));
  }

  /** Adds a field after the last one. */
  add(name: string, value: string): this {
    this.editable();
    this.fieldList.push(newField(name, value));
    return this;
  }

  /** Adds a field before the first one (RFC 5321 §4.4 puts trace fields at the top). */
  prepend(name: string, value: string): this {
    this.editable();
    this.fieldList.unshift(newField(name, value));
    return this;
  }

  /** Replaces the first field called `name` in place and removes the others; adds it at the end when absent. */
  set(name: string, value: string): this {
    this.editable();
    const field = newField(name, value);
    const at = this.fieldList.findIndex((x) => sameName(x.name, name));
    if (at === -1) {
      this.fieldList.push(field);
      return this;
    }
    this.fieldList = this.fieldList.filter((x, i) => i === at || !sameName(x.name, name));
    this.fieldList[at] = field;
    return this;
  }

  /** Removes every field called `name`; returns how many there were. */
  remove(name: string): number {
    this.editable();
    const before = this.fieldList.length;
    this.fieldList = this.fieldList.filter((x) => !sameName(x.name, name));
    return before - this.fieldList.length;
  }

  /** True when the original message had an empty line after its fields. */
  get hasSeparator(): boolean {
    return this.separator.length > 0;
  }

  /** Makes the header final (called by the server before it writes the header out). */
  freeze(): void {
    this.final = true;
  }

  /** The header block as it will be stored: the fields' octets, then the separator line (if the message had one). */
  toBuffer(): Buffer {
    // A message that ended inside its header has no line break after its last field: one goes in before any field after it.
    const parts = this.fieldList.map((f, i) => (i < this.fieldList.length - 1 && f.raw[f.raw.length - 1] !== LF ? Buffer.concat([f.raw, CRLF]) : f.raw));
    return Buffer.concat([...parts, this.separator]);
  }

  private editable(): void {
    if (this.final) throw new TypeError('the message header was already written; edit it in onHeader or before scan resolves');
  }
}

function sameName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/** RFC 5322 §2.2.3: unfolding removes the CRLF before each folding blank; the value starts after the colon's blanks. */
function valueOf(f: Field): string {
  const text = f.raw.toString('utf8');
  const colon = text.indexOf(':');
  return text
    .slice(colon + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/\r?\n$/, '')
    .replace(/^[ \t]+/, '')
    .trimEnd();
}

function newField(name: string, value: string): Field {
  if (!FIELD_NAME.test(name)) throw new TypeError(`invalid header field name: ${JSON.stringify(name.slice(0, 40))}`);
  // Folding (CRLF + blank) is the only line break allowed inside a value: anything else could start a new field.
  if (/[\0]|\r(?!\n[ \t])|(?<!\r)\n/.test(value)) throw new TypeError(`header field ${name}: NUL, CR or LF outside folding`);
  const raw = Buffer.from(`${name}: ${value}\r\n`, 'utf8');
  let start = 0;
  for (let lf = raw.indexOf(LF); lf !== -1; lf = raw.indexOf(LF, start)) {
    if (lf - 1 - start > MAX_LINE_OCTETS) throw new RangeError(`header field ${name}: line over ${MAX_LINE_OCTETS} octets, fold it`);
    start = lf + 1;
  }
  return { name, raw };
}
