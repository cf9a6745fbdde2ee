import { randomUUID } from 'node:crypto';
import type { DeliveryEnvelope, MessageIdentity, StoredMessage } from '../../contracts/mail-store.js';
import { mailboxIdOf } from '../shared/object-ids.js';
import { nextUidValidity } from '../shared/store-events.js';

/** One message of the memory store. */
export interface MemMessage {
  readonly uid: number;
  readonly internalDate: Date;
  readonly raw: Buffer;
  flags: Set<string>;
  /** RFC 7162 modification sequence, renewed on every flag change. */
  modseq: number;
  readonly envelope?: DeliveryEnvelope;
  /** Not yet returned by messages(). */
  recent: boolean;
  /** RFC 8474 EMAILID (content hash) and RFC 8514 save date. */
  readonly emailId: string;
  readonly saveDate: Date;
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

/** The caller-owned {@link StoredMessage} view of a message. */
export function snapshot(message: MemMessage): StoredMessage & MessageIdentity {
  const raw = message.raw;
  return {
    uid: message.uid,
    internalDate: new Date(message.internalDate.getTime()),
    size: raw.length,
    flags: new Set(message.flags),
    modseq: message.modseq,
    emailId: message.emailId,
    saveDate: new Date(message.saveDate.getTime()),
    ...(message.envelope === undefined ? {} : { envelope: message.envelope }),
    raw: async () => Buffer.from(raw),
  };
}
