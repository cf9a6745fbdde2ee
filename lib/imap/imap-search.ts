/**
 * SEARCH keys (RFC 3501 §6.4.4, RFC 9051 §6.4.4): parsing into a key tree and evaluating it per message.
 *
 * String keys match case-insensitively as substrings of RFC 2047-decoded header values and of the decoded
 * (transfer encoding and charset) text of the body's text parts. Message content is loaded only when a key needs it.
 */
import { decodedBodyText, decodeHeaderWords } from './imap-decode.js';
import { addressSearchText } from './imap-envelope.js';
import { MONTHS } from './imap-format.js';
import { parseMime, type MimePart } from './imap-mime.js';
import { valueText, type ImapValue } from './imap-parser.js';
import { parseSequenceSet, sequenceSetContains, SequenceSetError, type SequenceSet } from './imap-sequence.js';

/** A calendar day `YYYY-MM-DD` (comparisons disregard time and timezone, RFC 3501 §6.4.4). */
export type SearchDay = string;

/** A parsed search key. A top-level program is an `and`. */
export type SearchKey =
  | { readonly op: 'all' }
  | { readonly op: 'flag'; readonly flag: string; readonly set: boolean }
  | { readonly op: 'recent' | 'new' | 'old' }
  | { readonly op: 'header'; readonly field: string; readonly value: string }
  | { readonly op: 'body' | 'text'; readonly value: string }
  | { readonly op: 'date'; readonly field: 'internal' | 'sent'; readonly cmp: 'before' | 'on' | 'since'; readonly day: SearchDay }
  | { readonly op: 'size'; readonly cmp: 'larger' | 'smaller'; readonly size: number }
  | { readonly op: 'seq' | 'uid'; readonly set: SequenceSet }
  | { readonly op: 'not'; readonly key: SearchKey }
  | { readonly op: 'or'; readonly left: SearchKey; readonly right: SearchKey }
  | { readonly op: 'and'; readonly keys: readonly SearchKey[] };

/**
 * A refused SEARCH. `code` `BADCHARSET` → `NO [BADCHARSET (UTF-8 US-ASCII)] …` (RFC 3501 §6.4.4);
 * without a code → `BAD`. `message` is a fixed phrase.
 */
export class SearchError extends Error {
  constructor(
    message: string,
    readonly code?: 'BADCHARSET',
  ) {
    super(message);
    this.name = 'SearchError';
  }
}

/** Charsets this server searches in (RFC 3501 §6.4.4 requires US-ASCII; UTF-8 per RFC 9051). */
export const SEARCH_CHARSETS = ['UTF-8', 'US-ASCII'] as const;

const FLAG_KEYS: Readonly<Record<string, [string, boolean]>> = {
  ANSWERED: ['\\Answered', true], UNANSWERED: ['\\Answered', false],
  DELETED: ['\\Deleted', true], UNDELETED: ['\\Deleted', false],
  DRAFT: ['\\Draft', true], UNDRAFT: ['\\Draft', false],
  FLAGGED: ['\\Flagged', true], UNFLAGGED: ['\\Flagged', false],
  SEEN: ['\\Seen', true], UNSEEN: ['\\Seen', false],
};
/** Header fields holding addresses: also matched in their parsed form (RFC 5322 §3.4 without comments). */
const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc', 'sender', 'reply-to']);
const HEADER_KEYS: Readonly<Record<string, string>> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };
const DATE_KEYS: Readonly<Record<string, ['internal' | 'sent', 'before' | 'on' | 'since']>> = {
  BEFORE: ['internal', 'before'], ON: ['internal', 'on'], SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'], SENTON: ['sent', 'on'], SENTSINCE: ['sent', 'since'],
};
/** Bound on NOT/OR/list nesting while parsing, against stack exhaustion. */
const MAX_SEARCH_DEPTH = 64;

