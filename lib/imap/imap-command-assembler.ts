/**
 * The state machine of `imap-parser.ts`, which re-exports it: tags, atoms, quoted strings, literals, lists and FETCH
 * sections, read byte by byte from each line, with a command's values kept across its literals.
 */
import { isValidUtf8 } from './imap-format.js';
import { announcedLiteral, ImapParseError, literalSize, type ImapParseErrorReason } from './imap-parse-error.js';
import { DEFAULT_PARSER_LIMITS, type AssemblerResult, type ImapParserLimits } from './imap-parser-options.js';
import type { ImapCommand, ImapSection, ImapValue, SectionAttName } from './imap-values.js';

interface Frame {
  readonly kind: 'root' | 'list' | 'section';
  readonly items: ImapValue[];
  readonly name?: SectionAttName;
}

const SP = 0x20;
const SECTION_NAMES: readonly SectionAttName[] = ['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE'];
/** RFC 3501 §9 atom-specials minus list-wildcards and resp-specials (allowed in list-mailbox / astring). */
const NON_ATOM = new Set([0x28, 0x29, 0x7b, SP, 0x22, 0x5c]);

/** Thrown internally, converted to an `error` result. */
class Fail extends Error {
  constructor(
    message: string,
    readonly reason: ImapParseErrorReason = 'syntax',
  ) {
    super(message);
  }
}

/** Assembles one command at a time from lines and literals. One instance per connection; not reentrant. */
export class ImapCommandAssembler {
  private readonly limits: ImapParserLimits;
  private tag: string | undefined;
  private command = '';
  private stack: Frame[] = [];
  private pending: { size: number; sync: boolean; binary: boolean } | undefined;
  private total = 0;
  private count = 0;
  private afterValue = false;
  private justOpened = false;
  private allowSections = false;

  constructor(limits: Partial<ImapParserLimits> = {}) {
    this.limits = { ...DEFAULT_PARSER_LIMITS, ...limits };
  }

  /** True between the first line of a command and its completion (a literal or continuation line is due). */
  get isInCommand(): boolean {
    return this.stack.length > 0;
  }

  /** Drops any partial command (after the session refused a literal, or on STARTTLS/close). */
  reset(): void {
    this.tag = undefined;
    this.command = '';
    this.stack = [];
    this.pending = undefined;
    this.total = 0;
    this.count = 0;
    this.afterValue = false;
    this.justOpened = false;
    this.allowSections = false;
  }

  /** Feeds one line without its CRLF. Throws a plain Error only on misuse (a literal was due). */
  pushLine(line: Buffer): AssemblerResult {
    if (this.pending) throw new Error('pushLine called while a literal is due');
    try {
      this.total += line.length + 2;
      if (this.total > this.limits.maxCommandSize) throw new Fail('Command too long', 'limit');
      let pos = 0;
      if (this.stack.length === 0) {
        pos = this.readHead(line);
        this.stack.push({ kind: 'root', items: [] });
        this.afterValue = true;
      }
      return this.readArgs(line, pos);
    } catch (err) {
      if (!(err instanceof Fail)) throw err;
      return this.fail(err, line);
    }
  }

  /** Feeds the octets of the literal announced by the last `literal` result. Throws a plain Error on misuse. */
  pushLiteral(data: Buffer): AssemblerResult {
    const pending = this.pending;
    if (!pending) throw new Error('pushLiteral called without a pending literal');
    if (data.length !== pending.size) throw new Error(`literal length ${data.length} != ${pending.size}`);
    this.pending = undefined;
    this.total += data.length;
    this.add({ type: 'literal', value: data, sync: pending.sync, binary: pending.binary });
    this.afterValue = true;
    return { kind: 'more' };
  }

  private fail(err: Fail, line: Buffer): AssemblerResult {
    const announced = this.pending ? undefined : announcedLiteral(line);
    const nonSync = announced && !announced.sync ? announced.size : undefined;
    const error = new ImapParseError(err.message, this.tag, err.reason, nonSync);
    this.reset();
    return { kind: 'error', error };
  }

