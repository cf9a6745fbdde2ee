import { MailStoreError, type MailboxIdentity, type MailboxInfo, type StoredMessage, type UserMailboxes } from '../../contracts/mail-store.js';
import { INBOX, hierarchyOf, isBelow, isInbox, normalizeMailboxName, renamePlan, superiorsOf } from '../shared/mailbox-names.js';
import { SEEN, applyFlags, isKeyword, sameFlags } from '../shared/message-flags.js';
import type { MemoryMailStore } from './memory-mail-store.js';
import { keptFlags, newMailbox, nextModseq, snapshot, type MemMailbox, type MemUser } from './memory-model.js';

/** One session's view of a {@link MemoryMailStore} user. */
export class MemoryUserMailboxes implements UserMailboxes {
  private released = false;

  /** @param store the owning store. @param username canonical username. */
  constructor(
    private readonly store: MemoryMailStore,
    readonly username: string,
  ) {}

  async list(): Promise<MailboxInfo[]> {
    const user = this.user();
    return hierarchyOf(user.mailboxes.keys()).map((entry) => {
      const box = user.mailboxes.get(entry.name);
      return box === undefined
        ? { ...entry, ...this.emptyInfo(), subscribed: user.subscriptions.has(entry.name) }
        : this.describe(entry.name, box);
    });
  }

  async info(mailbox: string): Promise<MailboxInfo> {
    const name = normalizeMailboxName(mailbox);
    return this.describe(name, this.store.mailbox(this.username, name));
  }

  async create(mailbox: string): Promise<void> {
    const name = normalizeMailboxName(mailbox);
    const user = this.user();
    if (user.mailboxes.has(name)) throw new MailStoreError('ALREADY_EXISTS', `mailbox ${name} exists`);
    for (const level of [...superiorsOf(name), name]) {
      if (user.mailboxes.has(level)) continue;
      user.mailboxes.set(level, newMailbox());
      this.store.emit({ type: 'mailbox', username: this.username, mailbox: level, change: 'created' });
    }
  }

  async delete(mailbox: string): Promise<void> {
    const name = normalizeMailboxName(mailbox);
    if (isInbox(name)) throw new MailStoreError('CANNOT', 'INBOX cannot be deleted');
    const box = this.store.mailbox(this.username, name);
    if (box.messages.length > 0) {
      this.store.emit({ type: 'expunge', username: this.username, mailbox: name, uids: box.messages.map((m) => m.uid) });
    }
    this.user().mailboxes.delete(name);
    this.store.emit({ type: 'mailbox', username: this.username, mailbox: name, change: 'deleted' });
  }

  async rename(from: string, to: string): Promise<void> {
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    const user = this.user();
    this.store.mailbox(this.username, source);
    const plan = renamePlan(user.mailboxes.keys(), source, target);
    if (isInbox(source)) {
      // RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name and leaves INBOX empty.
      await this.create(target);
      await this.move(INBOX, this.store.mailbox(this.username, INBOX).messages.map((m) => m.uid), target);
      return;
    }
    for (const [oldName, newName] of plan) {
      user.mailboxes.set(newName, this.store.mailbox(this.username, oldName));
      user.mailboxes.delete(oldName);
      if (user.subscriptions.delete(oldName)) user.subscriptions.add(newName);
    }
    for (const [oldName, newName] of plan) {
      this.store.emit({ type: 'mailbox', username: this.username, mailbox: oldName, change: 'renamed', newName });
    }
    // RFC 3501 §6.3.5: superior names needed by the new name are created.
    for (const superior of superiorsOf(target)) {
      if (user.mailboxes.has(superior)) continue;
      user.mailboxes.set(superior, newMailbox());
      this.store.emit({ type: 'mailbox', username: this.username, mailbox: superior, change: 'created' });
    }
  }

  async subscribe(mailbox: string, subscribed: boolean): Promise<void> {
    const name = normalizeMailboxName(mailbox);
    if (subscribed) {
      this.store.mailbox(this.username, name);
      this.user().subscriptions.add(name);
    } else {
      this.user().subscriptions.delete(name);
    }
  }

