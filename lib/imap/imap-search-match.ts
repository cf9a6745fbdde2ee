/**
 * Evaluation of parsed SEARCH keys ({@link SearchKey}) per message.
 *
 * String keys match case-insensitively as substrings of RFC 2047-decoded header values and of the decoded
 * (transfer encoding and charset) text of the body's text parts. Message content is loaded only when a key needs it.
 */
import { hasCachedStructure, hasMessageIdentity, type MessageIdentity, type StoredMessage } from '../contracts/mail-store.js';
import { STRUCTURE_FIELDS } from '../mime/mime-structure.js';
import { decodedBodyText, decodeHeaderWords } from './imap-decode.js';
import { addressSearchText } from './imap-envelope.js';
import { parseHeader, parseMime, type HeaderField, type MimePart } from './imap-mime.js';
import { readsInPart } from './imap-partial-read.js';
import { parseSearchDate, type SearchDay, type SearchKey } from './imap-search.js';
import { sequenceSetContains } from './imap-sequence.js';

/** Header fields holding addresses: also matched in their parsed form (RFC 5322 §3.4 without comments). */
const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc', 'sender', 'reply-to']);

/** One message as SEARCH sees it. `raw` is called at most once, only for header/body/sent-date keys. */
export interface SearchCandidate {
  readonly seq: number;
  readonly uid: number;
  readonly flags: ReadonlySet<string>;
  /** `\Recent` for this session (RFC 3501 §2.3.2). */
  readonly recent: boolean;
  readonly internalDate: Date;
  readonly size: number;
  /** RFC 7162 modseq, for the MODSEQ key (0 when unknown). */
  readonly modseq?: number;
  /** EMAILID, THREADID and save date (RFC 8474, RFC 8514) when the store keeps them. */
  readonly identity?: MessageIdentity;
  raw(): Promise<Buffer>;
  /**
   * The store's cached structure, when it keeps one (`CachedStructure`): header keys on the fields it holds
   * ({@link STRUCTURE_FIELDS}: FROM, TO, CC, BCC, SUBJECT, the sent date…) are answered from it without reading the message.
   */
  structure?(): Promise<MimePart>;
  /**
   * The message's header octets alone, when the store gives them without the rest (a large Maildir message, see
   * `imap-partial-read.ts`): header keys on other fields read only the header.
   */
  header?(): Promise<Buffer>;
}

/** `m` as SEARCH sees it: sequence number `seq`, `recent` for this session; its store's cached structure and header. */
export function searchCandidate(m: StoredMessage, seq: number, recent: boolean): SearchCandidate {
  const identity = hasMessageIdentity(m) ? m : undefined;
  const candidate = { seq, uid: m.uid, flags: m.flags, recent, internalDate: m.internalDate, size: m.size, modseq: m.modseq, identity, raw: () => m.raw() };
  if (readsInPart(m)) return { ...candidate, structure: () => m.structure(), header: async () => m.readPrefix((await m.structure()).bodyStart) };
  return hasCachedStructure(m) ? { ...candidate, structure: () => m.structure() } : candidate;
}

/** Mailbox facts for `*` and `$`. */
export interface SearchContext {
  /** Number of messages (value of `*` for sequence numbers). */
  readonly messageCount: number;
  /** Highest UID in the mailbox (value of `*` for UIDs). */
  readonly maxUid: number;
  /** UIDs saved by SEARCHRES (RFC 5182) for `$`; empty when none. */
  readonly savedUids?: ReadonlySet<number>;
  /** The mailbox keeps save dates (RFC 8514 §4 SAVEDATESUPPORTED). */
  readonly saveDates?: boolean;
}

/** Lazily loaded content of one candidate. */
class Content {
  private tree?: Promise<{ raw: Buffer; root: MimePart }>;
  private body?: string;
  private headerFields?: Promise<readonly HeaderField[]>;
  constructor(private readonly candidate: SearchCandidate) {}

  async parsed(): Promise<{ raw: Buffer; root: MimePart }> {
    this.tree ??= this.candidate.raw().then((raw) => ({ raw, root: parseMime(raw) }));
    return this.tree;
  }

  async headers(field: string): Promise<string[]> {
    const fields = this.candidate.structure && STRUCTURE_FIELDS.has(field) ? (await this.candidate.structure()).fields : await this.allFields();
    return fields.filter((f) => f.name.toLowerCase() === field).map((f) => decodeHeaderWords(f.value));
  }

  /** Every header field: from the header alone when the candidate gives it, else from the message read whole. */
  private allFields(): Promise<readonly HeaderField[]> {
    const header = this.candidate.header;
    if (header === undefined || this.tree !== undefined) return this.parsed().then((p) => p.root.fields);
    return (this.headerFields ??= header().then((octets) => parseHeader(octets, 0, octets.length).fields));
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
    case 'modseq':
      return (c.modseq ?? 0) >= key.modseq;
    case 'date': {
      // A message without a save date is compared by its internal date (SAVEDBEFORE/ON/SINCE, RFC 8514 §4).
      const day =
        key.field === 'internal' ? isoDay(c.internalDate)
        : key.field === 'saved' ? isoDay(c.identity?.saveDate ?? c.internalDate)
        : sentDay((await content.headers('date'))[0]);
      return day !== undefined && compareDay(day, key.cmp, key.day);
    }
    case 'emailid':
      return c.identity?.emailId === key.id;
    case 'threadid':
      return c.identity?.threadId !== undefined && c.identity.threadId === key.id;
    case 'savedatesupported':
      return ctx.saveDates === true;
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
