import type { DeliveryEnvelope } from '../../contracts/mail-store.js';
import { INFO_SEPARATOR, flagsOfLetters } from './maildir-names.js';

/**
 * One record of a folder's append-only state log ({@link FOLDER_LOG_FILE}), one JSON object per line. Short keys keep
 * a delivery's record near 150 bytes. Every change of a message gets a new, strictly increasing modseq (RFC 7162 §3.1).
 *
 * - `h` header (first line; rewritten by compaction): version, UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ at that point.
 * - `a` a message got UID `u`: base name `b`, internal date `d` (ms), size `s`, info letters `l` (`cur/` file) or
 *   `n: 1` (still in `new/`), keywords `k`, delivery envelope `e`, and `i` the EMAILID when it is not the one
 *   the base name gives (a COPY or MOVE keeps its source's, RFC 8474 §5.1).
 * - `f` the flags of `u` are now `l` + `k`; the file is in `cur/` (flag changes move it there).
 * - `c` the files of `u` moved from `new/` to `cur/` unchanged (a client saw them: clears the recent hint).
 * - `x` the messages `u` were expunged, with one new modseq.
 * - `s` the `new/` and `cur/` directory mtimes (ns) right after the writer's change: a reader whose stat shows the same
 *   values knows that no other tool touched the directories since, and skips the directory scan.
 */
export type LogRecord =
  | { t: 'h'; v: 2; uv: number; un: number; hm: number }
  | { t: 'a'; u: number; m: number; b: string; d: number; s: number; l?: string; n?: 1; k?: string[]; e?: DeliveryEnvelope; i?: string }
  | { t: 'f'; u: number; m: number; l: string; k?: string[] }
  | { t: 'c'; u: number[] }
  | { t: 'x'; u: number[]; m: number }
  | { t: 's'; n: string; c: string };

/** Name of the per-folder state log (replaces v0.1's whole-file `postern-uidlist`). */
export const FOLDER_LOG_FILE = 'postern-log';

/** One message as the folder state knows it. */
export interface Entry {
  readonly uid: number;
  /** Unique Maildir name, stable across flag changes. */
  readonly base: string;
  dir: 'new' | 'cur';
  /** Info letters after `:2,` (only in `cur/`), including letters we do not interpret (`P`, lower case). */
  letters: string;
  keywords: readonly string[];
  readonly size: number;
  /** Internal date, ms since the epoch. */
  readonly internalDate: number;
  /** RFC 7162 MODSEQ of the last change. */
  modseq: number;
  /** The delivery envelope (JSON), as given at delivery. */
  readonly envelope?: DeliveryEnvelope;
  /** RFC 8474 EMAILID when it is not the one {@link base} gives: a copy keeps its source's (COPY, MOVE). */
  readonly emailId?: string;
}

/** Changes found while applying records or scanning directories, by UID (for change events). */
export interface FolderChanges {
  readonly added: number[];
  readonly expunged: number[];
  readonly flagged: number[];
}

/** An empty {@link FolderChanges} to fill. */
export function noChanges(): { added: number[]; expunged: number[]; flagged: number[] } {
  return { added: [], expunged: [], flagged: [] };
}

/** The current file name of an entry in its directory. */
export function fileNameOf(entry: Pick<Entry, 'base' | 'dir' | 'letters'>): string {
  return entry.dir === 'new' ? entry.base : entry.base + INFO_SEPARATOR + entry.letters;
}

/** IMAP flags of an entry (system flags from the info letters, plus keywords). */
export function flagsOfEntry(entry: Entry): Set<string> {
  return new Set([...flagsOfLetters(entry.letters), ...entry.keywords]);
}

/**
 * The in-memory state of one folder, rebuilt from its log and kept current by applying new records. Every update is
 * O(1) (plus the number of UIDs a record names); counters for STATUS (unseen, recent, keywords) are maintained as it goes.
 */
export class FolderState {
  uidValidity = 0;
  uidNext = 1;
  highestModseq = 0;
  /** Entries by UID; insertion order is UID order (see {@link list}). */
  private readonly byUid = new Map<number, Entry>();
  private readonly uidOfBase = new Map<string, number>();
  private lastInserted = 0;
  private unordered = false;
  private unseenCount = 0;
  private readonly newUids = new Set<number>();
  private readonly keywordCounts = new Map<string, number>();
  /** Directory mtimes from the last `s` record or own scan. */
  dirStamp: { n: string; c: string } | undefined;

  get size(): number {
    return this.byUid.size;
  }
  get unseen(): number {
    return this.unseenCount;
  }
  /** Messages whose file is still in `new/`. */
  get recent(): number {
    return this.newUids.size;
  }
  /** UIDs of the messages whose file is still in `new/`. */
  inNew(): number[] {
    return [...this.newUids];
  }
  /** Keywords in use, sorted. */
  keywords(): string[] {
    return [...this.keywordCounts.keys()].sort();
  }

  /** Entries in UID order. */
  list(): Entry[] {
    const all = [...this.byUid.values()];
    return this.unordered ? all.sort((a, b) => a.uid - b.uid) : all;
  }
  get(uid: number): Entry | undefined {
    return this.byUid.get(uid);
  }
  byBase(base: string): Entry | undefined {
    const uid = this.uidOfBase.get(base);
    return uid === undefined ? undefined : this.byUid.get(uid);
  }

  /** A fresh UID (the caller writes an `a` record for it). */
  allocateUid(): number {
    return this.uidNext++;
  }
  /** A fresh modseq (the caller writes the record that uses it). */
  allocateModseq(): number {
    return ++this.highestModseq;
  }

