import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeliveryEnvelope } from '../../contracts/mail-store.js';
import { isErrno } from './durable-fs.js';
import { FolderLog } from './folder-log.js';
import { FolderReader } from './folder-reader.js';
import { FolderWatcher } from './folder-watch.js';
import { logPathOf, migrateUidList, removeLeftovers, stampDirsSync, UIDLIST_FILE } from './folder-scan.js';
import { FolderState, flagsOfEntry, noChanges, type Entry, type FolderChanges } from './folder-state.js';
import { prepareMessage, type NewMessage } from './new-message.js';

export type { Entry, FolderChanges } from './folder-state.js';
export { WATCH_POLL_MS } from './folder-watch.js';
export { FOLDER_LOCK_FILE, type NewMessage } from './folder-engine.js';

/** Options of a {@link MaildirFolder}. */
export interface FolderOptions {
  /** fsync message files, directories and the log (false only for throwaway tests). */
  readonly durable: boolean;
  /** Told about changes made by other processes or tools (not the folder's own calls). Must not throw. */
  readonly notify: (changes: FolderChanges, folder: MaildirFolder) => void;
}

/**
 * One Maildir (INBOX) or Maildir++ folder: `cur/ new/ tmp/`, the state log ({@link FOLDER_LOG_FILE}) and its lock.
 *
 * - State (UIDs, flags, modseqs) is a {@link FolderState} rebuilt from the log at open and kept current by reading only
 *   the log's new records; `new/` and `cur/` are rescanned only when their mtimes say another tool touched them.
 * - Changes are queued and committed in groups: message files are written and fsynced in `tmp/` by each caller in
 *   parallel; one commit then takes the lock, catches up with the log, renames the whole group into `new/`/`cur/`,
 *   fsyncs each touched directory once and appends + fsyncs the group's records once. Calls resolve after that.
 * - Several processes may share the folder: every writer holds the lock file and reads the log tail first.
 *
 * The state, the lock, the scans and the group commit are in the base class `FolderEngine`, the reads of messages in
 * {@link FolderReader} above it; this class adds the rest of the API.
 */
export class MaildirFolder extends FolderReader {
  private readonly watcher = new FolderWatcher(() => {
    if (!this.deleted) this.refresh().catch(() => undefined); // a vanished folder is noticed by the next access
  });
  /** A refresh queued behind running work and not started yet: later callers join it instead of queueing another. */
  private refreshing: Promise<FolderChanges> | undefined;

  private constructor(
    path: string,
    private readonly options: FolderOptions,
  ) {
    super(path, options.durable);
  }

