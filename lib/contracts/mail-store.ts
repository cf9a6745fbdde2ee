import type { ServiceIdentifier } from 'inversify';
import type { Readable } from 'node:stream';
import type { MimePart } from '../mime/mime-parse.js';
import type { ScramKeys } from '../protocol/sasl/scram-keys.js';

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

/** User accounts known to the store. */
export interface UserDirectory {
  /**
   * Adds or replaces a user (a replaced user keeps its mailboxes). `addresses` are the e-mail addresses delivered to
   * this user (lower-cased by the store); a username containing `@` is always one of its own addresses.
   * @throws MailStoreError `ALREADY_EXISTS` when an address already belongs to another user.
   */
  add(user: { username: string; password: string; addresses?: string[] }): Promise<void>;
  /** Checks a password. Resolves the canonical username, or undefined when the credentials are wrong. Accepts the username or any of its addresses. */
  verify(login: string, password: string): Promise<string | undefined>;
  /** The canonical username that owns an address (case-insensitive), or undefined. */
  findByAddress(address: string): Promise<string | undefined>;
  /** The canonical username for a login (username or address), or undefined. Does not check a password. */
  find(login: string): Promise<string | undefined>;
  /**
   * The plaintext secret for challenge-response mechanisms (APOP, CRAM-MD5); undefined when unknown or when the
   * backend keeps only a hash (then do not offer those mechanisms).
   */
  secretFor(username: string): Promise<string | undefined>;
  /**
   * True when {@link secretFor} can answer: the directory keeps plaintext secrets. False when it keeps only hashes;
   * the default Authenticator then offers no challenge-response mechanism (APOP, CRAM-MD5), so that a client which
   * prefers one (fetchmail tries CRAM-MD5 first) is not refused, delayed and counted as a failed login each time.
   */
  readonly keepsSecrets: boolean;
  /**
   * Optional: true when every user has SCRAM-SHA-256 keys ({@link scramKeysFor} answers for each), so that the default
   * Authenticator can offer SCRAM-SHA-256 without plaintext secrets. The Maildir and PostgreSQL stores make keys
   * whenever they hash a password; users written by an earlier version have none until their password is set again.
   */
  readonly keepsScramKeys?: boolean;
  /** Optional: a user's stored SCRAM-SHA-256 keys (canonical username), or undefined. */
  scramKeysFor?(username: string): Promise<ScramKeys | undefined>;
  /** Every canonical username, sorted. */
  list(): Promise<string[]>;
  /**
   * Optional: removes a user by canonical username, with its addresses. Resolves false when there is no such user.
   * The memory and Maildir stores keep the user's mailboxes (adding the user again finds them); the PostgreSQL store
   * deletes them with the user (its rows reference the user). Used by the test double's `DELETE /api/v1/users/{login}`.
   */
  remove?(username: string): Promise<boolean>;
}

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
 * The SMTP (or LMTP) envelope and session facts of one delivery, as the receiving session saw them. Plain JSON
 * values only, so that every store can persist it as is. Bcc recipients are visible here and nowhere else.
 */
export interface DeliveryEnvelope {
  /** Reverse-path of MAIL FROM without angle brackets; `''` for the null reverse-path `<>`. */
  readonly mailFrom: string;
  /** Every accepted RCPT TO forward-path of the transaction, in order (not only this copy's recipient). */
  readonly rcptTo: readonly string[];
  /** The HELO/EHLO/LHLO argument. */
  readonly helo?: string;
  /** The authenticated login, if the client authenticated. */
  readonly authUser?: string;
  /** The client's address and port (after a PROXY protocol header, the proxied client's). */
  readonly clientAddress?: string;
  readonly clientPort?: number;
  /** TLS facts of the session, when it was encrypted. */
  readonly tls?: {
    readonly protocol: string;
    readonly cipher: string;
    /** Subject of the client certificate, when one was presented (RFC 4514-like text). */
    readonly clientCertSubject?: string;
  };
  /** The protocol that received it, e.g. `smtp`, `lmtp`. */
  readonly protocol?: string;
  /** When the transaction ended (ISO 8601). */
  readonly receivedAt: string;
  /**
   * The DSN requests of the transaction (RFC 3461; only with `smtp.dsn`), when the client made any: MAIL's `RET` and
   * `ENVID`, and for each forward-path of {@link rcptTo}, in the same order, its `NOTIFY` and `ORCPT` (`{}` when it
   * gave neither; `recipients` absent when none did).
   */
  readonly dsn?: {
    readonly ret?: 'FULL' | 'HDRS';
    readonly envid?: string;
    readonly recipients?: readonly { readonly notify?: readonly string[]; readonly orcpt?: { readonly addressType: string; readonly address: string } }[];
  };
}

