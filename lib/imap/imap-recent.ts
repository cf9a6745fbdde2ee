/**
 * `\Recent` across the sessions of one server (RFC 3501 §2.3.2): "the message is 'recently' arrived in this
 * mailbox. This session is the first session to have been notified about this message".
 *
 * Per (user, mailbox, UIDVALIDITY) it keeps the highest UID some session has already been told about. A
 * read-write session that sees UIDs above that mark claims them: they are `\Recent` for it and for no other
 * session. EXAMINE only peeks (RFC 3501 §6.3.2). This does not depend on where or how a store files a message
 * (a Maildir copy with flags lands in `cur/` and would lose the store's `recent` hint); the store hint only seeds
 * the mark the first time this server sees a mailbox. One instance per `ImapServer`; memory is one number per
 * mailbox that was selected.
 */
export class RecentTracker {
  private readonly marks = new Map<string, number>();

  /**
   * The UIDs among `uids` (ascending) that are `\Recent` for the calling session, claiming them unless `peek`.
   * @param storeHint the store's `MailboxInfo.recent`: how many of the newest messages no one has seen yet, used
   *   only the first time this mailbox is met.
   */
  claim(key: RecentKey, uids: readonly number[], storeHint: number, peek: boolean): number[] {
    const id = `${key.username}\u0000${key.mailbox}\u0000${key.uidValidity}`;
    let mark = this.marks.get(id);
    if (mark === undefined) {
      const firstRecent = uids.length - Math.min(storeHint, uids.length);
      mark = firstRecent > 0 ? uids[firstRecent - 1] : 0;
    }
    const recent = uids.filter((u) => u > mark);
    const highest = uids.length > 0 ? uids[uids.length - 1] : 0;
    if (!peek) this.marks.set(id, Math.max(mark, highest));
    else if (!this.marks.has(id)) this.marks.set(id, mark);
    return recent;
  }
}

/** Which mailbox a {@link RecentTracker} mark belongs to. */
export interface RecentKey {
  readonly username: string;
  readonly mailbox: string;
  readonly uidValidity: number;
}