  /** True when `path` looks like a Maildir (has `cur/`). */
  static async exists(path: string): Promise<boolean> {
    try {
      return (await stat(join(path, 'cur'))).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  /** Creates the directories (and Maildir++'s `maildirfolder` marker for a sub-folder), then {@link open}s it. */
  static async create(path: string, options: FolderOptions, uidValidity: number, isSubFolder: boolean): Promise<MaildirFolder> {
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(path, sub), { recursive: true, mode: 0o700 });
    if (isSubFolder) await writeFile(join(path, 'maildirfolder'), '');
    return MaildirFolder.open(path, options, () => uidValidity);
  }

  /**
   * Opens a folder: removes leftovers of dead processes, loads the log (migrating a v0.1 `postern-uidlist`, or
   * starting a new log with `fallbackUidValidity()` when there is neither), and adopts files other tools left.
   */
  static async open(path: string, options: FolderOptions, fallbackUidValidity: () => number): Promise<MaildirFolder> {
    const folder = new MaildirFolder(path, options);
    await removeLeftovers(path);
    await folder.exclusive(() =>
      folder.withLock(noChanges(), async (hasLog) => {
        if (!hasLog) {
          const records = (await migrateUidList(path)) ?? [{ t: 'h', v: 2, uv: fallbackUidValidity(), un: 1, hm: 0 }];
          await folder.log.rewrite(records);
          for (const record of records) folder.state.apply(record);
          await unlink(join(path, UIDLIST_FILE)).catch(() => undefined);
        }
        await folder.scanLocked(noChanges());
      }),
    );
    return folder;
  }

  get uidValidity(): number {
    return this.state.uidValidity;
  }
  get uidNext(): number {
    return this.state.uidNext;
  }
  get highestModseq(): number {
    return this.state.highestModseq;
  }
  /** Counters for STATUS/SELECT, kept up to date without walking the messages. */
  get counts(): { messages: number; unseen: number; recent: number; keywords: string[] } {
    return { messages: this.state.size, unseen: this.state.unseen, recent: this.state.recent, keywords: this.state.keywords() };
  }

  /** The messages in UID order. */
  list(): Entry[] {
    return this.state.list();
  }

  /** IMAP flags of an entry. */
  flagsOf(entry: Entry): Set<string> {
    return flagsOfEntry(entry);
  }

  /**
   * Catches up with changes by other processes and tools; reports and resolves them.
   * When the log has not grown and `new/`/`cur/` kept their stamp (three blocking `stat`s, microseconds), it resolves
   * at once without queueing behind this folder's commits. Otherwise it runs in the folder's queue, and callers that come
   * while such a refresh waits there share it (it starts after all of them called, so it sees what they must see).
   */
  async refresh(): Promise<FolderChanges> {
    if (this.deleted) return noChanges();
    if (this.refreshing !== undefined) return this.refreshing;
    const unchanged = this.log.unchanged();
    if (unchanged && !this.dirsNeedScan(true, stampDirsSync(this.path))) return noChanges();
    this.refreshing ??= this.exclusive(async () => {
      this.refreshing = undefined;
      const changes = noChanges();
      if (this.deleted) return changes;
      const hasLog = await this.catchUp(changes);
      // Deleted while the log was read: the state was emptied under the read, and nothing about the folder is news.
      if (this.deleted) return noChanges();
      const now = stampDirsSync(this.path);
      if (!hasLog || this.dirsNeedScan(true, now)) await this.withLock(changes, () => this.scanLocked(changes));
      this.report(changes);
      return changes;
    });
    return this.refreshing;
  }

  /**
   * Stores a message the Maildir way: the caller writes it to `tmp/` and fsyncs it; the group commit renames it into
   * `new/` (or `cur/` when it has system flags), fsyncs the directory and appends its UID to the log.
   * @param source hard-link this existing file instead of writing `raw` (COPY); falls back to writing.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when `source` vanished; file-system errors.
   */
  async add(
    raw: Buffer | undefined,
    flags: Iterable<string>,
    internalDate: Date,
    source?: { path: string; size: number },
    envelope?: DeliveryEnvelope,
  ): Promise<Entry> {
    const [result] = await this.addMany([{ raw, flags, internalDate, source, envelope }]);
    if (result!.status === 'rejected') throw result!.reason;
    return result!.value;
  }

  /** Several {@link add}s: files written in parallel, committed in one group in the given order (UIDs ascend with it). */
  async addMany(items: readonly NewMessage[]): Promise<Array<PromiseSettledResult<Entry>>> {
    const written = await Promise.allSettled(
      items.map((item) => {
        const prepared = prepareMessage(item, this.path, this.durable, this.cache);
        const tracked = prepared.catch(() => undefined);
        this.preparing.add(tracked);
        void tracked.then(() => this.preparing.delete(tracked));
        return prepared;
      }),
    );
    return Promise.allSettled(
      written.map((w) => (w.status === 'rejected' ? Promise.reject(w.reason as Error) : this.enqueue<Entry>((done) => ({ ...w.value, done })))),
    );
  }


  /** Changes flags (renaming files for system flags, the log for all); resolves updated entries and changed UIDs. */
  setFlags(uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<{ entries: Entry[]; changed: number[] }> {
    return this.enqueue((done) => ({ kind: 'flags', uids, flags, mode, done }));
  }

  /** Moves `new/` files to `cur/` (a client has now seen them), as Maildir readers do. */
  async markCurrent(): Promise<void> {
    if (this.state.recent === 0) return;
    return this.enqueue((done) => ({ kind: 'current', done }));
  }

  /** Deletes the files of the given UIDs; resolves the UIDs removed, ascending. */
  remove(uids: number[]): Promise<number[]> {
    return this.enqueue((done) => ({ kind: 'expunge', uids, done }));
  }

  /** Follows a rename of the folder directory. */
  moveTo(path: string): void {
    void this.log.close();
    void this.dirs.close();
    this.path = path;
    this.log = new FolderLog(logPathOf(path), this.options.durable);
    this.cache.moveTo(path);
    this.state.dirStamp = undefined;
    if (this.watcher.active) {
      this.watcher.stop();
      this.watcher.start(path);
    }
  }

  /** Marks the folder as deleted: snapshots can no longer be read, queued work stops touching the directory. */
  markDeleted(): void {
    this.deleted = true;
    this.unwatch();
    this.state = new FolderState();
    void this.exclusive(() => this.closeFiles());
  }

  /** Stops watching and resolves once no task of this folder runs (before its directory is removed, or at close). */
  async idle(): Promise<void> {
    this.unwatch();
    await this.chain;
    await this.flushed.catch(() => undefined);
    await this.cache.settled();
    await this.exclusive(() => this.closeFiles());
  }

  /**
   * Starts noticing changes by other processes within about a second (see {@link FolderWatcher}). Idempotent.
   */
  watch(): void {
    if (!this.deleted) this.watcher.start(this.path);
  }

  /** Stops {@link watch}. Idempotent. */
  unwatch(): void {
    this.watcher.stop();
  }

  protected override report(changes: FolderChanges): void {
    if (changes.added.length + changes.expunged.length + changes.flagged.length > 0) this.options.notify(changes, this);
  }
}
