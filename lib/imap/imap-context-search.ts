/**
 * CONTEXT=SEARCH (RFC 5267 §4): `SEARCH RETURN (UPDATE …)` keeps a search alive while the mailbox stays selected;
 * the server then tells the client how its result changes with `* ESEARCH (TAG "t") ADDTO (0 set)` and
 * `REMOVEFROM (0 set)` until `CANCELUPDATE "t"`. Position 0 is used because SEARCH results are unordered
 * (RFC 5267 §4.3). One instance per selected mailbox, so an unselect drops every context.
 */
import { matchesSearch, type SearchCandidate } from './imap-search-match.js';
import type { SearchKey } from './imap-search.js';
import { formatSequenceSet } from './imap-sequence.js';

/** RFC 5267 §4.2 does not bound it; each live search costs a re-evaluation after every command. */
export const MAX_CONTEXT_SEARCHES = 16;

interface ContextSearch {
  readonly tag: string;
  readonly uid: boolean;
  readonly key: SearchKey;
  /** UIDs currently in the result. */
  result: Set<number>;
}

/** What {@link ContextSearches.refresh} needs of the selected mailbox. */
export interface ContextSource {
  readonly count: number;
  readonly maxUid: number;
  candidate(seq: number): SearchCandidate;
}

function esearch(c: ContextSearch, what: 'ADDTO' | 'REMOVEFROM', ids: number[]): string {
  return `* ESEARCH (TAG "${c.tag.replace(/(["\\])/g, '\\$1')}")${c.uid ? ' UID' : ''} ${what} (0 ${formatSequenceSet(ids)})\r\n`;
}

/** The live searches of one selected mailbox. */
export class ContextSearches {
  private readonly searches = new Map<string, ContextSearch>();

  /** True when some search is live (updates then re-evaluate it). */
  get isActive(): boolean {
    return this.searches.size > 0;
  }

  /** Starts updates for the search of `tag` whose result is `uids`. False when too many are live. */
  add(tag: string, uid: boolean, key: SearchKey, uids: Iterable<number>): boolean {
    if (!this.searches.has(tag) && this.searches.size >= MAX_CONTEXT_SEARCHES) return false;
    this.searches.set(tag, { tag, uid, key, result: new Set(uids) });
    return true;
  }

  /** CANCELUPDATE (RFC 5267 §4.3). False when no such search is live. */
  cancel(tag: string): boolean {
    return this.searches.delete(tag);
  }

  /** REMOVEFROM for results about to be expunged, numbered as before the expunge (`seqOf`). */
  expunged(uids: ReadonlySet<number>, seqOf: (uid: number) => number): string[] {
    const lines: string[] = [];
    for (const c of this.searches.values()) {
      const gone = [...c.result].filter((u) => uids.has(u));
      if (gone.length === 0) continue;
      for (const u of gone) c.result.delete(u);
      lines.push(esearch(c, 'REMOVEFROM', gone.map((u) => (c.uid ? u : seqOf(u)))));
    }
    return lines;
  }

  /** Re-evaluates every live search and returns ADDTO/REMOVEFROM lines for what changed. */
  async refresh(source: ContextSource): Promise<string[]> {
    const lines: string[] = [];
    const context = { messageCount: source.count, maxUid: source.maxUid };
    for (const c of this.searches.values()) {
      const now = new Map<number, number>();
      for (let seq = 1; seq <= source.count; seq++) {
        const candidate = source.candidate(seq);
        if (await matchesSearch(c.key, candidate, context).catch(() => false)) now.set(candidate.uid, seq);
      }
      const seqOf = new Map<number, number>();
      for (let seq = 1; seq <= source.count; seq++) seqOf.set(source.candidate(seq).uid, seq);
      const removed = [...c.result].filter((u) => !now.has(u));
      const added = [...now.keys()].filter((u) => !c.result.has(u));
      if (removed.length > 0) lines.push(esearch(c, 'REMOVEFROM', removed.map((u) => (c.uid ? u : (seqOf.get(u) ?? 0))).filter((n) => n > 0)));
      if (added.length > 0) lines.push(esearch(c, 'ADDTO', added.map((u) => (c.uid ? u : (now.get(u) as number)))));
      c.result = new Set(now.keys());
    }
    return lines;
  }
}
