/**
 * One stored message of the {@link MailStore} contract, its optional capabilities with their type guards, and the
 * delivery envelope stored with it; `mail-store.ts` re-exports every name.
 */
import type { Readable } from 'node:stream';
import type { MimePart } from '../mime/mime-parse.js';

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
  /** The sender gave `REQUIRETLS` (RFC 8689): TLS was required on every hop. */
  readonly requireTls?: true;
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
 * Optional capability of a {@link StoredMessage}: its first octets without the rest, so that a large message's header
 * or first part is read without the message (IMAP header sections, a text part, PREVIEW; see
 * `lib/imap/imap-partial-read.ts`). With {@link CachedStructure}, whose offsets say how far to read.
 */
export interface PrefixReadableMessage {
  /**
   * The first `octets` of the message (all of it when it is shorter).
   * @throws MailStoreError `NO_SUCH_MESSAGE` when the message was expunged meanwhile.
   */
  readPrefix(octets: number): Promise<Buffer>;
}

/** True when `message` offers {@link PrefixReadableMessage}. */
export function canReadPrefix(message: StoredMessage): message is StoredMessage & PrefixReadableMessage {
  return typeof (message as Partial<PrefixReadableMessage>).readPrefix === 'function';
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
