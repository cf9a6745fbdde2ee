import type { MailStore, StoredMessage } from '../contracts/mail-store.js';

/** One stored message with where it lives, as {@link allMessages} returns it. */
export interface StoredMessageRow {
  /** Canonical username of the owner. */
  readonly username: string;
  /** Canonical mailbox name. */
  readonly mailbox: string;
  readonly message: StoredMessage;
}

/** A {@link StoredMessageRow} with an id: the test double's view of a store (GreenMail keeps this above its store too). */
export interface StoredEntry extends StoredMessageRow {
  /** Opaque, URL-safe, stable while the message exists (see {@link entryId}). */
  readonly id: string;
  readonly uidValidity: number;
}

/** Where an id points. */
export interface EntryAddress {
  readonly username: string;
  readonly mailbox: string;
  readonly uidValidity: number;
  readonly uid: number;
}

/**
 * The id of a stored message: base64url of `username`, `mailbox`, UIDVALIDITY and UID. It survives restarts of a
 * Maildir store and never names a different message (a recreated mailbox gets a new UIDVALIDITY, RFC 3501 §2.3.1.1).
 */
export function entryId(a: EntryAddress): string {
  return Buffer.from(JSON.stringify([a.username, a.mailbox, a.uidValidity, a.uid]), 'utf8').toString('base64url');
}

/** Decodes an {@link entryId}; undefined for anything else (never throws). */
export function parseEntryId(id: string): EntryAddress | undefined {
  if (!/^[A-Za-z0-9_-]{1,2000}$/.test(id)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(id, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 4) return undefined;
    const [username, mailbox, uidValidity, uid] = v as unknown[];
    if (typeof username !== 'string' || typeof mailbox !== 'string' || !Number.isInteger(uidValidity) || !Number.isInteger(uid)) return undefined;
    return { username, mailbox, uidValidity: uidValidity as number, uid: uid as number };
  } catch {
    return undefined;
  }
}

/**
 * Every message in every mailbox of every user, oldest first (internal date, then username, mailbox and UID), read
 * through the store's public methods only, so it works on every {@link MailStore}. A read-only look: `\Recent` is
 * not taken away. Meant for test doubles and tools; it reads every mailbox, so it costs what the store holds.
 */
export async function allMessages(store: MailStore): Promise<StoredMessageRow[]> {
  return listStoredMessages(store);
}

/**
 * Removes every message of every user through `expunge` (users, mailboxes, UIDVALIDITY and UIDNEXT stay; UIDs are
 * not reused). Stores with change notifications emit their `expunge` events as for any expunge.
 */
export async function purgeMessages(store: MailStore): Promise<void> {
  await purgeStoredMessages(store);
}

/**
 * {@link allMessages} with ids and UIDVALIDITY. Users or mailboxes that vanish while listing are skipped.
 */
export async function listStoredMessages(store: MailStore): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  for (const username of await store.users.list()) {
    const view = await store.openUser(username).catch(() => undefined);
    if (!view) continue;
    try {
      for (const box of await view.list()) {
        if (box.noselect) continue;
        const messages = await view.messages(box.name, { peek: true }).catch(() => []);
        for (const message of messages) {
          out.push({ id: entryId({ username: view.username, mailbox: box.name, uidValidity: box.uidValidity, uid: message.uid }), username: view.username, mailbox: box.name, uidValidity: box.uidValidity, message });
        }
      }
    } finally {
      await view.release();
    }
  }
  const order = (a: string, b: string): number => (a === b ? 0 : a < b ? -1 : 1);
  return out.sort(
    (a, b) =>
      a.message.internalDate.getTime() - b.message.internalDate.getTime() ||
      order(a.username, b.username) ||
      order(a.mailbox, b.mailbox) ||
      a.message.uid - b.message.uid,
  );
}

/** Expunges every message of every user (users, mailboxes, UIDVALIDITY and UIDNEXT stay). Resolves how many went. */
export async function purgeStoredMessages(store: MailStore): Promise<number> {
  let removed = 0;
  for (const username of await store.users.list()) {
    const view = await store.openUser(username).catch(() => undefined);
    if (!view) continue;
    try {
      for (const box of await view.list()) {
        if (box.noselect || box.messages === 0) continue;
        const uids = (await view.messages(box.name, { peek: true })).map((m) => m.uid);
        removed += (await view.expunge(box.name, uids)).length;
      }
    } finally {
      await view.release();
    }
  }
  return removed;
}

/** Expunges the message an id names. Resolves false when there is no such message (or the id is not one). */
export async function deleteStoredMessage(store: MailStore, id: string): Promise<boolean> {
  const a = parseEntryId(id);
  if (!a || (await store.users.find(a.username)) !== a.username) return false; // never auto-create a user from an id
  const view = await store.openUser(a.username).catch(() => undefined);
  if (!view) return false;
  try {
    const info = await view.info(a.mailbox).catch(() => undefined);
    if (!info || info.uidValidity !== a.uidValidity) return false;
    return (await view.expunge(a.mailbox, [a.uid])).length === 1;
  } finally {
    await view.release();
  }
}