  /** RFC 3501 §9: `tag SP command`; tag = 1*<ASTRING-CHAR except "+">. Returns the position after it. */
  private readHead(line: Buffer): number {
    const sp = line.indexOf(SP);
    const tagEnd = sp < 0 ? line.length : sp;
    const tag = line.subarray(0, tagEnd);
    if (tag.length === 0) throw new Fail('Empty command');
    for (const b of tag) {
      if (b === 0x2b || b === 0x25 || b === 0x2a || b <= SP || b >= 0x7f || NON_ATOM.has(b)) {
        throw new Fail('Invalid tag');
      }
    }
    this.tag = tag.toString('latin1');
    if (sp < 0) throw new Fail('Missing command');
    let [name, pos] = this.readWord(line, sp + 1);
    if (name === 'UID' && line[pos] === SP) {
      const [sub, next] = this.readWord(line, pos + 1);
      name = `UID ${sub}`;
      pos = next;
    }
    this.command = name;
    this.allowSections = name === 'FETCH' || name === 'UID FETCH';
    return pos;
  }

  private readWord(line: Buffer, start: number): [string, number] {
    let pos = start;
    while (pos < line.length && isAtomChar(line[pos])) pos++;
    if (pos === start) throw new Fail('Missing command');
    if (pos < line.length && line[pos] !== SP) throw new Fail('Invalid command name');
    return [line.subarray(start, pos).toString('latin1').toUpperCase(), pos];
  }

  private readArgs(line: Buffer, start: number): AssemblerResult {
    let pos = start;
    while (pos < line.length) {
      const c = line[pos];
      const top = this.stack[this.stack.length - 1];
      if (this.afterValue || this.justOpened) {
        if ((c === 0x29 && top.kind === 'list') || (c === 0x5d && top.kind === 'section')) {
          pos = this.close(line, pos + 1);
          continue;
        }
        if (this.justOpened) {
          this.justOpened = false;
        } else {
          if (c !== SP) throw new Fail(c === 0x29 || c === 0x5d ? 'Unbalanced parentheses' : 'Expected space');
          pos++;
          this.afterValue = false;
          if (pos === line.length) throw new Fail('Trailing space');
          continue;
        }
      }
      pos = this.readValue(line, pos);
      if (this.pending) {
        const { size, sync, binary } = this.pending;
        const root = this.stack[0];
        return { kind: 'literal', size, sync, binary, tag: this.tag ?? '', command: this.command, args: root.items };
      }
    }
    if (!this.afterValue && !this.justOpened) throw new Fail('Missing argument');
    if (this.stack.length > 1) throw new Fail('Unbalanced parentheses');
    const command: ImapCommand = { tag: this.tag ?? '', command: this.command, args: this.stack[0].items };
    this.reset();
    return { kind: 'complete', command };
  }

  /** Reads one value at `pos` (a value is expected there). Returns the position after it. */
  private readValue(line: Buffer, pos: number): number {
    const c = line[pos];
    if (c === 0x28) {
      this.open({ kind: 'list', items: [] });
      return pos + 1;
    }
    if (c === 0x22) return this.readQuoted(line, pos + 1);
    if (c === 0x7b || (c === 0x7e && line[pos + 1] === 0x7b)) return this.readLiteralHead(line, pos);
    return this.readAtom(line, pos);
  }

  private open(frame: Frame): void {
    if (this.stack.length - 1 >= this.limits.maxDepth) throw new Fail('Too deeply nested', 'limit');
    this.stack.push(frame);
    this.justOpened = true;
    this.afterValue = false;
  }

  private close(line: Buffer, pos: number): number {
    const frame = this.stack.pop();
    if (!frame) throw new Fail('Unbalanced parentheses');
    this.justOpened = false;
    this.afterValue = true;
    if (frame.kind === 'list') {
      this.add({ type: 'list', items: frame.items });
      return pos;
    }
    let partial: ImapSection['partial'];
    if (line[pos] === 0x3c) {
      const m = /^<(\d{1,10})\.(\d{1,10})>/.exec(line.subarray(pos, pos + 24).toString('latin1'));
      if (!m || Number(m[2]) === 0) throw new Fail('Invalid partial range');
      partial = { offset: Number(m[1]), length: Number(m[2]) };
      pos += m[0].length;
    }
    const name = frame.name ?? 'BODY';
    this.add(partial ? { type: 'section', name, section: frame.items, partial } : { type: 'section', name, section: frame.items });
    return pos;
  }

