import { inject, injectable, preDestroy } from '../../vendor/inversify.js';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MailStoreError,
  type DeliverOptions,
  type MailStore,
  type MailboxEvent,
  type MailboxWatching,
  type MaildropLocking,
  type ObjectIdentity,
  type StoredMessage,
  type UserMailboxes,
} from '../../contracts/mail-store.js';
import { INBOX, isInbox, normalizeMailboxName } from '../shared/mailbox-names.js';
import { MailboxEvents, nextUidValidity } from '../shared/store-events.js';
import { acquireDotLock, DotLockBusyError } from './dot-lock.js';
import { isErrno } from './durable-fs.js';
import type { MaildirFolder, FolderChanges, FolderOptions } from './maildir-folder.js';
import { MaildirMailStoreOptions } from './maildir-mail-store-options.js';
import { folderDirName, mailboxOfDirName, userDirName } from './maildir-names.js';
import { MaildirSubscriptions } from './maildir-subscriptions.js';
import type { MaildirUserContext } from './maildir-user-mailboxes.js';
import { MaildirUsers } from './maildir-users.js';

export { MaildirMailStoreOptions } from './maildir-mail-store-options.js';
export { SUBSCRIPTIONS_FILE } from './maildir-subscriptions.js';
export { USERS_FILE, USERS_LOCK_FILE } from './maildir-users.js';

/**
 * The folder code (with the MIME parser under it) and the per-user view load when the store first opens a folder or
 * a user, not at `import 'postern'` (issue 11: start time); later calls get the loaded modules.
 */
let folderCode: Promise<typeof import('./maildir-folder.js')> | undefined;
let userCode: Promise<typeof import('./maildir-user-mailboxes.js')> | undefined;
async function folderClass(): Promise<typeof MaildirFolder> {
  folderCode ??= import('./maildir-folder.js');
  return (await folderCode).MaildirFolder;
}

/** The POP3 maildrop lock file (RFC 1939 §8) in the user's Maildir. */
export const MAILDROP_LOCK_FILE = 'postern-maildrop.lock';

/**
 * A persistent {@link MailStore} on Maildir / Maildir++ directories that other Maildir tools can read:
 *
 * ```
 * <root>/users.json                     users, addresses, scrypt hashes (plaintext only with keepPlaintextPasswords)
 * <root>/users.json.lock                held while a process changes users.json
 * <root>/mail/<user>/{cur,new,tmp}/     INBOX
 * <root>/mail/<user>/.Sent/             mailbox "Sent"; ".Work.2024" is "Work/2024" (levels in modified UTF-7)
 * <folder>/postern-log                  append-only state log: UIDVALIDITY, UID assignments, keywords, envelopes
 * <folder>/postern-log.lock             the folder's commit lock (a dot-lock, across processes)
 * <folder>/postern-cache                index cache: sizes, envelopes, body structures
 * <root>/mail/<user>/postern-subscriptions
 * <root>/mail/<user>/postern-maildrop.lock   the POP3 maildrop lock (RFC 1939 §8)
 * ```
 * System flags live in the file name's `:2,` info (D F R S T); messages are stored byte-exact as delivered.
 * Several processes may share a root: every lock is a file (see dot-lock.ts), so UIDs, the maildrop lock and the
 * users file hold across them; a folder's changes are group-committed under its lock (see maildir-folder.ts).
 */
@injectable()
export class MaildirMailStore implements MailStore, MaildropLocking, MailboxWatching, ObjectIdentity, MaildirUserContext {
  /** {@inheritDoc ObjectIdentity.hasObjectIdentity} */
  readonly hasObjectIdentity = true;
  /** {@inheritDoc MailStore.users} */
  readonly users: MaildirUsers;
  private readonly folders = new Map<string, MaildirFolder>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly events = new MailboxEvents();
  private watchers = 0;
  private uidValidityFloor = 0;
  private readonly subscriptions: MaildirSubscriptions;

  /** Stores options only; the root is read on first use. */
  constructor(@inject(MaildirMailStoreOptions) private readonly options: MaildirMailStoreOptions) {
    this.users = new MaildirUsers({ root: options.root, keepPlaintextPasswords: options.keepPlaintextPasswords === true, durable: options.fsync !== false });
    this.subscriptions = new MaildirSubscriptions(this.durable);
  }

  private get durable(): boolean {
    return this.options.fsync !== false;
  }

