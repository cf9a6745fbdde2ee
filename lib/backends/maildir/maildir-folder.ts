import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MailStoreError, type CachedStructure, type DeliveryEnvelope, type MessageIdentity, type StoredMessage, type StreamableMessage } from '../../contracts/mail-store.js';
import { emailIdOfName } from '../shared/object-ids.js';
import { parseMime } from '../../mime/mime-parse.js';
import { canonicalSize, pruneStructure } from '../../mime/mime-structure.js';
import type { CachedMessage } from './folder-cache.js';
import { isKeyword, normalizeFlags } from '../shared/message-flags.js';
import { acquireDotLock } from './dot-lock.js';
import { isErrno } from './durable-fs.js';
import { FolderCache } from './folder-cache.js';
import { FolderDirs, SYNC_IO_MAX_OCTETS, writeMessageFile } from './folder-files.js';
import { FolderLog } from './folder-log.js';
import { performOp, type AddOp, type CommitContext, type Deferred, type Op } from './folder-ops.js';
import { FolderWatcher } from './folder-watch.js';
import { maildirFs } from './maildir-fs.js';
import { diffWithDirs, logPathOf, messagePath, migrateUidList, removeLeftovers, stampDirsSync, stampMs, UIDLIST_FILE, type DirStamp } from './folder-scan.js';
import { FolderState, fileNameOf, flagsOfEntry, noChanges, type Entry, type FolderChanges, type LogRecord } from './folder-state.js';
import { lettersOfFlags, saveDateOfBaseName, uniqueBaseName } from './maildir-names.js';

export type { Entry, FolderChanges } from './folder-state.js';
export { WATCH_POLL_MS } from './folder-watch.js';

/** The folder lock file (O_EXCL dotlock) held around log appends, UID allocation and directory scans. */
export const FOLDER_LOCK_FILE = 'postern-log.lock';
/** How long a writer waits for another process's folder lock (held for milliseconds normally) before failing. */
const LOCK_WAIT_MS = 30_000;
/** Compaction runs when the log holds more than twice the live messages plus this many records. */
const COMPACT_SLACK = 1000;
/** Chunk size of {@link MaildirFolder.openStream}. */
const STREAM_CHUNK_OCTETS = 64 * 1024;
/** A directory scan that only confirms unchanged mtimes may use at most 1/10 of the time (see {@link dirsNeedScan}). */
const CONFIRM_SCAN_FACTOR = 10;
/**
 * ... and runs at most this often (per folder and process): under a steady stream of changes the stamp is always
 * fresh, and a tool's change hidden in the same mtime tick as one of ours is then still found well within a second.
 */
const CONFIRM_SCAN_MIN_INTERVAL_MS = 200;

/** Options of a {@link MaildirFolder}. */
export interface FolderOptions {
  /** fsync message files, directories and the log (false only for throwaway tests). */
  readonly durable: boolean;
  /** Told about changes made by other processes or tools (not the folder's own calls). Must not throw. */
  readonly notify: (changes: FolderChanges, folder: MaildirFolder) => void;
}

/** What the index cache keeps of a message. */
function cacheEntryOf(raw: Buffer): CachedMessage {
  return { structure: pruneStructure(parseMime(raw)), canonicalSize: canonicalSize(raw) };
}

/** One message for {@link MaildirFolder.addMany}: `raw` octets, or an existing file to hard-link (COPY). */
export interface NewMessage {
  readonly raw?: Buffer | undefined;
  readonly source?: { path: string; size: number } | undefined;
  readonly flags: Iterable<string>;
  readonly internalDate: Date;
  /** The delivery envelope, stored with the message. */
  readonly envelope?: DeliveryEnvelope | undefined;
  /** The EMAILID to keep (a copy's source's, RFC 8474 §5.1); by default the new file's base name gives one. */
  readonly emailId?: string | undefined;
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
 */
export class MaildirFolder {
  private state = new FolderState();
  private log: FolderLog;
  private readonly cache: FolderCache;
  private chain: Promise<unknown> = Promise.resolve();
  private pending: Op[] = [];
  private scheduled = false;
  /** Message files being written to `tmp/` right now: a commit waits for these to join its group. */
  private readonly preparing = new Set<Promise<unknown>>();
  private deleted = false;
  private lastScanStart = 0;
  private lastScanEnd = 0;
  private lastScanMs = 0;
  private readonly watcher = new FolderWatcher(() => {
    if (!this.deleted) this.refresh().catch(() => undefined); // a vanished folder is noticed by the next access
  });
  /** `new/` and `cur/`, kept open for their fsyncs. */
  private readonly dirs = new FolderDirs();
  /** Settles when the last committed group and all before it are durable; rejects when one of their fsyncs failed. */
  private flushed: Promise<void> = Promise.resolve();
  /** A refresh queued behind running work and not started yet: later callers join it instead of queueing another. */
  private refreshing: Promise<FolderChanges> | undefined;

