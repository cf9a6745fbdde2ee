import type { ServiceIdentifier } from 'inversify';
import type { DeliveryEnvelope, StoredMessage } from './stored-message.js';
import type { UserDirectory } from './user-directory.js';
import type { MailboxEvent, UserMailboxes } from './user-mailboxes.js';

// The users, the stored messages and a session's view of the mailboxes have their own modules; every name stays
// importable from here, where stores, protocols and `lib/index.ts` import the contract from.
export { canReadPrefix, hasCachedStructure, hasMessageIdentity, isStreamable, SYSTEM_FLAGS } from './stored-message.js';
export type { CachedStructure, DeliveryEnvelope, MessageIdentity, PrefixReadableMessage, StoredMessage, StreamableMessage } from './stored-message.js';
export type { UserDirectory } from './user-directory.js';
export { hasMailboxIdentity } from './user-mailboxes.js';
export type { MailboxEvent, MailboxIdentity, MailboxInfo, UserMailboxes } from './user-mailboxes.js';

/**
 * The mail store shared by SMTP (delivery), POP3 and IMAP (access).
 *
 * Backends implement it (`lib/backends/memory`, `lib/backends/maildir`); protocol code only sees this
 * interface. All methods are async so that disk or network backends fit. Methods throw
 * {@link MailStoreError} with a closed `code` for expected refusals (unknown mailbox, already exists…);
 * anything else is a bug in the backend.
 *
 * Mailbox names are Unicode strings (the IMAP layer converts modified UTF-7 / UTF-8 on the wire) and use
 * `/` as the hierarchy separator. `INBOX` is case-insensitive (RFC 3501 §5.1), also as the first level of
 * a longer name (`inbox/Drafts` is `INBOX/Drafts`). Stores return the canonical spelling.
 */
export interface MailStore {
  /** Users and credentials. */
  readonly users: UserDirectory;

  /**
   * True when {@link deliver} keeps the very Buffer it is given for as long as the message lives (the memory store).
   * Postern's SMTP backend then copies messages into 64 MB arenas rather than 256 KB slabs: V8 counts ArrayBuffer
   * memory against its next full collection once, when an arena is allocated, instead of message by message. An
   * arena's memory is returned once every message cut from it is gone. Leave it unset when the store writes the
   * message out (a file, a database) and drops the Buffer.
   */
  readonly keepsMessageBuffers?: boolean;

  /**
   * Delivers one message into `INBOX` (or `options.mailbox`) of the user that owns `address` (SMTP's final step).
   * Postern's stores also take a canonical username here (how the postmaster alias keeps the envelope).
   * Resolves only once the message is durably stored: after it resolves the caller may answer 250 (RFC 5321 §6.1).
   * A store that supports {@link MailboxWatching} emits an `exists` event before resolving. The store takes ownership
   * of `raw` and may keep that very buffer: the caller must not modify it afterwards (the same holds for
   * `UserMailboxes.append`).
   * @throws MailStoreError `NO_SUCH_USER` when no local user owns the address (unless the store auto-creates users),
   *   `NO_SUCH_MAILBOX` when `options.mailbox` does not exist, `OVER_QUOTA` when the store enforces a quota.
   */
  deliver(address: string, raw: Buffer, options?: DeliverOptions): Promise<StoredMessage>;

  /**
   * Opens the mailboxes of one user (after authentication; the store does not check a password here).
   * The caller must `release()` the view when the session ends.
   * @throws MailStoreError `NO_SUCH_USER` (unless the store auto-creates users).
   */
  openUser(username: string): Promise<UserMailboxes>;
}

/**
 * Optional capability: the exclusive maildrop lock of RFC 1939 §8 (one POP3 session per maildrop), held across every
 * process that shares the store. A store without it still works; POP3 then locks within its own process only.
 */
export interface MaildropLocking {
  /**
   * Takes the exclusive maildrop lock of a user. Resolves a release function (idempotent). `owner` is a free text
   * shown in the refusal (e.g. `pop3 cid=7`). The lock only excludes other `lock()` callers; IMAP sessions and
   * deliveries are not blocked.
   * @throws MailStoreError `IN_USE` when someone else holds the lock, `NO_SUCH_USER` for an unknown user
   *   (unless the store auto-creates users).
   */
  lock(username: string, owner: string): Promise<() => void>;
}