/**
 * The system flags a message may carry, in canonical spelling (RFC 3501 §2.3.2, RFC 9051 §2.3.2): stores keep
 * these and keywords; `\\Recent` is session-only and never stored. The order is the one IMAP lists them in.
 */
export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'] as const;

/**
 * One stored message: a snapshot taken when it was returned (flags do not change under the caller's feet; re-read
 * `messages()` after an event). `raw` holds the exact octets as delivered (normally CRLF line ends).
 */
export interface StoredMessage {
  /** IMAP UID (RFC 3501 §2.3.1.1): strictly ascending in its mailbox, never reused while UIDVALIDITY stays. */
  readonly uid: number;
  /** Internal date (RFC 3501 §2.3.3). */
  readonly internalDate: Date;
  /** Size in octets of `raw()` (RFC822.SIZE, POP3 LIST). */
  readonly size: number;
  /** System flags in canonical spelling (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`) and keywords. Never `\Recent`. */
  readonly flags: ReadonlySet<string>;
  /**
   * Modification sequence (RFC 7162 §3.1): positive, strictly increasing within the mailbox each time a message is
   * added or its flags change, and never reused while UIDVALIDITY stays (persisted by durable stores).
   */
  readonly modseq: number;
  /** The envelope given to {@link MailStore.deliver}, when there was one (not for APPEND or COPY). */
  readonly envelope?: DeliveryEnvelope;
  /**
   * Loads the raw octets.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when the message was expunged meanwhile (disk backends).
   */
  raw(): Promise<Buffer>;
}

/**
 * Optional capability of a {@link StoredMessage}: its MIME structure from the store's index cache, so that IMAP
 * ENVELOPE, BODY and BODYSTRUCTURE are built without reading the message file. Offsets refer to `raw()`; header
 * fields are at least those of `STRUCTURE_FIELDS` (`lib/mime/mime-structure.ts`), so use it only for those items.
 */
export interface CachedStructure {
  /**
   * The structure, parsed on delivery or on first call and then cached by the store.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when the message was expunged and was not cached yet.
   */
  structure(): Promise<MimePart>;
  /**
   * The size with every line ending in CRLF (`canonicalSize` in `lib/mime/mime-structure.ts`; POP3 LIST/STAT),
   * cached with the structure. Same errors as {@link structure}.
   */
  canonicalSize(): Promise<number>;
}

/** True when `message` offers {@link CachedStructure}. */
export function hasCachedStructure(message: StoredMessage): message is StoredMessage & CachedStructure {
  return typeof (message as Partial<CachedStructure>).structure === 'function';
}

/**
 * Optional capability of a {@link StoredMessage}: its octets as a stream of chunks, so that a large message is sent
 * without being held whole in memory (POP3 RETR).
 */
export interface StreamableMessage {
  /**
   * Opens the message for reading; the caller consumes or destroys the stream.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when the message was expunged meanwhile.
   */
  openStream(): Promise<Readable>;
}

/** True when `message` offers {@link StreamableMessage}. */
export function isStreamable(message: StoredMessage): message is StoredMessage & StreamableMessage {
  return typeof (message as Partial<StreamableMessage>).openStream === 'function';
}

/**
 * Optional capability of a {@link StoredMessage}: persistent object identifiers (RFC 8474 §5) and the save date
 * (RFC 8514). Present on every message of a store that offers {@link ObjectIdentity}.
 */
export interface MessageIdentity {
  /**
   * EMAILID (RFC 8474 §5.1): 1–255 of `A-Z a-z 0-9 _ -`, never changes for this message, and two messages with the
   * same EMAILID have the same octets (the built-in stores derive it from the content or the message file's name).
   */
  readonly emailId: string;
  /** THREADID (RFC 8474 §5.2); undefined when the store does not thread (IMAP then answers NIL). */
  readonly threadId?: string;
  /** When the message was saved into this mailbox (RFC 8514 §2: APPEND, COPY, MOVE, delivery); undefined when unknown. */
  readonly saveDate?: Date;
}

/** True when `message` offers {@link MessageIdentity}. */
export function hasMessageIdentity(message: StoredMessage): message is StoredMessage & MessageIdentity {
  return typeof (message as Partial<MessageIdentity>).emailId === 'string';
}

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
