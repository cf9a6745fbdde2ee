import { hasMailboxIdentity, isMailStoreError, SYSTEM_FLAGS, type MailboxEvent, type StoredMessage, type UserMailboxes } from '../contracts/mail-store.js';
import { atom, serializeImap, serializeImapItems, type ImapResponseValue } from './imap-format.js';
import { ContextSearches } from './imap-context-search.js';
import type { RecentTracker } from './imap-recent.js';
import { searchCandidate, type SearchCandidate } from './imap-search-match.js';
import { formatSequenceSet } from './imap-sequence.js';

/** Untagged responses produced by {@link SelectedMailbox.sync}, and whether the mailbox vanished. */
export interface SyncResult {
  /** Wire lines with CRLF, in the order to send them. */
  readonly lines: string[];
  /** The mailbox was deleted by someone else: the session should say BYE (RFC 3501 §7.1.5). */
  readonly gone: boolean;
}

/**
 * The selected-mailbox state of one IMAP session (RFC 3501 §2.3.1.2, §5.2, §7.3, §7.4): the message sequence
 * number ↔ UID map as the client knows it, the flags the client was last told, which messages are `\Recent` for
 * this session, and the changes still to report.
 *
 * The session feeds it store `watch` events with {@link note}; that only marks it dirty. At the moments
 * RFC 3501 §5.2/§7 allow, the session calls {@link sync}, which re-reads the mailbox and turns the
 * differences into `* n EXPUNGE`, `* n FETCH (UID … FLAGS …)`, `* n EXISTS` and `* n RECENT`. Expunges are held
 * back while a command that uses sequence numbers runs (RFC 3501 §7.4.1: not while responding to FETCH,
 * STORE or SEARCH), so the numbers the client uses stay valid until it can be told.
 *
 * `\Recent` (RFC 3501 §2.3.2) comes from the server's {@link RecentTracker}: at SELECT and at each sync, the UIDs
 * no session has been told about yet are this session's recent messages. EXAMINE only peeks: it shows them as
 * recent but leaves them recent for the next SELECT (RFC 3501 §6.3.2).
 *
 * Keywords: the client is told every keyword in `* FLAGS` before a FETCH shows it (RFC 3501 §7.2.6), so a
 * keyword that appears later (this session's STORE, or another session's) is announced with new `* FLAGS` and
 * `* OK [PERMANENTFLAGS …]` responses first ({@link announceKeywords}).
 */
export class SelectedMailbox {
  private entries: StoredMessage[];
  private readonly recent = new Set<number>();
  private readonly knownKeywords: Set<string>;
  private dirty = false;
  private deleted = false;
  /** CONDSTORE is on for the session (RFC 7162 §3.1): FETCH responses with FLAGS carry MODSEQ. */
  condstore = false;
  /** QRESYNC is on (RFC 7162 §3.2.10): expunges are reported as `* VANISHED uid-set`, not `* n EXPUNGE`. */
  qresync = false;
  /** IMAP4rev2 is on (RFC 9051 Appendix E): no `\Recent` flag and no `* n RECENT` responses. */
  rev2 = false;
  /** HIGHESTMODSEQ as last read from the store (RFC 7162 §3.1.2.1). */
  highestModseq: number;
  /** Live `SEARCH RETURN (UPDATE)` searches (RFC 5267 §4). */
  readonly contexts = new ContextSearches();
  /** MAILBOXID (RFC 8474 §4) when the store has object identity. */
  mailboxId?: string;
  /** UIDs saved by `SEARCH RETURN (SAVE)` for `$` (RFC 5182 §2.1); empty after SELECT. */
  searchResult: ReadonlySet<number> = new Set();

  private constructor(
    /** Canonical name (follows a rename of the selected mailbox). */
    public name: string,
    /** EXAMINE (RFC 3501 §6.3.2): no flag changes, no expunge. */
    readonly readOnly: boolean,
    readonly uidValidity: number,
    /** UIDNEXT at selection time (RFC 3501 §2.3.1.1). */
    readonly uidNext: number,
    keywords: readonly string[],
    messages: StoredMessage[],
    private readonly tracker: RecentTracker,
    private readonly username: string,
    recentHint: number,
    highestModseq: number,
  ) {
    this.highestModseq = highestModseq;
    this.entries = messages;
    this.knownKeywords = new Set(keywords);
    for (const m of messages) for (const f of m.flags) if (!f.startsWith('\\')) this.knownKeywords.add(f);
    this.claimRecent(recentHint);
  }