  private add(value: ImapValue): void {
    if (++this.count > this.limits.maxArgs) throw new Fail('Too many arguments', 'limit');
    this.stack[this.stack.length - 1].items.push(value);
  }

  private readQuoted(line: Buffer, start: number): number {
    const bytes: number[] = [];
    let pos = start;
    while (pos < line.length) {
      const b = line[pos];
      if (b === 0x22) {
        const buf = Buffer.from(bytes);
        if (!isValidUtf8(buf)) throw new Fail('Invalid UTF-8 in quoted string');
        this.add({ type: 'quoted', value: buf.toString('utf8') });
        this.afterValue = true;
        return pos + 1;
      }
      if (b === 0x5c) {
        const next = line[pos + 1];
        if (next !== 0x22 && next !== 0x5c) throw new Fail('Invalid escape in quoted string');
        bytes.push(next);
        pos += 2;
        continue;
      }
      if (b === 0x00) throw new Fail('NUL in quoted string');
      bytes.push(b);
      pos++;
    }
    throw new Fail('Unterminated quoted string');
  }

  /** `literal = "{" number ["+"] "}" CRLF` (RFC 3501 §9, RFC 7888 §3), `literal8 = "~{" …` (RFC 3516 §4.2). */
  private readLiteralHead(line: Buffer, pos: number): number {
    const m = /^(~?)\{(\d+)(\+?)\}$/.exec(line.subarray(pos).toString('latin1'));
    if (!m) throw new Fail('Invalid literal');
    const size = literalSize(m[2]);
    const sync = m[3] === '';
    const max = sync ? this.limits.maxLiteralSize : this.limits.maxNonSyncLiteralSize;
    if (size > 0xffffffff || size > max || this.total + size > this.limits.maxCommandSize) {
      throw new Fail('Literal too big', 'too-big');
    }
    if (this.count + 1 > this.limits.maxArgs) throw new Fail('Too many arguments', 'limit');
    this.pending = { size, sync, binary: m[1] === '~' };
    return line.length;
  }

  private readAtom(line: Buffer, start: number): number {
    const top = this.stack[this.stack.length - 1];
    const isFlag = line[start] === 0x5c; // "\" atom (RFC 3501 §9 flag-extension) or "\*" (flag-perm)
    let pos = isFlag ? start + 1 : start;
    while (pos < line.length) {
      const b = line[pos];
      if (b === 0x5b && this.allowSections && top.kind !== 'section') {
        const name = line.subarray(start, pos).toString('latin1').toUpperCase();
        const known = SECTION_NAMES.find((n) => n === name);
        if (known) {
          this.open({ kind: 'section', items: [], name: known });
          return pos + 1;
        }
      }
      if (b === 0x5d && top.kind === 'section') break;
      if (!isAtomChar(b)) break;
      pos++;
    }
    if (pos < line.length && line[pos] >= 0x80) throw new Fail('8-bit character in atom');
    if (pos === start + (isFlag ? 1 : 0)) {
      throw new Fail(line[pos] < SP || line[pos] === 0x7f ? 'Control character in command' : 'Unexpected character');
    }
    if (pos < line.length && line[pos] !== SP && line[pos] !== 0x29 && line[pos] !== 0x5d) {
      throw new Fail('Unexpected character');
    }
    this.add(classifyAtom(line.subarray(start, pos).toString('latin1')));
    this.afterValue = true;
    return pos;
  }
}

/** ATOM-CHAR plus list-wildcards and `]` (ASTRING-CHAR, list-char): RFC 3501 §9. */
function isAtomChar(b: number): boolean {
  return b > SP && b < 0x7f && !NON_ATOM.has(b);
}

function classifyAtom(text: string): ImapValue {
  if (text.toUpperCase() === 'NIL') return { type: 'nil' };
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return { type: 'number', value: n };
  }
  if (/^[\d*$:,]+$/.test(text)) return { type: 'sequence', value: text };
  return { type: 'atom', value: text };
}