/** True when `store` offers {@link MaildropLocking}. */
export function supportsMaildropLock<S extends MailStore>(store: S): store is S & MaildropLocking {
  return typeof (store as Partial<MaildropLocking>).lock === 'function';
}

/**
 * Optional capability: change notifications for every mailbox of every user (IMAP IDLE and unsolicited responses),
 * including changes made by other processes or nodes that share the store (within about a second). Without it,
 * IMAP sessions see other sessions' changes only when they re-read the mailbox.
 */
export interface MailboxWatching {
  /**
   * Subscribes to changes. For changes made through this process, the listener runs synchronously after the change
   * is stored, before the changing call resolves; it must not throw (a throwing listener is reported with
   * `process.emitWarning` and the change stands). Returns an unsubscribe function.
   */
  watch(listener: (event: MailboxEvent) => void): () => void;
}

/** True when `store` offers {@link MailboxWatching}. */
export function supportsWatch<S extends MailStore>(store: S): store is S & MailboxWatching {
  return typeof (store as Partial<MailboxWatching>).watch === 'function';
}
/** Injection token of {@link MailStore}. */
export const MailStore = Symbol.for('postern.MailStore') as ServiceIdentifier<MailStore>;

/** Options shared by every mail store backend. */
export interface MailStoreOptions {
  /**
   * Test-double mode (GreenMail-like): delivering to an unknown address creates a user whose username is the
   * lower-cased address (with that address, and the address itself as password), and `openUser`/`lock` of an
   * unknown login create that user too. Off by default.
   */
  readonly autoCreateUsers?: boolean;
}
/** Injection token of {@link MailStoreOptions}. */
export const MailStoreOptions = Symbol.for('postern.MailStoreOptions') as ServiceIdentifier<MailStoreOptions>;

/** Options of {@link MailStore.deliver}. */
export interface DeliverOptions {
  /** Mailbox to deliver into; `INBOX` by default. */
  mailbox?: string;
  /** Initial flags (system flags and keywords). */
  flags?: string[];
  /** Internal date (RFC 3501 §2.3.3); now by default. */
  internalDate?: Date;
  /** How the message arrived (SMTP envelope and session facts); stored with the message and returned on it. */
  envelope?: DeliveryEnvelope;
}

/**
 * Optional store capability: every selectable {@link MailboxInfo} is a {@link MailboxIdentity} and every
 * {@link StoredMessage} a {@link MessageIdentity}, persisted like the rest of the store. IMAP then advertises OBJECTID
 * (RFC 8474) and SAVEDATE (RFC 8514). The shared store suite checks the identities of stores that claim it.
 */
export interface ObjectIdentity {
  readonly hasObjectIdentity: true;
}

/** True when `store` offers {@link ObjectIdentity}. */
export function supportsObjectIdentity<S extends MailStore>(store: S): store is S & ObjectIdentity {
  return (store as Partial<ObjectIdentity>).hasObjectIdentity === true;
}

/** Expected refusals from a store. */
export type MailStoreErrorCode =
  | 'NO_SUCH_USER'
  | 'NO_SUCH_MAILBOX'
  | 'NO_SUCH_MESSAGE'
  | 'ALREADY_EXISTS'
  | 'CANNOT'
  | 'IN_USE'
  | 'OVER_QUOTA';

/** Thrown by stores for expected refusals; protocol layers map `code` to their own replies (e.g. IMAP `[NONEXISTENT]`, `[INUSE]`, RFC 5530). */
export class MailStoreError extends Error {
  /** @param code closed reason, the only thing protocol code should branch on. */
  constructor(readonly code: MailStoreErrorCode, message: string) {
    super(message);
    this.name = 'MailStoreError';
  }
}

/** True when `err` is a {@link MailStoreError}, optionally with the given code. */
export function isMailStoreError(err: unknown, code?: MailStoreErrorCode): err is MailStoreError {
  return err instanceof MailStoreError && (code === undefined || err.code === code);
}