  /**
   * Selects `name` through the user's view; `tracker` decides `\Recent` across sessions.
   * @throws MailStoreError `NO_SUCH_MAILBOX` (the session maps it to `NO [NONEXISTENT]`).
   */
  static async open(view: UserMailboxes, name: string, readOnly: boolean, tracker: RecentTracker): Promise<SelectedMailbox> {
    const info = await view.info(name);
    const messages = await view.messages(info.name, { peek: readOnly });
    const selected = new SelectedMailbox(info.name, readOnly, info.uidValidity, info.uidNext, info.keywords, messages, tracker, view.username, info.recent, info.highestModseq);
    if (hasMailboxIdentity(info)) selected.mailboxId = info.mailboxId;
    return selected;
  }

  /** Keywords the client has been told in `* FLAGS` (RFC 3501 §7.2.6), in the order announced. */
  get keywords(): string[] {
    return [...this.knownKeywords];
  }

  /** `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]` (RFC 3501 §7.2.6, §7.1): at SELECT and when keywords appear. */
  flagsResponses(): string[] {
    const flags = [...SYSTEM_FLAGS, ...this.knownKeywords].map(atom);
    // RFC 3501 §7.1: `\*` says new keywords may be created; EXAMINE allows no change at all.
    const permanent = this.readOnly ? [] : [...flags, atom('\\*')];
    return [`* FLAGS ${serializeImapItems([flags])}\r\n`, `* OK [PERMANENTFLAGS ${serializeImapItems([permanent])}] Flags permitted\r\n`];
  }

  /** New `* FLAGS`/`PERMANENTFLAGS` lines when `messages` carry keywords the client was not told yet, else none. */
  announceKeywords(messages: Iterable<StoredMessage>): string[] {
    let added = false;
    for (const m of messages) {
      for (const f of m.flags) {
        if (f.startsWith('\\') || this.knownKeywords.has(f)) continue;
        this.knownKeywords.add(f);
        added = true;
      }
    }
    return added ? this.flagsResponses() : [];
  }

  private claimRecent(hint: number): void {
    const key = { username: this.username, mailbox: this.name, uidValidity: this.uidValidity };
    for (const uid of this.tracker.claim(key, this.uids, hint, this.readOnly)) this.recent.add(uid);
  }

  /** Number of messages as the client knows it (`*` for sequence numbers). */
  get count(): number {
    return this.entries.length;
  }

  /** UIDs in sequence order (for `resolveUidSet`). */
  get uids(): number[] {
    return this.entries.map((m) => m.uid);
  }

  /** Highest UID the client knows, 0 when empty. */
  get maxUid(): number {
    return this.entries.length > 0 ? this.entries[this.entries.length - 1].uid : 0;
  }

  /** Number of `\Recent` messages (for `* n RECENT`). */
  get recentCount(): number {
    return this.recent.size;
  }

  /** True when a store event arrived since the last sync (or expunges are still held back). */
  get isDirty(): boolean {
    return this.dirty || this.deleted;
  }

  /** The message with sequence number `seq` (1-based). */
  at(seq: number): StoredMessage {
    const m = this.entries[seq - 1];
    if (!m) throw new RangeError(`no message ${seq}`);
    return m;
  }

  /** True when `uid` is `\Recent` for this session. */
  isRecent(uid: number): boolean {
    return this.recent.has(uid);
  }

  /** The flags to report for a message: its stored flags plus `\Recent` when recent for this session. */
  flagsOf(message: StoredMessage): string[] {
    const flags = [...message.flags];
    if (!this.rev2 && this.recent.has(message.uid)) flags.push('\\Recent');
    return flags;
  }

  /** Sequence number of the first message without `\Seen`, or undefined (SELECT's `[UNSEEN n]`). */
  firstUnseen(): number | undefined {
    const i = this.entries.findIndex((m) => !m.flags.has('\\Seen'));
    return i < 0 ? undefined : i + 1;
  }

  /** Records a store event of this user; events of other mailboxes are ignored. Runs synchronously in the store's call. */
  note(event: MailboxEvent): void {
    if (event.mailbox !== this.name) return;
    if (event.type === 'mailbox') {
      if (event.change === 'deleted') this.deleted = true;
      else if (event.change === 'renamed' && event.newName) this.name = event.newName;
      return;
    }
    this.dirty = true;
  }

  /** Replaces the snapshots of messages whose flags this session changed itself (STORE, implicit `\Seen`). */
  applyFlags(updated: readonly StoredMessage[]): void {
    const byUid = new Map(updated.map((m) => [m.uid, m]));
    for (const m of updated) this.highestModseq = Math.max(this.highestModseq, m.modseq);
    this.entries = this.entries.map((m) => byUid.get(m.uid) ?? m);
  }

