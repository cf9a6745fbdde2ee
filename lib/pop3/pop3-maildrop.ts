import { ProtocolSyntaxError } from '../protocol/reply-error.js';
import { hasCachedStructure, type StoredMessage, type UserMailboxes } from '../contracts/mail-store.js';
import { wireSize } from './pop3-message.js';
import { Pop3Error } from './pop3-replies.js';

/** The mailbox POP3 serves (RFC 1939 knows a single maildrop per user). */
export const POP3_MAILBOX = 'INBOX';

/** One message of the session snapshot. */
export interface MaildropEntry {
  /** Message number (1-based, RFC 1939 §3), stable for the session. */
  readonly number: number;
  /** RFC 1939 §7 unique-id: `uidValidity.uid`, stable across sessions while UIDVALIDITY stays. */
  readonly uidl: string;
  /** Octets in wire form (see pop3-message.ts). */
  readonly size: number;
  readonly message: StoredMessage;
  deleted: boolean;
}

const MESSAGE_NUMBER = /^[1-9][0-9]{0,9}$/;

/**
 * The session's snapshot of the maildrop, taken once at login (RFC 1939 §3: message numbers and sizes stay
 * fixed for the session; messages delivered meanwhile show up in the next session). Deletion marks live
 * here until QUIT applies them.
 */
export class Maildrop {
  private constructor(private readonly entries: readonly MaildropEntry[]) {}

  /**
   * Snapshots INBOX of an opened user view. Loads each message once to compute its wire size (a message stored
   * with bare LF grows on the wire), unless the store caches that size; the octets are not kept.
   */
  static async snapshot(view: UserMailboxes): Promise<Maildrop> {
    const info = await view.info(POP3_MAILBOX);
    const messages = await view.messages(POP3_MAILBOX);
    const entries: MaildropEntry[] = [];
    for (const message of messages) {
      // A store's index cache knows the size with CRLF line ends: then no message file is read at login.
      const size = hasCachedStructure(message) ? await message.canonicalSize() : wireSize(await message.raw());
      entries.push({ number: entries.length + 1, uidl: `${info.uidValidity}.${message.uid}`, size, message, deleted: false });
    }
    return new Maildrop(entries);
  }

  /** Messages not marked deleted. */
  get live(): MaildropEntry[] {
    return this.entries.filter((e) => !e.deleted);
  }

  /** RFC 1939 §5 STAT: count and octets of the messages not marked deleted. */
  stat(): { count: number; octets: number } {
    const live = this.live;
    return { count: live.length, octets: live.reduce((n, e) => n + e.size, 0) };
  }

  /**
   * The message with number `arg` (as typed by the client).
   * @throws ProtocolSyntaxError when `arg` is not a positive decimal number (counted against the error budget).
   * @throws Pop3Error when no such message exists or it is marked deleted (RFC 1939 §5).
   */
  get(arg: string): MaildropEntry {
    if (!MESSAGE_NUMBER.test(arg)) throw new ProtocolSyntaxError('invalid message number');
    const entry = this.entries[Number(arg) - 1];
    if (!entry) throw new Pop3Error(undefined, 'no such message');
    if (entry.deleted) throw new Pop3Error(undefined, 'message already deleted');
    return entry;
  }

  /** RFC 1939 §5 RSET: unmarks every deleted message. */
  reset(): void {
    for (const e of this.entries) e.deleted = false;
  }

  /** UIDs marked deleted, ascending (applied in the UPDATE state). */
  deletedUids(): number[] {
    return this.entries.filter((e) => e.deleted).map((e) => e.message.uid);
  }
}
