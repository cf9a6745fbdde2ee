import { MailStoreError, supportsMaildropLock, type MailStore } from '../contracts/mail-store.js';

/** Process-local maildrop locks for stores that do not offer `MaildropLocking`, per store instance. */
const localHolders = new WeakMap<MailStore, Set<string>>();

/**
 * Takes the exclusive maildrop lock of RFC 1939 §8 for a POP3 session: the store's own lock when it offers
 * `MaildropLocking` (held across processes), else a lock inside this process only.
 * Resolves an idempotent release.
 * @throws MailStoreError `IN_USE` when another session holds the maildrop; whatever the store's lock throws.
 */
export async function lockMaildrop(store: MailStore, username: string, owner: string): Promise<() => void> {
  if (supportsMaildropLock(store)) return store.lock(username, owner);
  let held = localHolders.get(store);
  if (held === undefined) {
    held = new Set();
    localHolders.set(store, held);
  }
  if (held.has(username)) throw new MailStoreError('IN_USE', `maildrop of ${username} is locked`);
  held.add(username);
  const holders = held;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders.delete(username);
  };
}
