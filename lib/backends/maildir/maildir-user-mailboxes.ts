import { MailStoreError, isMailStoreError, type MailboxEvent, type MailboxIdentity, type MailboxInfo, type StoredMessage, type UserMailboxes } from '../../contracts/mail-store.js';
import { INBOX, hierarchyOf, isBelow, isInbox, normalizeMailboxName, renamePlan, superiorsOf } from '../shared/mailbox-names.js';
import { mailboxIdOf } from '../shared/object-ids.js';
import type { MaildirFolder } from './maildir-folder.js';

/** What a {@link MaildirUserMailboxes} view needs from its store (implemented by MaildirMailStore). */
export interface MaildirUserContext {
  /** Runs `task` after every earlier task of the same user has settled. */
  run<T>(username: string, task: () => Promise<T>): Promise<T>;
  /**
   * The folder of a mailbox (INBOX is created on demand), caught up with changes by others unless `refresh` is false;
   * throws `NO_SUCH_MAILBOX`.
   */
  folder(username: string, mailbox: string, refresh?: boolean): Promise<MaildirFolder>;
  /** Every existing mailbox (canonical names), INBOX included. */
  mailboxNames(username: string): Promise<string[]>;
  createFolder(username: string, mailbox: string): Promise<void>;
  deleteFolder(username: string, mailbox: string): Promise<void>;
  /** Renames one folder directory (not its children). */
  renameFolder(username: string, from: string, to: string): Promise<void>;
  readSubscriptions(username: string): Promise<Set<string>>;
  writeSubscriptions(username: string, names: Set<string>): Promise<void>;
  emit(event: MailboxEvent): void;
}

/** One session's view of a Maildir user; every call runs in the user's queue. */
export class MaildirUserMailboxes implements UserMailboxes {
  private released = false;

  /** @param store the owning store. @param username canonical username. */
  constructor(
    private readonly store: MaildirUserContext,
    readonly username: string,
  ) {}

  async list(): Promise<MailboxInfo[]> {
    // The listing and the folder lookups run in the user's queue; the folders catch up outside it (see folderOf).
    const { subscribed, names, entries } = await this.run(async () => {
      const [subscribed, names] = await Promise.all([this.store.readSubscriptions(this.username), this.store.mailboxNames(this.username)]);
      const entries: Array<{ entry: ReturnType<typeof hierarchyOf>[number]; folder?: MaildirFolder }> = [];
      for (const entry of hierarchyOf(names)) entries.push(entry.noselect ? { entry } : { entry, folder: await this.store.folder(this.username, entry.name, false) });
      return { subscribed, names, entries };
    });
    const rows: MailboxInfo[] = [];
    for (const { entry, folder } of entries) {
      if (folder === undefined) {
        rows.push({ ...entry, uidValidity: 0, uidNext: 0, highestModseq: 0, messages: 0, unseen: 0, recent: 0, keywords: [], subscribed: subscribed.has(entry.name) });
        continue;
      }
      try {
        rows.push(this.describeFolder(entry.name, await this.refreshed(entry.name, folder), names, subscribed));
      } catch (err) {
        if (!isMailStoreError(err, 'NO_SUCH_MAILBOX')) throw err; // deleted by another session meanwhile: not listed
      }
    }
    return rows;
  }

  async info(mailbox: string): Promise<MailboxInfo> {
    const name = normalizeMailboxName(mailbox);
    // Only the folder lookup runs in the user's queue (it must not interleave with a RENAME or DELETE of the folder);
    // the names (for \\HasChildren) and subscriptions are read beside it, and the folder catches up outside it (folderOf).
    const [folder, names, subscribed] = await Promise.all([
      this.folderOf(name),
      this.store.mailboxNames(this.username),
      this.store.readSubscriptions(this.username),
    ]);
    return this.describeFolder(name, folder, names, subscribed);
  }