  private constructor(
    /** Directory of the folder; updated by {@link moveTo} when the mailbox is renamed. */
    public path: string,
    private readonly options: FolderOptions,
  ) {
    this.log = new FolderLog(logPathOf(path), options.durable);
    this.cache = new FolderCache(path);
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
   * RFC 8474 §5.1 EMAILID of an entry: the one it was copied with (COPY and MOVE keep their source's), else a hash of
   * its unique file name, the message's persistent identity in this folder.
   */
  emailIdOf(entry: Entry): string {
    return entry.emailId ?? emailIdOfName(entry.base);
  }

  /** A snapshot whose `raw()` follows later renames of the file, with its structure from the index cache. */
  messageOf(entry: Entry): StoredMessage & CachedStructure & StreamableMessage & MessageIdentity {
    const base = entry.base;
    const saveDate = saveDateOfBaseName(base);
    return {
      emailId: this.emailIdOf(entry),
      ...(saveDate === undefined ? {} : { saveDate }),
      structure: async () => (await this.cachedOf(base)).structure,
      canonicalSize: async () => (await this.cachedOf(base)).canonicalSize,
      uid: entry.uid,
      internalDate: new Date(entry.internalDate),
      size: entry.size,
      modseq: entry.modseq,
      flags: flagsOfEntry(entry),
      ...(entry.envelope === undefined ? {} : { envelope: entry.envelope }),
      raw: () => this.read(base),
      openStream: () => this.openStream(base),
    };
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
        const prepared = this.prepare(item);
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

  private async prepare(item: NewMessage): Promise<Omit<AddOp, 'done'>> {
    const { raw, source, internalDate } = item;
    const size = source?.size ?? raw!.length;
    const normalized = normalizeFlags(item.flags);
    const base = uniqueBaseName(size);
    const letters = lettersOfFlags(normalized);
    const tmp = join(this.path, 'tmp', base);
    let linked = false;
    if (source !== undefined) {
      try {
        await link(source.path, tmp);
        linked = true;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new MailStoreError('NO_SUCH_MESSAGE', 'message vanished');
      }
    }
    if (!linked) await writeMessageFile(tmp, raw ?? (await readFile(source!.path)), internalDate, this.options.durable);
    // Fill the index cache on delivery (the octets are at hand): later FETCH ENVELOPE/BODYSTRUCTURE read no file.
    if (raw !== undefined) this.cache.put(base, cacheEntryOf(raw));
    const entry: Omit<Entry, 'uid' | 'modseq'> = {
      base,
      dir: letters.length > 0 ? 'cur' : 'new',
      letters,
      keywords: normalized.filter(isKeyword),
      size,
      internalDate: internalDate.getTime(),
      ...(item.envelope === undefined ? {} : { envelope: item.envelope }),
      ...(item.emailId === undefined ? {} : { emailId: item.emailId }),
    };
    return { kind: 'add', tmp, entry };
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

  /**
   * The MIME structure and canonical size of a message from the index cache; from the file (then cached) the first time.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it is gone and was not cached.
   */
  async cachedOf(base: string): Promise<CachedMessage> {
    const cached = await this.cache.get(base);
    if (cached !== undefined) return cached;
    const fresh = cacheEntryOf(await this.read(base));
    this.cache.put(base, fresh);
    return fresh;
  }

  /** Current path of a message file. */
  pathOf(entry: Entry): string {
    return messagePath(this.path, entry);
  }

  /**
   * Reads a message by its base name, following concurrent renames.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it was expunged or its folder deleted.
   */
  async read(base: string): Promise<Buffer> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = this.state.byBase(base);
      if (entry === undefined || this.deleted) break;
      try {
        return entry.size <= SYNC_IO_MAX_OCTETS ? readFileSync(this.pathOf(entry)) : await readFile(this.pathOf(entry));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      await this.refresh().catch(() => undefined);
    }
    throw new MailStoreError('NO_SUCH_MESSAGE', 'message no longer exists');
  }

  /**
   * Opens a message for streaming (64 KiB chunks), following concurrent renames; once open, a rename or expunge
   * does not disturb the reader.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it was expunged or its folder deleted.
   */
  async openStream(base: string): Promise<Readable> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = this.state.byBase(base);
      if (entry === undefined || this.deleted) break;
      try {
        const handle = await open(this.pathOf(entry), 'r');
        return handle.createReadStream({ highWaterMark: STREAM_CHUNK_OCTETS });
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      await this.refresh().catch(() => undefined);
    }
    throw new MailStoreError('NO_SUCH_MESSAGE', 'message no longer exists');
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

  /** Closes the kept log file and directories (both come back on next use). */
  private async closeFiles(): Promise<void> {
    await Promise.all([this.log.close(), this.dirs.close()]);
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

  /** Runs `task` after every earlier state-changing task of this folder (in-process order). */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.chain.then(task);
    this.chain = result.catch(() => undefined);
    return result;
  }

  private enqueue<T>(make: (done: Deferred<T>) => Op): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.deleted) {
        reject(new MailStoreError('NO_SUCH_MAILBOX', 'mailbox deleted'));
        return;
      }
      this.pending.push(make({ resolve, reject }));
      if (this.scheduled) return;
      this.scheduled = true;
      void this.exclusive(() => this.commitPending());
    });
  }