  async subscriptions(): Promise<string[]> {
    return [...this.user().subscriptions].sort();
  }

  async messages(mailbox: string, options: { peek?: boolean } = {}): Promise<StoredMessage[]> {
    const box = this.box(mailbox);
    if (!options.peek) for (const message of box.messages) message.recent = false;
    return box.messages.map(snapshot);
  }

  async append(mailbox: string, raw: Buffer, flags: string[] = [], internalDate?: Date): Promise<StoredMessage> {
    this.user();
    return this.store.insert(this.username, normalizeMailboxName(mailbox), raw, flags, internalDate);
  }

  async setFlags(mailbox: string, uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<StoredMessage[]> {
    const name = normalizeMailboxName(mailbox);
    const wanted = new Set(uids);
    const changed: number[] = [];
    const result: StoredMessage[] = [];
    const box = this.box(name);
    for (const message of box.messages) {
      if (!wanted.has(message.uid)) continue;
      const next = applyFlags(message.flags, flags, mode);
      if (!sameFlags(next, message.flags)) {
        changed.push(message.uid);
        message.modseq = nextModseq(box);
      }
      message.flags = keptFlags(next);
      result.push(snapshot(message));
    }
    if (changed.length > 0) this.store.emit({ type: 'flags', username: this.username, mailbox: name, uids: changed });
    return result;
  }

  async copy(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    const source = this.box(from);
    const target = normalizeMailboxName(to);
    this.store.mailbox(this.username, target);
    const wanted = new Set(uids);
    return source.messages
      .filter((message) => wanted.has(message.uid))
      .map((message) => [message.uid, this.store.insert(this.username, target, message.raw, message.flags, new Date(message.internalTime), undefined, message.emailId).uid]);
  }

  async move(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    const pairs = await this.copy(from, uids, to);
    await this.expunge(from, pairs.map(([uid]) => uid));
    return pairs;
  }

  async expunge(mailbox: string, uids: number[]): Promise<number[]> {
    const name = normalizeMailboxName(mailbox);
    const box = this.box(name);
    const wanted = new Set(uids);
    const removed = box.messages.filter((m) => wanted.has(m.uid)).map((m) => m.uid);
    if (removed.length === 0) return [];
    box.messages = box.messages.filter((m) => !wanted.has(m.uid));
    nextModseq(box);
    this.store.emit({ type: 'expunge', username: this.username, mailbox: name, uids: removed });
    return removed;
  }

  async release(): Promise<void> {
    this.released = true;
  }

  private user(): MemUser {
    if (this.released) throw new MailStoreError('CANNOT', 'mailbox view released');
    return this.store.userData(this.username);
  }

  private box(mailbox: string): MemMailbox {
    this.user();
    return this.store.mailbox(this.username, normalizeMailboxName(mailbox));
  }

  private describe(name: string, box: MemMailbox): MailboxInfo & MailboxIdentity {
    const user = this.user();
    const keywords = new Set<string>();
    for (const message of box.messages) for (const flag of message.flags) if (isKeyword(flag)) keywords.add(flag);
    return {
      name,
      mailboxId: box.mailboxId,
      uidValidity: box.uidValidity,
      uidNext: box.uidNext,
      highestModseq: box.highestModseq,
      messages: box.messages.length,
      unseen: box.messages.filter((m) => !m.flags.has(SEEN)).length,
      recent: box.messages.filter((m) => m.recent).length,
      keywords: [...keywords].sort(),
      subscribed: user.subscriptions.has(name),
      hasChildren: [...user.mailboxes.keys()].some((other) => isBelow(other, name)),
      noselect: false,
    };
  }

  private emptyInfo(): Omit<MailboxInfo, 'name' | 'subscribed' | 'hasChildren' | 'noselect'> {
    return { uidValidity: 0, uidNext: 0, highestModseq: 0, messages: 0, unseen: 0, recent: 0, keywords: [] };
  }
}
