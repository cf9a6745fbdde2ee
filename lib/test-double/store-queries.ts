import type { MailStore, StoredMessage } from '../contracts/mail-store.js';

/** One stored message with where it lives, as {@link allMessages} returns it. */
export interface StoredMessageRow {
  /** Canonical username of the owner. */
  readonly username: string;
  /** Canonical mailbox name. */
  readonly mailbox: string;
  readonly message: StoredMessage;
}

/**
 * Every message in every mailbox of every user, oldest first (internal date, then username, mailbox and UID), read
 * through the store's public methods only, so it works on every {@link MailStore}. A read-only look: `\Recent` is
 * not taken away. Meant for test doubles and tools; it reads every mailbox, so it costs what the store holds.
 */
export async function allMessages(store: MailStore): Promise<StoredMessageRow[]> {
  const rows: StoredMessageRow[] = [];
  for (const username of await store.users.list()) {
    const view = await store.openUser(username);
    try {
      for (const info of await view.list()) {
        if (info.noselect) continue;
        for (const message of await view.messages(info.name, { peek: true })) rows.push({ username: view.username, mailbox: info.name, message });
      }
    } finally {
      await view.release();
    }
  }
  const order = (a: string, b: string): number => (a === b ? 0 : a < b ? -1 : 1);
  return rows.sort(
    (a, b) =>
      a.message.internalDate.getTime() - b.message.internalDate.getTime() ||
      order(a.username, b.username) ||
      order(a.mailbox, b.mailbox) ||
      a.message.uid - b.message.uid,
  );
}

/**
 * Removes every message of every user through `expunge` (users, mailboxes, UIDVALIDITY and UIDNEXT stay; UIDs are
 * not reused). Stores with change notifications emit their `expunge` events as for any expunge.
 */
export async function purgeMessages(store: MailStore): Promise<void> {
  for (const username of await store.users.list()) {
    const view = await store.openUser(username);
    try {
      for (const info of await view.list()) {
        if (info.noselect || info.messages === 0) continue;
        const uids = (await view.messages(info.name, { peek: true })).map((m) => m.uid);
        if (uids.length > 0) await view.expunge(info.name, uids);
      }
    } finally {
      await view.release();
    }
  }
}