  /**
   * Re-reads the mailbox when dirty and returns the untagged responses that bring the client up to date.
   * With `allowExpunge` false, messages gone from the store stay in the map (their sequence numbers keep
   * meaning the same message) and are reported by a later sync.
   * @throws whatever the store throws other than `NO_SUCH_MAILBOX` (a bug; the session logs it).
   */
  async sync(view: UserMailboxes, allowExpunge: boolean): Promise<SyncResult> {
    if (this.deleted) return { lines: [], gone: true };
    if (!this.dirty) return { lines: [], gone: false };
    this.dirty = false;
    let latest: StoredMessage[];
    let hint: number;
    try {
      const info = await view.info(this.name);
      hint = info.recent;
      this.highestModseq = Math.max(this.highestModseq, info.highestModseq);
      latest = await view.messages(this.name, { peek: this.readOnly });
    } catch (err) {
      if (isMailStoreError(err, 'NO_SUCH_MAILBOX')) return { lines: [], gone: true };
      throw err;
    }
    const lines: string[] = [];
    const current = new Map(latest.map((m) => [m.uid, m]));
    // RFC 3501 §7.4.1: each EXPUNGE renumbers the later messages at once, so go from the highest number down.
    let heldBack = false;
    const vanished: number[] = [];
    if (allowExpunge && this.contexts.isActive) {
      const gone = new Set(this.entries.filter((m) => !current.has(m.uid)).map((m) => m.uid));
      const seqs = new Map(this.entries.map((m, i) => [m.uid, i + 1]));
      if (gone.size > 0) lines.push(...this.contexts.expunged(gone, (uid) => seqs.get(uid) ?? 0));
    }
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const uid = this.entries[i].uid;
      if (current.has(uid)) continue;
      if (!allowExpunge) {
        heldBack = true;
        continue;
      }
      this.entries.splice(i, 1);
      this.recent.delete(uid);
      if (this.qresync) vanished.push(uid);
      else lines.push(`* ${i + 1} EXPUNGE\r\n`);
    }
    // RFC 7162 §3.2.10: with QRESYNC, one VANISHED response replaces the EXPUNGEs.
    if (vanished.length > 0) lines.push(`* VANISHED ${formatSequenceSet(vanished)}\r\n`);
    if (heldBack) this.dirty = true;
    lines.push(...this.announceKeywords(latest));
    // RFC 3501 §7.4.2: flag changes made by others are reported with an unsolicited FETCH.
    this.entries = this.entries.map((old, i) => {
      const now = current.get(old.uid);
      if (!now || (sameFlags(old.flags, now.flags) && (!this.condstore || old.modseq === now.modseq))) return now ?? old;
      lines.push(this.flagsLine(i + 1, now));
      return now;
    });
    const known = this.maxUid;
    const added = latest.filter((m) => m.uid > known);
    if (added.length > 0) {
      this.entries.push(...added);
      this.claimRecent(hint);
      lines.push(`* ${this.entries.length} EXISTS\r\n`);
      if (!this.rev2) lines.push(`* ${this.recent.size} RECENT\r\n`);
    }
    return { lines, gone: false };
  }

  /** Message `seq` as SEARCH sees it. */
  candidate(seq: number): SearchCandidate {
    const m = this.at(seq);
    return searchCandidate(m, seq, this.recent.has(m.uid));
  }

  /** Messages whose modseq is above `modseq` (RFC 7162 §3.1.4.1 CHANGEDSINCE), as sequence numbers. */
  changedSince(modseq: number): number[] {
    const out: number[] = [];
    this.entries.forEach((m, i) => {
      if (m.modseq > modseq) out.push(i + 1);
    });
    return out;
  }

  /** `* seq FETCH (UID u FLAGS (…))` for one message, with `MODSEQ (n)` under CONDSTORE (RFC 7162 §3.1.4). */
  flagsLine(seq: number, message: StoredMessage, withFlags = true): string {
    const items: ImapResponseValue[] = [atom('UID'), message.uid];
    if (withFlags) items.push(atom('FLAGS'), this.flagsOf(message).map(atom));
    if (this.condstore) items.push(atom('MODSEQ'), [message.modseq]);
    return `* ${seq} FETCH ${serializeImap(items).toString('utf8')}\r\n`;
  }
}

function sameFlags(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const f of a) if (!b.has(f)) return false;
  return true;
}
