/**
 * The Maildir store's user directory: `<root>/users.json` (scrypt hashes; plaintext too only with
 * `keepPlaintextPasswords`), shared by every process on the root. Reads see other processes' changes within
 * {@link USERS_RECHECK_MS} (a miss re-checks at once); changes re-read the file under a cross-process lock first, so
 * two processes adding users never drop each other's.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MailStoreError, type UserDirectory } from '../../contracts/mail-store.js';
import type { ScramKeys } from '../../protocol/sasl/scram-keys.js';
import { UserTable, type UserRecord } from '../shared/user-table.js';
import { acquireDotLock, DotLockBusyError } from './dot-lock.js';
import { isErrno, replaceFile } from './durable-fs.js';
import { removeLeftovers } from './folder-scan.js';

/** Name of the users file under the root. */
export const USERS_FILE = 'users.json';
/** Lock file (a dot-lock beside `users.json`) held by any process changing the users file. */
export const USERS_LOCK_FILE = 'users.json.lock';
/** Bound of the successful-login cache (cleared whole when reached; a user table change clears it too). */
const VERIFY_CACHE_ENTRIES = 10_000;
/** How long a users-file change waits for another process's change before failing. */
const USERS_LOCK_WAIT_MS = 10_000;
/** A user lookup re-checks `users.json` for other processes' changes at most this often (always on a miss). */
const USERS_RECHECK_MS = 1_000;

interface UsersFile {
  version: 1;
  users: UserRecord[];
}

/** Where the directory lives and how it keeps passwords. */
export interface MaildirUsersOptions {
  readonly root: string;
  /** Keep each password in plaintext next to its hash (APOP, CRAM-MD5, SCRAM-SHA-256). */
  readonly keepPlaintextPasswords: boolean;
  /** fsync `users.json` before a change resolves. */
  readonly durable: boolean;
}

/** `users.json` as a {@link UserDirectory}. The first use creates `<root>/mail` and removes a crash's leftovers. */
export class MaildirUsers implements UserDirectory {
  private loading: Promise<UserTable> | undefined;
  /** `users.json`'s identity and version as last read or written here (inode, size, mtime); '' before any. */
  private stamp = '';
  private checkedAt = 0;
  /** Successful logins: HMAC(login, password) under a per-process random key → canonical username. */
  private readonly verified = new Map<string, string>();
  private readonly verifyKey = randomBytes(32);

  constructor(private readonly options: MaildirUsersOptions) {}

  /** {@inheritDoc UserDirectory.keepsSecrets} */
  get keepsSecrets(): boolean {
    return this.options.keepPlaintextPasswords;
  }

  /**
   * {@inheritDoc UserDirectory.keepsScramKeys} False until `users.json` was first read, and while any user in it has no
   * keys (written by an earlier version: its password must be set again, e.g. by `--user` at the next start).
   */
  get keepsScramKeys(): boolean {
    return this.loaded?.keepsScramKeys ?? false;
  }

  /** {@inheritDoc UserDirectory.scramKeysFor} */
  async scramKeysFor(username: string): Promise<ScramKeys | undefined> {
    return (await this.fresh(false)).scramKeysFor(username);
  }

  /** {@inheritDoc UserDirectory.add} */
  async add(user: { username: string; password: string; addresses?: string[] }): Promise<void> {
    await this.change((t) => t.add(user));
    this.verified.clear(); // a changed password or address must not be answered from the cache
  }

  /**
   * {@inheritDoc UserDirectory.verify}
   * Like Dovecot's auth cache: a login that succeeded before with the same password skips scrypt (tens of ms of CPU)
   * when it comes again. The cache holds keyed digests, never passwords, and only successes.
   */
  async verify(login: string, password: string): Promise<string | undefined> {
    await this.fresh(false); // first: another process's password change or removal clears the cache below
    const digest = createHmac('sha256', this.verifyKey).update(login).update('\u0000').update(password).digest('base64');
    const known = this.verified.get(digest);
    if (known !== undefined) return known;
    const exists = await this.orMiss(async (t) => t.recordFor(login));
    const username = exists === undefined ? undefined : await (await this.fresh(false)).verify(login, password);
    if (username !== undefined) {
      if (this.verified.size >= VERIFY_CACHE_ENTRIES) this.verified.clear();
      this.verified.set(digest, username);
    }
    return username;
  }

  /** {@inheritDoc UserDirectory.findByAddress} */
  findByAddress(address: string): Promise<string | undefined> {
    return this.orMiss((t) => t.findByAddress(address));
  }

  /** {@inheritDoc UserDirectory.find} */
  find(login: string): Promise<string | undefined> {
    return this.orMiss((t) => t.find(login));
  }