  /**
   * Takes the folder lock, catches up with the log and stats the directories, runs `task` with whether there is a log
   * and the directories' stamp, unlocks. Lock, log tail and stats are blocking calls (microseconds; see FolderLog).
   */
  private async withLock<T>(changes: FolderChanges, task: (hasLog: boolean, stamp: DirStamp) => Promise<T>): Promise<T> {
    let lock;
    try {
      lock = await acquireDotLock(join(this.path, FOLDER_LOCK_FILE), 'folder', LOCK_WAIT_MS);
    } catch (err) {
      // The folder directory is gone (deleted by another process): the same refusal as a refresh would give.
      if (isErrno(err, 'ENOENT')) throw new MailStoreError('NO_SUCH_MAILBOX', 'mailbox vanished');
      throw err;
    }
    try {
      const hasLog = await this.catchUp(changes);
      return await task(hasLog, stampDirsSync(this.path));
    } finally {
      await lock.release();
    }
  }

  /** Applies the log's new records; a replaced (compacted) log rebuilds the state. Resolves false when there is no log. */
  private async catchUp(changes: FolderChanges): Promise<boolean> {
    const read = await this.log.readNew();
    if (read === undefined) return false;
    if (this.deleted) return true; // deleted during the read: the emptied state stays empty
    if (!read.replaced) {
      for (const record of read.records) this.state.apply(record, changes);
      return true;
    }
    const fresh = new FolderState();
    for (const record of read.records) fresh.apply(record);
    for (const entry of fresh.list()) {
      const old = this.state.get(entry.uid);
      if (old === undefined) changes.added.push(entry.uid);
      else if (old.modseq !== entry.modseq) changes.flagged.push(entry.uid);
    }
    for (const old of this.state.list()) if (fresh.get(old.uid) === undefined) changes.expunged.push(old.uid);
    fresh.uidNext = Math.max(fresh.uidNext, this.state.uidNext);
    this.state = fresh;
    return true;
  }

  /**
   * Whether `new/`/`cur/` must be rescanned: their mtimes differ from the last stamp, or (`confirm`) the stamp is
   * too fresh to prove that no other tool changed them in the same timestamp tick (Dovecot's "dirty mtime").
   * Confirming scans run on reads only (commits keep the stamp unconfirmed until then: {@link lastScanStart} only
   * moves with a full scan) and are rate-limited to a tenth of the time and {@link CONFIRM_SCAN_MIN_INTERVAL_MS}, so
   * their cost stays a bounded share.
   */
  private dirsNeedScan(confirm: boolean, now: DirStamp): boolean {
    const known = this.state.dirStamp;
    if (known === undefined || now.n !== known.n || now.c !== known.c) return true;
    if (!confirm || stampMs(known) + 1000 <= this.lastScanStart) return false;
    return Date.now() - this.lastScanEnd >= Math.max(CONFIRM_SCAN_FACTOR * this.lastScanMs, CONFIRM_SCAN_MIN_INTERVAL_MS);
  }

  /** Brings the log in line with the directories (caller holds the lock and has caught up). */
  private async scanLocked(changes: FolderChanges): Promise<void> {
    const started = Date.now();
    const stamp = stampDirsSync(this.path); // before the listing: a change during it shows as a newer stamp later
    const records = await diffWithDirs(this.path, this.state);
    const known = this.state.dirStamp;
    if (records.length > 0 || known === undefined || known.n !== stamp.n || known.c !== stamp.c) records.push({ t: 's', ...stamp });
    await this.log.append(records);
    // markDeleted() emptied the state during the append: applying the records would bring the messages back.
    if (this.deleted) return;
    for (const record of records) this.state.apply(record, changes);
    this.lastScanStart = started;
    this.lastScanEnd = Date.now();
    this.lastScanMs = this.lastScanEnd - started;
  }