  /** Applies one record; `changes` collects what an observer should be told. Unknown UIDs are ignored. */
  apply(record: LogRecord, changes?: FolderChanges): void {
    switch (record.t) {
      case 'h':
        this.uidValidity = record.uv;
        this.uidNext = Math.max(this.uidNext, record.un);
        this.highestModseq = Math.max(this.highestModseq, record.hm);
        return;
      case 'a': {
        this.bump(record.m);
        this.uidNext = Math.max(this.uidNext, record.u + 1);
        if (this.byUid.has(record.u)) return;
        const previous = this.byBase(record.b);
        if (previous !== undefined) this.remove(previous);
        this.insert({
          uid: record.u,
          base: record.b,
          dir: record.n === 1 ? 'new' : 'cur',
          letters: record.n === 1 ? '' : (record.l ?? ''),
          keywords: record.k ?? [],
          size: record.s,
          internalDate: record.d,
          modseq: record.m,
          ...(record.e === undefined ? {} : { envelope: record.e }),
          ...(record.i === undefined ? {} : { emailId: record.i }),
        });
        changes?.added.push(record.u);
        return;
      }
      case 'f': {
        this.bump(record.m);
        const entry = this.byUid.get(record.u);
        if (entry === undefined) return;
        this.count(entry, -1);
        entry.dir = 'cur';
        entry.letters = record.l;
        entry.keywords = record.k ?? [];
        entry.modseq = record.m;
        this.count(entry, 1);
        changes?.flagged.push(record.u);
        return;
      }
      case 'c':
        for (const uid of record.u) {
          const entry = this.byUid.get(uid);
          if (entry === undefined || entry.dir === 'cur') continue;
          this.count(entry, -1);
          entry.dir = 'cur';
          this.count(entry, 1);
        }
        return;
      case 'x':
        this.bump(record.m);
        for (const uid of record.u) {
          const entry = this.byUid.get(uid);
          if (entry === undefined) continue;
          this.remove(entry);
          changes?.expunged.push(uid);
        }
        return;
      case 's':
        this.dirStamp = { n: record.n, c: record.c };
        return;
    }
  }

  /** The records that rebuild this state (compaction): header, then one `a` per message in UID order, then the stamp. */
  snapshot(): LogRecord[] {
    const records: LogRecord[] = [{ t: 'h', v: 2, uv: this.uidValidity, un: this.uidNext, hm: this.highestModseq }];
    for (const entry of this.list()) records.push(appendRecordOf(entry));
    if (this.dirStamp !== undefined) records.push({ t: 's', ...this.dirStamp });
    return records;
  }

  private bump(modseq: number): void {
    if (modseq > this.highestModseq) this.highestModseq = modseq;
  }

  private insert(entry: Entry): void {
    if (entry.uid < this.lastInserted) this.unordered = true;
    this.lastInserted = Math.max(this.lastInserted, entry.uid);
    this.byUid.set(entry.uid, entry);
    this.uidOfBase.set(entry.base, entry.uid);
    this.count(entry, 1);
  }

  private remove(entry: Entry): void {
    this.count(entry, -1);
    this.byUid.delete(entry.uid);
    if (this.uidOfBase.get(entry.base) === entry.uid) this.uidOfBase.delete(entry.base);
  }

  private count(entry: Entry, sign: 1 | -1): void {
    if (!entry.letters.includes('S')) this.unseenCount += sign;
    if (entry.dir === 'new') {
      if (sign > 0) this.newUids.add(entry.uid);
      else this.newUids.delete(entry.uid);
    }
    for (const keyword of entry.keywords) {
      const next = (this.keywordCounts.get(keyword) ?? 0) + sign;
      if (next > 0) this.keywordCounts.set(keyword, next);
      else this.keywordCounts.delete(keyword);
    }
  }
}

/** The `a` record describing an entry as it is now. */
export function appendRecordOf(entry: Entry): LogRecord {
  return {
    t: 'a',
    u: entry.uid,
    m: entry.modseq,
    b: entry.base,
    d: entry.internalDate,
    s: entry.size,
    ...(entry.dir === 'new' ? { n: 1 as const } : { l: entry.letters }),
    ...(entry.keywords.length > 0 ? { k: [...entry.keywords] } : {}),
    ...(entry.envelope === undefined ? {} : { e: entry.envelope }),
    ...(entry.emailId === undefined ? {} : { i: entry.emailId }),
  };
}

/** Parses one log line; undefined for anything that is not a well-formed record (a torn or foreign line). */
export function parseRecord(line: string): LogRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  const int = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  const strings = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
  const ints = (v: unknown): boolean => Array.isArray(v) && v.every(int);
  switch (r.t) {
    case 'h':
      return int(r.uv) && int(r.un) && int(r.hm) ? (r as LogRecord) : undefined;
    case 'a':
      return int(r.u) && int(r.m) && typeof r.b === 'string' && int(r.d) && int(r.s) && (r.l === undefined || typeof r.l === 'string') && strings(r.k) &&
        (r.e === undefined || (typeof r.e === 'object' && r.e !== null)) && (r.i === undefined || typeof r.i === 'string')
        ? (r as LogRecord)
        : undefined;
    case 'f':
      return int(r.u) && int(r.m) && typeof r.l === 'string' && strings(r.k) ? (r as LogRecord) : undefined;
    case 'c':
      return ints(r.u) ? (r as LogRecord) : undefined;
    case 'x':
      return ints(r.u) && int(r.m) ? (r as LogRecord) : undefined;
    case 's':
      return typeof r.n === 'string' && typeof r.c === 'string' ? (r as LogRecord) : undefined;
    default:
      return undefined;
  }
}