  /** {@inheritDoc UserDirectory.secretFor} */
  async secretFor(username: string): Promise<string | undefined> {
    return (await this.fresh(false)).secretFor(username);
  }

  /** {@inheritDoc UserDirectory.list} */
  async list(): Promise<string[]> {
    return (await this.fresh(true)).list();
  }

  /** {@inheritDoc UserDirectory.remove} */
  async remove(username: string): Promise<boolean> {
    const removed = await this.change((t) => t.remove(username));
    this.verified.clear(); // a removed user must not log in from the cache
    return removed;
  }

  /**
   * The canonical username of `login` (a username or an address). With `autoCreate` (GreenMail's convention) an unknown
   * login becomes a user whose username is the login (lower-cased when it is an address) and whose password is the login.
   * @throws MailStoreError `NO_SUCH_USER` otherwise.
   */
  async resolve(login: string, autoCreate: boolean): Promise<string> {
    const known = (await this.fresh(false)).recordFor(login) ?? (await this.fresh(true)).recordFor(login);
    if (known !== undefined) return known.username;
    if (!autoCreate) throw new MailStoreError('NO_SUCH_USER', 'no such user');
    const username = login.includes('@') ? login.toLowerCase() : login;
    await this.change(async (t) => {
      if (t.recordFor(username) === undefined) await t.add({ username, password: login });
    });
    return username;
  }

  /** `lookup` on the table as last checked, then, on a miss, on a fresh read (another process may have added it). */
  private async orMiss<T>(lookup: (t: UserTable) => Promise<T | undefined>): Promise<T | undefined> {
    return (await lookup(await this.fresh(false))) ?? (await lookup(await this.fresh(true)));
  }

  private table(): Promise<UserTable> {
    this.loading ??= this.load().then((t) => (this.loaded = t));
    return this.loading;
  }

  /** The table once loaded (for the synchronous {@link keepsScramKeys}). */
  private loaded?: UserTable;

  /**
   * The user table, re-read first when `users.json` changed on disk since this process last read or wrote it
   * (another process sharing the root added or removed a user). Checked at most every {@link USERS_RECHECK_MS}
   * unless `now`.
   */
  private async fresh(now: boolean): Promise<UserTable> {
    const table = await this.table();
    if (!now && Date.now() - this.checkedAt < USERS_RECHECK_MS) return table;
    this.checkedAt = Date.now();
    const stamp = await this.readStamp();
    if (stamp !== this.stamp) {
      table.replaceAll(await this.readFile());
      this.stamp = stamp;
      this.verified.clear();
    }
    return table;
  }

  /**
   * Runs a change of the user table under `users.json.lock` (a dot-lock, so it holds across processes): the file is
   * re-read first when another process changed it, and the change's write lands before the lock is released.
   * @throws MailStoreError `IN_USE` when another process holds the lock for longer than {@link USERS_LOCK_WAIT_MS}.
   */
  private async change<T>(change: (table: UserTable) => Promise<T>): Promise<T> {
    const table = await this.table();
    let held;
    try {
      held = await acquireDotLock(join(this.options.root, USERS_LOCK_FILE), 'users', USERS_LOCK_WAIT_MS);
    } catch (err) {
      if (err instanceof DotLockBusyError) throw new MailStoreError('IN_USE', 'the users file is locked by another process');
      throw err;
    }
    try {
      await this.fresh(true);
      const result = await change(table);
      this.stamp = await this.readStamp();
      return result;
    } finally {
      await held.release();
    }
  }

  private async readStamp(): Promise<string> {
    try {
      const s = await stat(join(this.options.root, USERS_FILE), { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return '';
      throw err;
    }
  }

  private async readFile(): Promise<UserRecord[]> {
    try {
      const parsed: unknown = JSON.parse(await readFile(join(this.options.root, USERS_FILE), 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as Partial<UsersFile>).users)) return (parsed as UsersFile).users;
      return [];
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }

  private async load(): Promise<UserTable> {
    await mkdir(join(this.options.root, 'mail'), { recursive: true, mode: 0o700 });
    await removeLeftovers(this.options.root);
    const path = join(this.options.root, USERS_FILE);
    this.stamp = await this.readStamp();
    this.checkedAt = Date.now();
    const records = await this.readFile();
    const persist = async (all: UserRecord[]): Promise<void> => {
      const file: UsersFile = { version: 1, users: all };
      await replaceFile(path, JSON.stringify(file, null, 1) + '\n', this.options.durable);
    };
    return new UserTable({ hashPasswords: true, keepPlaintext: this.options.keepPlaintextPasswords, persist }, records);
  }
}