  private async commitPending(): Promise<void> {
    if (this.deleted) {
      for (const op of this.pending.splice(0)) op.done.reject(new MailStoreError('NO_SUCH_MAILBOX', 'mailbox deleted'));
      this.scheduled = false;
      return;
    }
    // Group commit: files whose fsync is running now join this group rather than wait for a whole next commit.
    // Only those already in flight are awaited, so a steady stream cannot hold a commit back indefinitely.
    if (this.preparing.size > 0) await Promise.all([...this.preparing]);
    this.scheduled = false;
    const batch = this.pending.splice(0);
    const changes = noChanges();
    const results = new Map<Op, unknown>();
    let flush: Promise<unknown> = Promise.resolve();
    try {
      await this.withLock(changes, async (_hasLog, stamp) => {
        if (this.dirsNeedScan(false, stamp)) await this.scanLocked(changes);
        const records: LogRecord[] = [];
        const touched = new Set<'new' | 'cur'>();
        const commit: CommitContext = {
          state: () => this.state,
          path: () => this.path,
          touched,
          record: (r) => {
            this.state.apply(r);
            records.push(r);
          },
        };
        // The new files of the whole group are renamed into place in parallel (after the scan, which must not take
        // them for files of another tool); UIDs are then given in queue order to those that made it.
        const placed = new Map<Op, Promise<void>>();
        for (const op of batch) {
          if (op.kind === 'add') placed.set(op, maildirFs.rename(op.tmp, join(this.path, op.entry.dir, fileNameOf(op.entry))));
        }
        await Promise.allSettled(placed.values());
        for (const op of batch) {
          try {
            results.set(op, await performOp(op, commit, placed.get(op)));
          } catch (err) {
            op.done.reject(err);
          }
        }
        if (touched.size > 0) {
          const stamp: LogRecord = { t: 's', ...stampDirsSync(this.path) };
          this.state.apply(stamp);
          records.push(stamp);
        }
        // The directories and the log are fsynced at the same time: no call resolves before both are durable, and
        // after a power loss between the two the next scan reconciles them (a record without its file is expunged,
        // a file without its record adopted) for changes nobody was told about yet.
        // A group of only new/ → cur/ moves (a client saw the messages) is not fsynced: after a power loss those
        // messages would merely look recent again.
        const durable = this.options.durable && batch.some((op) => op.kind !== 'current');
        const syncDirs = durable ? [...touched].map((dir) => this.dirs.sync(this.path, dir)) : [];
        try {
          await this.log.append(records, false);
        } catch (err) {
          await Promise.allSettled(syncDirs);
          throw err;
        }
        flush = Promise.all([...syncDirs, durable && records.length > 0 ? this.log.startSync() : undefined]);
      });
    } catch (err) {
      // The disk and the log may now disagree: reload both on next access. No call of the batch resolves.
      await this.log.close();
      this.state.dirStamp = undefined;
      for (const op of batch) op.done.reject(err);
      this.report(changes);
      return;
    }
    // The lock is free again before the fsyncs finish: the next group (of this or another process) commits while they
    // run, and its own fsyncs of the log and directories cover these writes too. A call resolves only once its group
    // and every earlier group of this folder are durable; a failed fsync fails its group and every later one until
    // the log and the directories have been reloaded.
    const durable = Promise.all([this.flushed, flush]);
    const settled = durable.then(() => undefined);
    settled.catch(() => undefined);
    this.flushed = settled;
    durable.then(
      () => {
        for (const [op, value] of results) (op.done as Deferred<unknown>).resolve(value);
      },
      (err: unknown) => {
        for (const op of results.keys()) op.done.reject(err);
        if (this.flushed === settled) {
          void this.exclusive(async () => {
            await this.log.close();
            this.state.dirStamp = undefined;
            if (this.flushed === settled) this.flushed = Promise.resolve();
          });
        }
      },
    );
    this.report(changes);
    if (this.log.records > 2 * this.state.size + COMPACT_SLACK) {
      this.exclusive(() => this.compact()).catch((err: unknown) => process.emitWarning(err instanceof Error ? err : String(err), 'MaildirCompactionWarning'));
    }
  }

  /** Rewrites the log as one record per live message (O(messages), once per as many changes: amortized O(1)). */
  private async compact(): Promise<void> {
    if (this.deleted) return;
    const changes = noChanges();
    await this.withLock(changes, async () => {
      if (this.log.records > 2 * this.state.size + COMPACT_SLACK) await this.log.rewrite(this.state.snapshot());
    });
    this.report(changes);
    await this.cache.compact(new Set(this.state.list().map((entry) => entry.base))).catch(() => undefined);
  }

  private report(changes: FolderChanges): void {
    if (changes.added.length + changes.expunged.length + changes.flagged.length > 0) this.options.notify(changes, this);
  }
}
