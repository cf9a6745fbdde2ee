import { inject, injectable, type ServiceIdentifier } from 'inversify';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MailStoreError,
  type DeliverOptions,
  type MailStore,
  type MailStoreOptions,
  type MailboxEvent,
  type MailboxWatching,
  type MaildropLocking,
  type StoredMessage,
  type UserDirectory,
  type UserMailboxes,
} from '../../contracts/mail-store.js';
import { INBOX, isInbox, normalizeMailboxName } from '../shared/mailbox-names.js';
import { MailboxEvents, MaildropLocks, nextUidValidity } from '../shared/store-events.js';
import { UserTable, type UserRecord } from '../shared/user-table.js';
import { isErrno, replaceFile } from './durable-fs.js';
import { MaildirFolder } from './maildir-folder.js';
import { folderDirName, mailboxOfDirName, userDirName } from './maildir-names.js';
import { MaildirUserMailboxes, type MaildirUserContext } from './maildir-user-mailboxes.js';

/** Options of {@link MaildirMailStore}. */
export interface MaildirMailStoreOptions extends MailStoreOptions {
  /** Root directory: holds `users.json` and `mail/<user>/` (created on first use). */
  readonly root: string;
  /** fsync message files, directories and state files before resolving (default true; false only for throwaway tests). */
  readonly fsync?: boolean;
  /**
   * Keep each password in plaintext next to its scrypt hash so that `secretFor` can serve APOP and CRAM-MD5
   * (default false: only the hash is stored and `secretFor` resolves undefined).
   */
  readonly keepPlaintextPasswords?: boolean;
}
/** Injection token of {@link MaildirMailStoreOptions}. */
export const MaildirMailStoreOptions = Symbol.for('postern.MaildirMailStoreOptions') as ServiceIdentifier<MaildirMailStoreOptions>;

/** Name of the users file under the root. */
export const USERS_FILE = 'users.json';
/** Per-user subscription list (one UTF-8 mailbox name per line) in the user's Maildir. */
export const SUBSCRIPTIONS_FILE = 'postern-subscriptions';

interface UsersFile {
  version: 1;
  users: UserRecord[];
}

/**
 * A persistent {@link MailStore} on Maildir / Maildir++ directories that other Maildir tools can read:
 *
 * ```
 * <root>/users.json                     users, addresses, scrypt hashes (plaintext only with keepPlaintextPasswords)
 * <root>/mail/<user>/{cur,new,tmp}/     INBOX
 * <root>/mail/<user>/.Sent/             mailbox "Sent"; ".Work.2024" is "Work/2024" (levels in modified UTF-7)
 * <root>/mail/<user>/postern-uidlist    UIDVALIDITY, UIDNEXT, UID and keywords per message (one per folder)
 * <root>/mail/<user>/postern-subscriptions
 * ```
 * System flags live in the file name's `:2,` info (D F R S T); messages are stored byte-exact as delivered.
 * All changes of one user are serialized in-process; the maildrop lock is in-process only.
 */
@injectable()
export class MaildirMailStore implements MailStore, MaildropLocking, MailboxWatching, MaildirUserContext {
  /** {@inheritDoc MailStore.users} */
  readonly users: UserDirectory;
  private loading: Promise<UserTable> | undefined;
  private readonly folders = new Map<string, MaildirFolder>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly events = new MailboxEvents();
  private readonly locks = new MaildropLocks();
  private uidValidityFloor = 0;

  /** Stores options only; the root is read on first use. */
  constructor(@inject(MaildirMailStoreOptions) private readonly options: MaildirMailStoreOptions) {
    const table = (): Promise<UserTable> => this.userTable();
    this.users = {
      add: async (user) => (await table()).add(user),
      verify: async (login, password) => (await table()).verify(login, password),
      findByAddress: async (address) => (await table()).findByAddress(address),
      find: async (login) => (await table()).find(login),
      secretFor: async (username) => (await table()).secretFor(username),
      list: async () => (await table()).list(),
    };
  }

  private get durable(): boolean {
    return this.options.fsync !== false;
  }

  /** {@inheritDoc MailStore.deliver} */
  async deliver(address: string, raw: Buffer, options: DeliverOptions = {}): Promise<StoredMessage> {
    const username = await this.resolveUser(address);
    const mailbox = normalizeMailboxName(options.mailbox ?? INBOX);
    return this.run(username, async () => {
      const folder = await this.folder(username, mailbox);
      const entry = await folder.add(raw, options.flags ?? [], options.internalDate ?? new Date(), undefined, options.envelope);
      this.emit({ type: 'exists', username, mailbox, uid: entry.uid });
      return folder.messageOf(entry);
    });
  }

  /** {@inheritDoc MailStore.openUser} */
  async openUser(username: string): Promise<UserMailboxes> {
    return new MaildirUserMailboxes(this, await this.resolveUser(username));
  }

  /** {@inheritDoc MaildropLocking.lock} */
  async lock(username: string, owner: string): Promise<() => void> {
    return this.locks.acquire(await this.resolveUser(username), owner);
  }

