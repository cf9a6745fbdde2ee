import { MailStoreError, type MailboxEvent } from '../../contracts/mail-store.js';

/**
 * Fan-out of {@link MailboxEvent}s to `watch()` listeners. Listeners run synchronously; one that throws is reported
 * with `process.emitWarning` so that a bug in a protocol session never undoes or fails a stored change.
 */
export class MailboxEvents {
  private readonly listeners = new Set<(event: MailboxEvent) => void>();

  /** Adds a listener; returns its (idempotent) removal. */
  watch(listener: (event: MailboxEvent) => void): () => void {
    // Wrap so that the same function can be registered twice and removed independently.
    const entry = (event: MailboxEvent): void => listener(event);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** Delivers one event to every current listener. */
  emit(event: MailboxEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'MailStoreListenerWarning');
      }
    }
  }
}

/** In-process exclusive maildrop locks (RFC 1939 §8), keyed by canonical username. */
export class MaildropLocks {
  private readonly holders = new Map<string, symbol>();

  /**
   * Takes the lock of `username` for `owner`; resolves an idempotent release.
   * @throws MailStoreError `IN_USE` when it is already held.
   */
  acquire(username: string, owner: string): () => void {
    if (this.holders.has(username)) throw new MailStoreError('IN_USE', `maildrop of ${username} is locked`);
    const token = Symbol(owner);
    this.holders.set(username, token);
    return () => {
      if (this.holders.get(username) === token) this.holders.delete(username);
    };
  }
}

let lastUidValidity = 0;

/**
 * A fresh UIDVALIDITY: seconds since the epoch (a non-zero 32-bit value until 2106, RFC 3501 §2.3.1.1), strictly
 * greater than any value handed out before in this process so that a deleted and recreated name never reuses one.
 * @param atLeast a floor, e.g. the largest value found on disk.
 */
export function nextUidValidity(atLeast = 0): number {
  lastUidValidity = Math.max(Math.floor(Date.now() / 1000), lastUidValidity + 1, atLeast + 1);
  return lastUidValidity;
}