  /**
   * {@inheritDoc MailStore.deliver}
   * Concurrent deliveries into one folder share their directory and log fsyncs (group commit).
   */
  async deliver(address: string, raw: Buffer, options: DeliverOptions = {}): Promise<StoredMessage> {
    const username = await this.resolveUser(address);
    const mailbox = normalizeMailboxName(options.mailbox ?? INBOX);
    // No refresh: the commit catches up with the log under the lock anyway, and readers report others' changes.
    const folder = await this.run(username, () => this.folder(username, mailbox, false));
    const entry = await folder.add(raw, options.flags ?? [], options.internalDate ?? new Date(), undefined, options.envelope);
    this.emit({ type: 'exists', username, mailbox, uid: entry.uid });
    return folder.messageOf(entry);
  }

  /** {@inheritDoc MailStore.openUser} */
  async openUser(username: string): Promise<UserMailboxes> {
    userCode ??= import('./maildir-user-mailboxes.js');
    const { MaildirUserMailboxes } = await userCode;
    return new MaildirUserMailboxes(this, await this.resolveUser(username));
  }

  /**
   * {@inheritDoc MaildropLocking.lock}
   * The lock is the file `postern-maildrop.lock` in the user's Maildir (O_EXCL, stale when its process is gone), so
   * it holds across processes sharing the root.
   */
  async lock(username: string, owner: string): Promise<() => void> {
    const canonical = await this.resolveUser(username);
    await mkdir(this.userRoot(canonical), { recursive: true, mode: 0o700 });
    let held;
    try {
      held = await acquireDotLock(join(this.userRoot(canonical), MAILDROP_LOCK_FILE), owner, 0, true);
    } catch (err) {
      if (err instanceof DotLockBusyError) throw new MailStoreError('IN_USE', `maildrop of ${canonical} is locked`);
      throw err;
    }
    return () => {
      held.release().catch(() => undefined);
    };
  }