  /** {@inheritDoc MailboxWatching.watch} */
  watch(listener: (event: MailboxEvent) => void): () => void {
    return this.events.watch(listener);
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
  async folder(username: string, mailbox: string): Promise<MaildirFolder> {
    const key = this.key(username, mailbox);
    let folder = this.folders.get(key);
    if (folder === undefined) {
      const path = this.folderPath(username, mailbox);
      if (!(await MaildirFolder.exists(path))) {
        if (!isInbox(mailbox)) throw new MailStoreError('NO_SUCH_MAILBOX', `no mailbox ${mailbox}`);
        folder = await MaildirFolder.create(path, this.durable, nextUidValidity(this.uidValidityFloor), false);
      } else {
        folder = await MaildirFolder.open(path, this.durable, () => nextUidValidity(this.uidValidityFloor));
      }
      this.uidValidityFloor = Math.max(this.uidValidityFloor, folder.uidValidity);
      this.folders.set(key, folder);
      return folder;
    }
    try {
      const changes = await folder.sync();
      if (changes.expunged.length > 0) this.emit({ type: 'expunge', username, mailbox, uids: changes.expunged });
      if (changes.flagged.length > 0) this.emit({ type: 'flags', username, mailbox, uids: changes.flagged });
      for (const uid of changes.added) this.emit({ type: 'exists', username, mailbox, uid });
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

  /** @internal {@inheritDoc MaildirUserContext.mailboxNames} */
  async mailboxNames(username: string): Promise<string[]> {
    const root = this.userRoot(username);
    const names = new Set<string>([INBOX]);
    let dirs: string[] = [];
    try {
      dirs = await readdir(root);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
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
      if (await MaildirFolder.exists(join(root, dir))) names.add(name);
    }
    return [...names];
  }

  /** @internal {@inheritDoc MaildirUserContext.createFolder} */
  async createFolder(username: string, mailbox: string): Promise<void> {
    const folder = await MaildirFolder.create(this.folderPath(username, mailbox), this.durable, nextUidValidity(this.uidValidityFloor), true);
    this.uidValidityFloor = Math.max(this.uidValidityFloor, folder.uidValidity);
    this.folders.set(this.key(username, mailbox), folder);
  }

  /** @internal {@inheritDoc MaildirUserContext.deleteFolder} */
  async deleteFolder(username: string, mailbox: string): Promise<void> {
    const folder = await this.folder(username, mailbox);
    await rm(folder.path, { recursive: true, force: true });
    folder.markDeleted();
    this.folders.delete(this.key(username, mailbox));
  }

  /** @internal {@inheritDoc MaildirUserContext.renameFolder} */
  async renameFolder(username: string, from: string, to: string): Promise<void> {
    const folder = await this.folder(username, from);
    const target = this.folderPath(username, to);
    await rename(folder.path, target);
    folder.moveTo(target);
    this.folders.delete(this.key(username, from));
    this.folders.set(this.key(username, to), folder);
  }

  /** @internal {@inheritDoc MaildirUserContext.readSubscriptions} */
  async readSubscriptions(username: string): Promise<Set<string>> {
    try {
      const text = await readFile(join(this.userRoot(username), SUBSCRIPTIONS_FILE), 'utf8');
      return new Set(text.split('\n').filter((line) => line.length > 0));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return new Set();
      throw err;
    }
  }

  /** @internal {@inheritDoc MaildirUserContext.writeSubscriptions} */
  async writeSubscriptions(username: string, names: Set<string>): Promise<void> {
    const text = [...names].sort().map((name) => name + '\n').join('');
    await replaceFile(join(this.userRoot(username), SUBSCRIPTIONS_FILE), text, this.durable);
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

  private async resolveUser(login: string): Promise<string> {
    const table = await this.userTable();
    const known = table.recordFor(login);
    if (known !== undefined) return known.username;
    if (this.options.autoCreateUsers !== true) throw new MailStoreError('NO_SUCH_USER', 'no such user');
    // GreenMail convention: the address is the username and the password.
    const username = login.includes('@') ? login.toLowerCase() : login;
    await table.add({ username, password: login });
    return username;
  }

  private userTable(): Promise<UserTable> {
    this.loading ??= this.loadUsers();
    return this.loading;
  }

  private async loadUsers(): Promise<UserTable> {
    await mkdir(join(this.options.root, 'mail'), { recursive: true, mode: 0o700 });
    const path = join(this.options.root, USERS_FILE);
    let records: UserRecord[] = [];
    try {
      const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as Partial<UsersFile>).users)) {
        records = (parsed as UsersFile).users;
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const persist = async (all: UserRecord[]): Promise<void> => {
      const file: UsersFile = { version: 1, users: all };
      await replaceFile(path, JSON.stringify(file, null, 1) + '\n', this.durable);
    };
    return new UserTable({ hashPasswords: true, keepPlaintext: this.options.keepPlaintextPasswords === true, persist }, records);
  }
}
