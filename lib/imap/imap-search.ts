/**
 * SEARCH keys (RFC 3501 §6.4.4, RFC 9051 §6.4.4, RFC 7162 MODSEQ): parsing into a key tree. Evaluation per message
 * is in `imap-search-match.ts`.
 */
import { MONTHS } from './imap-format.js';
import { valueText, type ImapValue } from './imap-parser.js';
import { parseSequenceSet, SequenceSetError, type SequenceSet } from './imap-sequence.js';

/** A calendar day `YYYY-MM-DD` (comparisons disregard time and timezone, RFC 3501 §6.4.4). */
export type SearchDay = string;

/** A parsed search key. A top-level program is an `and`. */
export type SearchKey =
  | { readonly op: 'all' }
  | { readonly op: 'flag'; readonly flag: string; readonly set: boolean }
  | { readonly op: 'recent' | 'new' | 'old' }
  | { readonly op: 'header'; readonly field: string; readonly value: string }
  | { readonly op: 'body' | 'text'; readonly value: string }
  | { readonly op: 'date'; readonly field: 'internal' | 'sent' | 'saved'; readonly cmp: 'before' | 'on' | 'since'; readonly day: SearchDay }
  | { readonly op: 'size'; readonly cmp: 'larger' | 'smaller'; readonly size: number }
  | { readonly op: 'seq' | 'uid'; readonly set: SequenceSet }
  | { readonly op: 'modseq'; readonly modseq: number }
  | { readonly op: 'emailid' | 'threadid'; readonly id: string }
  | { readonly op: 'savedatesupported' }
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
const HEADER_KEYS: Readonly<Record<string, string>> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };
const DATE_KEYS: Readonly<Record<string, ['internal' | 'sent' | 'saved', 'before' | 'on' | 'since']>> = {
  BEFORE: ['internal', 'before'], ON: ['internal', 'on'], SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'], SENTON: ['sent', 'on'], SENTSINCE: ['sent', 'since'],
};
/** RFC 8514 §4 save-date keys (only with SAVEDATE). */
const SAVED_DATE_KEYS: Readonly<Record<string, 'before' | 'on' | 'since'>> = { SAVEDBEFORE: 'before', SAVEDON: 'on', SAVEDSINCE: 'since' };
/** RFC 8474 §7 `objectid`. */
const OBJECT_ID = /^[A-Za-z0-9_-]{1,255}$/;

/** Extensions whose keys {@link parseSearch} accepts only when the session offers them. */
export interface SearchOptions {
  /** OBJECTID (RFC 8474 §6: EMAILID, THREADID) and SAVEDATE (RFC 8514 §4: SAVEDBEFORE/ON/SINCE, SAVEDATESUPPORTED). */
  readonly objectIds?: boolean;
}
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
  constructor(
    private readonly args: readonly ImapValue[],
    private readonly options: SearchOptions = {},
  ) {}

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
      const inner = new KeyReader(v.items, this.options);
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
    const saved = this.options.objectIds ? SAVED_DATE_KEYS[name] : undefined;
    if (saved) {
      const day = parseSearchDate(this.string());
      if (!day) throw new SearchError('Invalid date');
      return { op: 'date', field: 'saved', cmp: saved, day };
    }
    if (this.options.objectIds && (name === 'EMAILID' || name === 'THREADID')) {
      const id = this.string();
      if (!OBJECT_ID.test(id)) throw new SearchError('Invalid object id');
      return { op: name === 'EMAILID' ? 'emailid' : 'threadid', id };
    }
    if (this.options.objectIds && name === 'SAVEDATESUPPORTED') return { op: 'savedatesupported' };
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
      case 'MODSEQ': {
        // RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer; we keep no per-flag modseqs.
        if (this.args[this.pos]?.type !== 'number') {
          this.string();
          const type = this.next();
          if (type.type !== 'atom' || !['PRIV', 'SHARED', 'ALL'].includes(type.value.toUpperCase())) throw new SearchError('Invalid entry type');
        }
        return { op: 'modseq', modseq: this.number() };
      }
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
 * `CHARSET name`, then one or more keys (implicitly ANDed); `options` turns on extension keys. Throws {@link SearchError}.
 */
export function parseSearch(args: readonly ImapValue[], options: SearchOptions = {}): SearchProgram {
  const reader = new KeyReader(args, options);
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

/** True when the key uses MODSEQ: the SEARCH response then ends in `(MODSEQ n)` (RFC 7162 §3.1.5). */
export function usesModseq(key: SearchKey): boolean {
  switch (key.op) {
    case 'modseq':
      return true;
    case 'not':
      return usesModseq(key.key);
    case 'or':
      return usesModseq(key.left) || usesModseq(key.right);
    case 'and':
      return key.keys.some(usesModseq);
    default:
      return false;
  }
}