  /**
   * {@inheritDoc MailboxWatching.watch}
   * While someone watches, every open folder also notices changes made by other processes on the same root (fs.watch
   * on the folder plus a one-second poll) and reports them as events.
   */
  watch(listener: (event: MailboxEvent) => void): () => void {
    const stop = this.events.watch(listener);
    if (++this.watchers === 1) for (const folder of this.folders.values()) folder.watch();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      stop();
      if (--this.watchers === 0) for (const folder of this.folders.values()) folder.unwatch();
    };
  }

  /**
   * Stops watching folders (timers and fs.watch handles) and waits for their running commits. Idempotent; runs on
   * container teardown. Calls made afterwards still work (without change notifications from other processes).
   */
  @preDestroy()
  async close(): Promise<void> {
    await Promise.all([...this.folders.values()].map((folder) => folder.idle()));
  }

  /** @internal {@inheritDoc MaildirUserContext.run} */
  run<T>(username: string, task: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(username) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(task);
    const tail = result.catch(() => undefined);
    this.queues.set(username, tail);
    void tail.then(() => {
      if (this.queues.get(username) === tail) this.queues.delete(username);
    });
    return result;
  }

  /** @internal {@inheritDoc MaildirUserContext.folder} */
  async folder(username: string, mailbox: string, refresh = true): Promise<MaildirFolder> {
    const key = this.key(username, mailbox);
    let folder = this.folders.get(key);
    if (folder === undefined) {
      const path = this.folderPath(username, mailbox);
      const options = this.folderOptions(username, mailbox);
      const Folder = await folderClass();
      if (!(await Folder.exists(path))) {
        if (!isInbox(mailbox)) throw new MailStoreError('NO_SUCH_MAILBOX', `no mailbox ${mailbox}`);
        folder = await Folder.create(path, options, nextUidValidity(this.uidValidityFloor), false);
      } else {
        folder = await Folder.open(path, options, () => nextUidValidity(this.uidValidityFloor));
      }
      this.uidValidityFloor = Math.max(this.uidValidityFloor, folder.uidValidity);
      this.adopt(key, folder);
      return folder;
    }
    try {
      if (refresh) await folder.refresh();
    } catch (err) {
      if (err instanceof MailStoreError && err.code === 'NO_SUCH_MAILBOX') {
        this.folders.delete(key);
        folder.markDeleted();
        if (isInbox(mailbox)) return this.folder(username, mailbox);
      }
      throw err;
    }
    return folder;
  }

  /** Options of one folder: durability, and its changes by others reported as events of `mailbox`. */
  private folderOptions(username: string, mailbox: string): FolderOptions {
    const notify = (changes: FolderChanges, folder: MaildirFolder): void => {
      // The folder may have been renamed since: report under its current name.
      const current = [...this.folders.entries()].find(([, f]) => f === folder)?.[0].split('\u0000')[1] ?? mailbox;
      if (changes.expunged.length > 0) this.emit({ type: 'expunge', username, mailbox: current, uids: changes.expunged });
      if (changes.flagged.length > 0) this.emit({ type: 'flags', username, mailbox: current, uids: changes.flagged });
      for (const uid of changes.added) this.emit({ type: 'exists', username, mailbox: current, uid });
    };
    return { durable: this.durable, notify };
  }

  private adopt(key: string, folder: MaildirFolder): void {
    this.folders.set(key, folder);
    if (this.watchers > 0) folder.watch();
  }

  /** @internal {@inheritDoc MaildirUserContext.mailboxNames} */
  async mailboxNames(username: string): Promise<string[]> {
    const root = this.userRoot(username);
    const names = new Set<string>([INBOX]);
    const Folder = await folderClass();
    let dirs: string[] = [];
    try {
      dirs = await readdir(root);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const candidates: Array<[string, string]> = [];
    for (const dir of dirs) {
      const decoded = mailboxOfDirName(dir);
      if (decoded === undefined) continue;
      let name: string;
      try {
        name = normalizeMailboxName(decoded);
      } catch {
        continue;
      }
      // Only names that map back to this very directory (skips `.INBOX` and odd spellings of it).
      if (isInbox(name) || folderDirName(name) !== dir) continue;
      candidates.push([name, dir]);
    }
    const found = await Promise.all(candidates.map(([, dir]) => Folder.exists(join(root, dir))));
    candidates.forEach(([name], i) => {
      if (found[i]) names.add(name);
    });
    return [...names];
  }

  /** @internal {@inheritDoc MaildirUserContext.createFolder} */
  async createFolder(username: string, mailbox: string): Promise<void> {
    const options = this.folderOptions(username, mailbox);
    const folder = await (await folderClass()).create(this.folderPath(username, mailbox), options, nextUidValidity(this.uidValidityFloor), true);
    this.uidValidityFloor = Math.max(this.uidValidityFloor, folder.uidValidity);
    this.adopt(this.key(username, mailbox), folder);
  }

  /** @internal {@inheritDoc MaildirUserContext.deleteFolder} */
  async deleteFolder(username: string, mailbox: string): Promise<void> {
    const folder = await this.folder(username, mailbox);
    await folder.idle();
    folder.markDeleted();
    await rm(folder.path, { recursive: true, force: true });
    this.folders.delete(this.key(username, mailbox));
  }

  /** @internal {@inheritDoc MaildirUserContext.renameFolder} */
  async renameFolder(username: string, from: string, to: string): Promise<void> {
    const folder = await this.folder(username, from);
    const target = this.folderPath(username, to);
    await rename(folder.path, target);
    folder.moveTo(target);
    this.folders.delete(this.key(username, from));
    this.adopt(this.key(username, to), folder);
  }

  /** @internal {@inheritDoc MaildirUserContext.readSubscriptions} See {@link MaildirSubscriptions.read}. */
  async readSubscriptions(username: string): Promise<Set<string>> {
    return this.subscriptions.read(username, this.userRoot(username));
  }

  /** @internal {@inheritDoc MaildirUserContext.writeSubscriptions} */
  async writeSubscriptions(username: string, names: Set<string>): Promise<void> {
    await this.subscriptions.write(this.userRoot(username), names);
  }

  /** @internal {@inheritDoc MaildirUserContext.emit} */
  emit(event: MailboxEvent): void {
    this.events.emit(event);
  }

  private key(username: string, mailbox: string): string {
    return `${username}\u0000${mailbox}`;
  }

  private userRoot(username: string): string {
    return join(this.options.root, 'mail', userDirName(username));
  }

  private folderPath(username: string, mailbox: string): string {
    return join(this.userRoot(username), folderDirName(mailbox));
  }

  private resolveUser(login: string): Promise<string> {
    return this.users.resolve(login, this.options.autoCreateUsers === true);
  }
}