  async create(mailbox: string): Promise<void> {
    const name = normalizeMailboxName(mailbox);
    return this.run(async () => {
      const names = new Set(await this.store.mailboxNames(this.username));
      if (names.has(name)) throw new MailStoreError('ALREADY_EXISTS', `mailbox ${name} exists`);
      // RFC 3501 §6.3.3: superior names needed are created too.
      for (const level of [...superiorsOf(name), name]) {
        if (names.has(level)) continue;
        await this.store.createFolder(this.username, level);
        this.store.emit({ type: 'mailbox', username: this.username, mailbox: level, change: 'created' });
      }
    });
  }

  async delete(mailbox: string): Promise<void> {
    const name = normalizeMailboxName(mailbox);
    if (isInbox(name)) throw new MailStoreError('CANNOT', 'INBOX cannot be deleted');
    return this.run(async () => {
      const folder = await this.store.folder(this.username, name);
      const uids = folder.list().map((entry) => entry.uid);
      await this.store.deleteFolder(this.username, name);
      if (uids.length > 0) this.store.emit({ type: 'expunge', username: this.username, mailbox: name, uids });
      this.store.emit({ type: 'mailbox', username: this.username, mailbox: name, change: 'deleted' });
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    if (isInbox(source)) {
      // RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name and leaves INBOX empty.
      await this.run(async () => renamePlan(await this.store.mailboxNames(this.username), source, target));
      await this.create(target);
      const inbox = await this.run(() => this.store.folder(this.username, INBOX));
      await this.move(INBOX, inbox.list().map((entry) => entry.uid), target);
      return;
    }
    return this.run(async () => {
      const names = await this.store.mailboxNames(this.username);
      await this.store.folder(this.username, source);
      const plan = renamePlan(names, source, target);
      const subscriptions = await this.store.readSubscriptions(this.username);
      for (const [oldName, newName] of plan) {
        await this.store.renameFolder(this.username, oldName, newName);
        if (subscriptions.delete(oldName)) subscriptions.add(newName);
      }
      await this.store.writeSubscriptions(this.username, subscriptions);
      for (const [oldName, newName] of plan) {
        this.store.emit({ type: 'mailbox', username: this.username, mailbox: oldName, change: 'renamed', newName });
      }
      // RFC 3501 §6.3.5: superior names needed by the new name are created.
      const existing = new Set(await this.store.mailboxNames(this.username));
      for (const superior of superiorsOf(target)) {
        if (existing.has(superior)) continue;
        await this.store.createFolder(this.username, superior);
        this.store.emit({ type: 'mailbox', username: this.username, mailbox: superior, change: 'created' });
      }
    });
  }

  async subscribe(mailbox: string, subscribed: boolean): Promise<void> {
    const name = normalizeMailboxName(mailbox);
    return this.run(async () => {
      if (subscribed) await this.store.folder(this.username, name);
      const names = await this.store.readSubscriptions(this.username);
      if (names.has(name) === subscribed) return;
      if (subscribed) names.add(name);
      else names.delete(name);
      await this.store.writeSubscriptions(this.username, names);
    });
  }

  async subscriptions(): Promise<string[]> {
    return this.run(async () => [...(await this.store.readSubscriptions(this.username))].sort());
  }

  async messages(mailbox: string, options: { peek?: boolean } = {}): Promise<StoredMessage[]> {
    const folder = await this.folderOf(mailbox);
    if (!options.peek) await folder.markCurrent(); // new/ → cur/ is what clears the recent hint
    return folder.list().map((entry) => folder.messageOf(entry));
  }

  async append(mailbox: string, raw: Buffer, flags: string[] = [], internalDate = new Date()): Promise<StoredMessage> {
    const name = normalizeMailboxName(mailbox);
    const folder = await this.folderOf(name, false);
    const entry = await folder.add(raw, flags, internalDate);
    this.store.emit({ type: 'exists', username: this.username, mailbox: name, uid: entry.uid });
    return folder.messageOf(entry);
  }

  async setFlags(mailbox: string, uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<StoredMessage[]> {
    const name = normalizeMailboxName(mailbox);
    const folder = await this.folderOf(name, false);
    const { entries, changed } = await folder.setFlags(uids, flags, mode);
    if (changed.length > 0) this.store.emit({ type: 'flags', username: this.username, mailbox: name, uids: changed });
    return entries.map((entry) => folder.messageOf(entry));
  }

  async copy(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    const target = normalizeMailboxName(to);
    const sourceFolder = await this.folderOf(from);
    const targetFolder = await this.folderOf(target, false);
    const wanted = new Set(uids);
    const sources = sourceFolder.list().filter((entry) => wanted.has(entry.uid));
    // All files are linked (or written) in parallel and committed as one group, in source order.
    const copies = await targetFolder.addMany(
      sources.map((entry) => ({
        flags: sourceFolder.flagsOf(entry),
        internalDate: new Date(entry.internalDate),
        source: { path: sourceFolder.pathOf(entry), size: entry.size },
        // The copy is the same message (RFC 8474 §5.1): it keeps the source's EMAILID (MOVE is a COPY + EXPUNGE).
        emailId: sourceFolder.emailIdOf(entry),
      })),
    );
    const pairs: Array<[number, number]> = [];
    copies.forEach((copied, i) => {
      if (copied.status === 'fulfilled') pairs.push([sources[i]!.uid, copied.value.uid]);
    });
    for (const [, uid] of pairs) this.store.emit({ type: 'exists', username: this.username, mailbox: target, uid });
    const failed = copies.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    if (failed !== undefined && !isMailStoreError(failed.reason, 'NO_SUCH_MESSAGE')) throw failed.reason;
    return pairs.sort((a, b) => a[0] - b[0]);
  }

  async move(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    const pairs = await this.copy(from, uids, to);
    await this.expunge(from, pairs.map(([uid]) => uid));
    return pairs;
  }

  async expunge(mailbox: string, uids: number[]): Promise<number[]> {
    const name = normalizeMailboxName(mailbox);
    const folder = await this.folderOf(name, false);
    const removed = await folder.remove(uids);
    if (removed.length > 0) this.store.emit({ type: 'expunge', username: this.username, mailbox: name, uids: removed });
    return removed;
  }

  async release(): Promise<void> {
    this.released = true;
  }

  /**
   * The folder, refreshed unless `refresh` is false; message-level calls then run on the folder's own group-commit
   * queue, not the user's. Changes (APPEND, STORE, EXPUNGE, COPY's target) need no refresh first: their commit
   * catches up with the log and the directories under the folder lock anyway, so they join the next group at once.
   * Only the lookup runs in the user's queue; the refresh runs outside it, so that one session waiting for a folder's
   * commit does not hold up every other session of the user.
   */
  private async folderOf(mailbox: string, refresh = true): Promise<MaildirFolder> {
    const name = normalizeMailboxName(mailbox);
    const folder = await this.run(() => this.store.folder(this.username, name, false));
    return refresh ? this.refreshed(name, folder) : folder;
  }

  /** `folder` caught up with changes by others; when it vanished meanwhile, the user's queue decides (deleted, renamed). */
  private async refreshed(name: string, folder: MaildirFolder): Promise<MaildirFolder> {
    try {
      await folder.refresh();
      return folder;
    } catch (err) {
      if (!isMailStoreError(err, 'NO_SUCH_MAILBOX')) throw err;
      return this.run(() => this.store.folder(this.username, name));
    }
  }

  private run<T>(task: () => Promise<T>): Promise<T> {
    if (this.released) return Promise.reject(new MailStoreError('CANNOT', 'mailbox view released'));
    return this.store.run(this.username, task);
  }

  private describeFolder(name: string, folder: MaildirFolder, names: string[], subscribed: Set<string>): MailboxInfo & MailboxIdentity {
    const counts = folder.counts;
    return {
      name,
      // RFC 8474 §4: the folder's UIDVALIDITY lives in its log, which RENAME carries along; a new folder gets a new,
      // larger one from the store's floor (see MaildirMailStore), so no two folders of the user share it.
      mailboxId: mailboxIdOf(folder.uidValidity),
      uidValidity: folder.uidValidity,
      uidNext: folder.uidNext,
      highestModseq: folder.highestModseq,
      messages: counts.messages,
      unseen: counts.unseen,
      recent: counts.recent,
      keywords: counts.keywords,
      subscribed: subscribed.has(name),
      hasChildren: names.some((other) => isBelow(other, name)),
      noselect: false,
    };
  }
}