/** Parses RFC 3501 `date` (`1-Feb-1994`) to a {@link SearchDay}; undefined when malformed. */
export function parseSearchDate(text: string): SearchDay | undefined {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.findIndex((n) => n.toLowerCase() === m[2].toLowerCase());
  const day = Number(m[1]);
  if (month < 0 || day < 1 || day > 31) return undefined;
  return `${m[3]}-${String(month + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

class KeyReader {
  private pos = 0;
  constructor(private readonly args: readonly ImapValue[]) {}

  get done(): boolean {
    return this.pos >= this.args.length;
  }

  next(): ImapValue {
    const v = this.args[this.pos++];
    if (v === undefined) throw new SearchError('Missing search argument');
    return v;
  }

  string(): string {
    const text = valueText(this.next());
    if (text === undefined) throw new SearchError('Expected a string');
    return text;
  }

  number(): number {
    const v = this.next();
    if (v.type !== 'number') throw new SearchError('Expected a number');
    return v.value;
  }

  key(depth: number): SearchKey {
    if (depth > MAX_SEARCH_DEPTH) throw new SearchError('Search too deeply nested');
    const v = this.next();
    if (v.type === 'list') {
      const inner = new KeyReader(v.items);
      const keys: SearchKey[] = [];
      while (!inner.done) keys.push(inner.key(depth + 1));
      if (keys.length === 0) throw new SearchError('Empty search list');
      return keys.length === 1 ? keys[0] : { op: 'and', keys };
    }
    if (v.type === 'number' || v.type === 'sequence') return { op: 'seq', set: sequence(valueText(v) ?? '') };
    if (v.type !== 'atom') throw new SearchError('Invalid search key');
    const name = v.value.toUpperCase();
    const flag = FLAG_KEYS[name];
    if (flag) return { op: 'flag', flag: flag[0], set: flag[1] };
    const header = HEADER_KEYS[name];
    if (header) return { op: 'header', field: header, value: this.string() };
    const date = DATE_KEYS[name];
    if (date) {
      const day = parseSearchDate(this.string());
      if (!day) throw new SearchError('Invalid date');
      return { op: 'date', field: date[0], cmp: date[1], day };
    }
    switch (name) {
      case 'ALL':
        return { op: 'all' };
      case 'RECENT':
      case 'NEW':
      case 'OLD':
        return { op: name === 'RECENT' ? 'recent' : name === 'NEW' ? 'new' : 'old' };
      case 'KEYWORD':
      case 'UNKEYWORD':
        return { op: 'flag', flag: this.string(), set: name === 'KEYWORD' };
      case 'HEADER':
        return { op: 'header', field: this.string().toLowerCase(), value: this.string() };
      case 'BODY':
      case 'TEXT':
        return { op: name === 'BODY' ? 'body' : 'text', value: this.string() };
      case 'LARGER':
      case 'SMALLER':
        return { op: 'size', cmp: name === 'LARGER' ? 'larger' : 'smaller', size: this.number() };
      case 'UID':
        return { op: 'uid', set: sequence(valueText(this.next()) ?? '') };
      case 'NOT':
        return { op: 'not', key: this.key(depth + 1) };
      case 'OR':
        return { op: 'or', left: this.key(depth + 1), right: this.key(depth + 1) };
      default:
        throw new SearchError('Unknown search key');
    }
  }
}

function sequence(text: string): SequenceSet {
  try {
    return parseSequenceSet(text, { allowSearchResult: true });
  } catch (err) {
    if (err instanceof SequenceSetError) throw new SearchError('Invalid sequence set');
    throw err;
  }
}

/** A parsed SEARCH program. */
export interface SearchProgram {
  /** Upper-cased CHARSET argument, if given. */
  readonly charset?: string;
  readonly key: SearchKey;
}

/**
 * Parses the SEARCH arguments (after any ESEARCH `RETURN (…)`, which the session strips): optional
 * `CHARSET name`, then one or more keys (implicitly ANDed). Throws {@link SearchError}.
 */
export function parseSearch(args: readonly ImapValue[]): SearchProgram {
  const reader = new KeyReader(args);
  let charset: string | undefined;
  const first = args[0];
  if (first?.type === 'atom' && first.value.toUpperCase() === 'CHARSET') {
    reader.next();
    charset = reader.string().toUpperCase();
    if (!SEARCH_CHARSETS.some((c) => c === charset)) throw new SearchError('Unsupported charset', 'BADCHARSET');
  }
  const keys: SearchKey[] = [];
  while (!reader.done) keys.push(reader.key(0));
  if (keys.length === 0) throw new SearchError('Missing search key');
  const key: SearchKey = keys.length === 1 ? keys[0] : { op: 'and', keys };
  return charset ? { charset, key } : { key };
}

/** One message as SEARCH sees it. `raw` is called at most once, only for header/body/sent-date keys. */
export interface SearchCandidate {
  readonly seq: number;
  readonly uid: number;
  readonly flags: ReadonlySet<string>;
  /** `\Recent` for this session (RFC 3501 §2.3.2). */
  readonly recent: boolean;
  readonly internalDate: Date;
  readonly size: number;
  raw(): Promise<Buffer>;
}

/** Mailbox facts for `*` and `$`. */
export interface SearchContext {
  /** Number of messages (value of `*` for sequence numbers). */
  readonly messageCount: number;
  /** Highest UID in the mailbox (value of `*` for UIDs). */
  readonly maxUid: number;
  /** UIDs saved by SEARCHRES (RFC 5182) for `$`; empty when none. */
  readonly savedUids?: ReadonlySet<number>;
}

/** Lazily loaded content of one candidate. */
class Content {
  private tree?: Promise<{ raw: Buffer; root: MimePart }>;
  private body?: string;
  constructor(private readonly candidate: SearchCandidate) {}

  async parsed(): Promise<{ raw: Buffer; root: MimePart }> {
    this.tree ??= this.candidate.raw().then((raw) => ({ raw, root: parseMime(raw) }));
    return this.tree;
  }

  async headers(field: string): Promise<string[]> {
    const { root } = await this.parsed();
    return root.fields.filter((f) => f.name.toLowerCase() === field).map((f) => decodeHeaderWords(f.value));
  }

  async headerText(): Promise<string> {
    const { root } = await this.parsed();
    return root.fields.map((f) => `${f.name}: ${decodeHeaderWords(f.value)}`).join('\n');
  }

  async bodyText(): Promise<string> {
    const { raw, root } = await this.parsed();
    this.body ??= decodedBodyText(root, raw);
    return this.body;
  }
}

function contains(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

function hasFlag(flags: ReadonlySet<string>, flag: string): boolean {
  const lower = flag.toLowerCase();
  for (const f of flags) if (f.toLowerCase() === lower) return true;
  return false;
}

function compareDay(day: SearchDay, cmp: 'before' | 'on' | 'since', wanted: SearchDay): boolean {
  return cmp === 'before' ? day < wanted : cmp === 'on' ? day === wanted : day >= wanted;
}

/** The calendar day of a Date: header as written, ignoring its timezone (RFC 3501 §6.4.4 SENTON). */
function sentDay(value: string | undefined): SearchDay | undefined {
  const m = value && /(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})/.exec(value);
  if (!m) return undefined;
  const year = m[3].length === 4 ? m[3] : String(Number(m[3]) + (Number(m[3]) < 50 ? 2000 : 1900));
  return parseSearchDate(`${m[1]}-${m[2]}-${year}`);
}

function isoDay(date: Date): SearchDay {
  return date.toISOString().slice(0, 10);
}

async function evaluate(key: SearchKey, c: SearchCandidate, ctx: SearchContext, content: Content): Promise<boolean> {
  switch (key.op) {
    case 'all':
      return true;
    case 'flag':
      return hasFlag(c.flags, key.flag) === key.set;
    case 'recent':
      return c.recent;
    case 'new':
      return c.recent && !hasFlag(c.flags, '\\Seen');
    case 'old':
      return !c.recent;
    case 'size':
      return key.cmp === 'larger' ? c.size > key.size : c.size < key.size;
    case 'seq':
    case 'uid': {
      const value = key.op === 'seq' ? c.seq : c.uid;
      if (key.set.searchResult) return ctx.savedUids?.has(c.uid) ?? false; // RFC 5182 §2.1
      return sequenceSetContains(key.set, value, key.op === 'seq' ? ctx.messageCount : ctx.maxUid);
    }
    case 'date': {
      const day = key.field === 'internal' ? isoDay(c.internalDate) : sentDay((await content.headers('date'))[0]);
      return day !== undefined && compareDay(day, key.cmp, key.day);
    }
    case 'header': {
      const values = await content.headers(key.field);
      const isAddress = ADDRESS_FIELDS.has(key.field);
      return values.some((v) => contains(v, key.value) || (isAddress && contains(addressSearchText(v), key.value)));
    }
    case 'body':
      return contains(await content.bodyText(), key.value);
    case 'text':
      return contains(await content.headerText(), key.value) || contains(await content.bodyText(), key.value);
    case 'not':
      return !(await evaluate(key.key, c, ctx, content));
    case 'or':
      return (await evaluate(key.left, c, ctx, content)) || evaluate(key.right, c, ctx, content);
    case 'and':
      for (const k of key.keys) if (!(await evaluate(k, c, ctx, content))) return false;
      return true;
  }
}

/** Evaluates `key` for one message. Never throws for malformed messages; rejects only if `raw()` does. */
export async function matchesSearch(key: SearchKey, candidate: SearchCandidate, context: SearchContext): Promise<boolean> {
  return evaluate(key, candidate, context, new Content(candidate));
}
