/**
 * The view one session has on one user's mailboxes (`MailStore.openUser`), the mailbox metadata and the change events
 * of the {@link MailStore} contract; `mail-store.ts` re-exports every name.
 */
import type { StoredMessage } from './stored-message.js';

/**
 * Optional capability of a {@link MailboxInfo} of a selectable mailbox: MAILBOXID (RFC 8474 §4), 1–255 of
 * `A-Z a-z 0-9 _ -`, kept across RENAME and never given to another mailbox of the user (a mailbox deleted and created
 * again gets a new one; renaming INBOX gives the new mailbox a new one and INBOX keeps its own).
 */
export interface MailboxIdentity {
  readonly mailboxId: string;
}

/** True when `info` offers {@link MailboxIdentity}. */
export function hasMailboxIdentity(info: MailboxInfo): info is MailboxInfo & MailboxIdentity {
  return typeof (info as Partial<MailboxIdentity>).mailboxId === 'string';
}

/** Mailbox metadata for LIST/SELECT/STATUS. */
export interface MailboxInfo {
  /** Canonical name with `/` separators. */
  readonly name: string;
  /** RFC 3501 §2.3.1.1; 0 for a `noselect` entry. A recreated name gets a new, larger value. */
  readonly uidValidity: number;
  /** The UID the next message will get (RFC 3501 §2.3.1.1). */
  readonly uidNext: number;
  readonly messages: number;
  /** Messages without `\Seen`. */
  readonly unseen: number;
  /**
   * Messages that no `messages()` call has returned yet (Maildir: files still in `new/`). A hint only: the IMAP
   * layer owns the real \Recent semantics of RFC 3501 §2.3.2.
   */
  readonly recent: number;
  /**
   * The largest modseq ever given in this mailbox (RFC 7162 §3.1.2.1), expunges included: an expunge also takes a new
   * modseq, so this grows after EXPUNGE though no remaining message carries it. 0 for a `noselect` entry.
   */
  readonly highestModseq: number;
  /** Keywords used by at least one message, sorted (for the FLAGS response). */
  readonly keywords: readonly string[];
  /** The name is in the user's subscription list (RFC 3501 §6.3.6). */
  readonly subscribed: boolean;
  /** Some other mailbox lives below this name (\HasChildren, RFC 3348). */
  readonly hasChildren: boolean;
  /**
   * Only a hierarchy level, not a mailbox (\Noselect, RFC 3501 §7.2.2): it exists because children exist. Such
   * entries appear in `list()` only; `info()` refuses them.
   */
  readonly noselect: boolean;
  /** Special-use attribute (RFC 6154), e.g. `\\Sent`, if any. */
  readonly specialUse?: string;
}

/**
 * The view one session has on one user's mailboxes. Names use `/` as the hierarchy separator; `INBOX` is
 * case-insensitive and always exists. Every mutating call emits the matching {@link MailboxEvent}s.
 * Methods taking a mailbox throw MailStoreError `NO_SUCH_MAILBOX` when it does not exist (or is `noselect`).
 * Events are emitted only by stores that support {@link MailboxWatching}.
 */
export interface UserMailboxes {
  readonly username: string;
  /** Every mailbox plus implicit `noselect` parents, sorted by name with `INBOX` first. */
  list(): Promise<MailboxInfo[]>;
  /** Metadata of one selectable mailbox. */
  info(mailbox: string): Promise<MailboxInfo>;
  /**
   * Creates a mailbox and any missing superior levels (RFC 3501 §6.3.3).
   * @throws MailStoreError `ALREADY_EXISTS`, or `CANNOT` for an invalid name (empty level, leading/trailing `/`).
   */
  create(mailbox: string): Promise<void>;
  /**
   * Deletes a mailbox and its messages (RFC 3501 §6.3.4). Children stay: the name then lives on as a `noselect`
   * parent. Emits `expunge` (if it had messages) then `mailbox`/`deleted`.
   * @throws MailStoreError `CANNOT` for INBOX, `NO_SUCH_MAILBOX` for an unknown or `noselect` name.
   */
  delete(mailbox: string): Promise<void>;
  /**
   * Renames a mailbox with all its children (RFC 3501 §6.3.5), keeping UIDVALIDITY, UIDs and subscriptions.
   * Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty; INBOX's children stay.
   * @throws MailStoreError `NO_SUCH_MAILBOX`, `ALREADY_EXISTS` (target exists), `CANNOT` (target below source, invalid name).
   */
  rename(from: string, to: string): Promise<void>;
  /** Adds or removes a name from the subscription list; the mailbox need not exist when unsubscribing. */
  subscribe(mailbox: string, subscribed: boolean): Promise<void>;
  /** The subscription list (names may no longer exist, RFC 3501 §6.3.6), sorted. */
  subscriptions(): Promise<string[]>;
  /**
   * Messages in UID order. Clears the `recent` hint of the returned messages, unless `peek` is set (a read-only
   * look, such as IMAP EXAMINE, must not take `\Recent` away: RFC 3501 §6.3.2).
   */
  messages(mailbox: string, options?: { peek?: boolean }): Promise<StoredMessage[]>;
  /** Appends one message (RFC 3501 §6.3.11). Emits `exists`. */
  append(mailbox: string, raw: Buffer, flags?: string[], internalDate?: Date): Promise<StoredMessage>;
  /**
   * Changes the flags of the given UIDs (unknown UIDs are skipped); resolves the updated messages in UID order.
   * Emits `flags` for the UIDs whose flags changed.
   */
  setFlags(mailbox: string, uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<StoredMessage[]>;
  /**
   * Copies messages with their flags and internal dates (RFC 4315 COPYUID); resolves the pairs of (source uid, new
   * uid) in source UID order. Unknown UIDs are skipped. Emits `exists` on the target.
   */
  copy(from: string, uids: number[], to: string): Promise<Array<[number, number]>>;
  /** Copies then expunges from the source (RFC 6851 MOVE); same result as {@link copy}. */
  move(from: string, uids: number[], to: string): Promise<Array<[number, number]>>;
  /** Removes messages permanently whatever their flags; resolves the uids actually removed, ascending. Emits `expunge`. */
  expunge(mailbox: string, uids: number[]): Promise<number[]>;
  /** Ends the view; later calls throw. Idempotent. */
  release(): Promise<void>;
}

/**
 * A change notification. `username` is canonical, `mailbox` the canonical name. For `renamed`, `mailbox` is the
 * old name and `newName` the new one (one event per renamed mailbox, children included). A `flags` event with no
 * UIDs means "changes may have been missed here: re-read the mailbox" (the PostgreSQL store sends it for the
 * mailboxes of open views after its LISTEN session came back).
 */
export type MailboxEvent =
  | { type: 'exists'; username: string; mailbox: string; uid: number }
  | { type: 'expunge'; username: string; mailbox: string; uids: number[] }
  | { type: 'flags'; username: string; mailbox: string; uids: number[] }
  | { type: 'mailbox'; username: string; mailbox: string; change: 'created' | 'deleted' | 'renamed'; newName?: string };
