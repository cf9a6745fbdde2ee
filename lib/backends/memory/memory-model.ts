import { randomUUID } from 'node:crypto';
import type { DeliveryEnvelope, MessageIdentity, StoredMessage } from '../../contracts/mail-store.js';
import { emailIdOfContent, mailboxIdOf } from '../shared/object-ids.js';
import { nextUidValidity } from '../shared/store-events.js';

/**
 * One message of the memory store. Kept small on purpose: every full garbage collection walks every stored message,
 * so each object a message holds costs CPU on every later delivery (100,000 stored messages made a 1 MB delivery
 * about twice as expensive with ~12 objects per message). One object for the record, the body Buffer, the envelope;
 * the dates as numbers (no Date object), no Set for a message without flags, and the EMAILID only once asked for.
 */
export interface MemMessage {
  readonly uid: number;
  /** Internal date in ms since the epoch (a number, not a Date: one object less per stored message). */
  readonly internalTime: number;
  readonly raw: Buffer;
  /** Replaced on every change, never edited in place ({@link NO_FLAGS} is shared by every message without flags). */
  flags: ReadonlySet<string>;
  /** RFC 7162 modification sequence, renewed on every flag change. */
  modseq: number;
  readonly envelope: DeliveryEnvelope | undefined;
  /** Not yet returned by messages(). */
  recent: boolean;
  /** RFC 8474 EMAILID (content hash), computed on first use by {@link emailIdOf}. */
  emailId: string | undefined;
  /**
   * RFC 8514 save date, in ms since the epoch; undefined when it equals {@link internalTime} (a delivery without an
   * internal date of its own): a time in ms is a heap number, one object less per message (read it with {@link saveTimeOf}).
   */
  readonly saveTime: number | undefined;
}

/** The message's RFC 8514 save date in ms since the epoch. */
export function saveTimeOf(message: MemMessage): number {
  return message.saveTime ?? message.internalTime;
}

/** The flags of every message that has none: one shared, empty set (message flags are replaced, never edited). */
export const NO_FLAGS: ReadonlySet<string> = new Set<string>();

/** The flag set to keep for `flags`: the shared {@link NO_FLAGS} when empty. */
export function keptFlags(flags: ReadonlySet<string>): ReadonlySet<string> {
  return flags.size === 0 ? NO_FLAGS : flags;
}

/**
 * The message's EMAILID (RFC 8474 §5.1: `M` + content hash), hashed on first use and kept. Most messages of a test
 * run are never asked for theirs, and hashing costs ~0.5 ms per MB at delivery.
 */
export function emailIdOf(message: MemMessage): string {
  return (message.emailId ??= emailIdOfContent(message.raw));
}

/** One mailbox of the memory store. */
export interface MemMailbox {
  /** RFC 8474 MAILBOXID: the object keeps it across RENAME; a new mailbox gets a new one. */
  readonly mailboxId: string;
  readonly uidValidity: number;
  uidNext: number;
  /** Largest modseq handed out in this mailbox (expunges included). */
  highestModseq: number;
  /** Ascending UID order. */
  messages: MemMessage[];
}

/** The mailboxes and subscriptions of one user. */
export interface MemUser {
  readonly mailboxes: Map<string, MemMailbox>;
  readonly subscriptions: Set<string>;
}

/** The next modseq of a mailbox (RFC 7162 §3.1: strictly increasing). */
export function nextModseq(box: MemMailbox): number {
  return ++box.highestModseq;
}

/** An empty mailbox with a fresh UIDVALIDITY. */
export function newMailbox(): MemMailbox {
  return { mailboxId: mailboxIdOf(randomUUID()), uidValidity: nextUidValidity(), uidNext: 1, highestModseq: 0, messages: [] };
}

/**
 * The caller-owned {@link StoredMessage} view of a message: one object of one class (no object literal with a getter
 * per call, issue 15: every delivery returns one). `emailId` is a getter on the prototype, so a view whose EMAILID is
 * never read hashes nothing.
 */
class MemSnapshot implements StoredMessage, MessageIdentity {
  readonly uid: number;
  readonly internalDate: Date;
  readonly size: number;
  readonly flags: ReadonlySet<string>;
  readonly modseq: number;
  readonly saveDate: Date;
  declare readonly envelope?: DeliveryEnvelope;
  readonly raw: () => Promise<Buffer>;

  /** A true private field: not a key of the view (JSON, deep equality and key listings see only the view's fields). */
  readonly #message: MemMessage;

  constructor(message: MemMessage) {
    this.#message = message;
    const raw = message.raw;
    this.uid = message.uid;
    this.internalDate = new Date(message.internalTime);
    this.size = raw.length;
    this.flags = new Set(message.flags);
    this.modseq = message.modseq;
    this.saveDate = new Date(saveTimeOf(message));
    // Only a message with an envelope has the field.
    if (message.envelope !== undefined) (this as { envelope?: DeliveryEnvelope }).envelope = message.envelope;
    this.raw = async () => Buffer.from(raw);
  }

  get emailId(): string {
    return emailIdOf(this.#message);
  }
}

/** The caller-owned {@link StoredMessage} view of a message. */
export function snapshot(message: MemMessage): StoredMessage & MessageIdentity {
  return new MemSnapshot(message);
}
