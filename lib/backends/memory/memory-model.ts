import type { StoredMessage } from '../../contracts/mail-store.js';
import { nextUidValidity } from '../shared/store-events.js';

/** One message of the memory store. */
export interface MemMessage {
  readonly uid: number;
  readonly internalDate: Date;
  readonly raw: Buffer;
  flags: Set<string>;
  /** Global insertion order, breaks internal-date ties in allMessages(). */
  readonly order: number;
  /** Not yet returned by messages(). */
  recent: boolean;
}

/** One mailbox of the memory store. */
export interface MemMailbox {
  readonly uidValidity: number;
  uidNext: number;
  /** Ascending UID order. */
  messages: MemMessage[];
}

/** The mailboxes and subscriptions of one user. */
export interface MemUser {
  readonly mailboxes: Map<string, MemMailbox>;
  readonly subscriptions: Set<string>;
}

/** An empty mailbox with a fresh UIDVALIDITY. */
export function newMailbox(): MemMailbox {
  return { uidValidity: nextUidValidity(), uidNext: 1, messages: [] };
}

/** The caller-owned {@link StoredMessage} view of a message. */
export function snapshot(message: MemMessage): StoredMessage {
  const raw = message.raw;
  return {
    uid: message.uid,
    internalDate: new Date(message.internalDate.getTime()),
    size: raw.length,
    flags: new Set(message.flags),
    raw: async () => Buffer.from(raw),
  };
}
