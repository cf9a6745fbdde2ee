/**
 * The machinery under a {@link MaildirFolder} (its base class): the folder's state and log, the folder lock with the
 * log catch-up and directory scans done under it, and the group commit that makes queued changes durable, with the
 * compaction of the log. The new message files each caller writes to `tmp/` beforehand are `new-message.ts`'s.
 * `maildir-folder.ts` builds the folder's API on it and re-exports {@link FOLDER_LOCK_FILE} and `NewMessage`.
 */
import { join } from 'node:path';
import { MailStoreError } from '../../contracts/mail-store.js';
import { acquireDotLock } from './dot-lock.js';
import { isErrno } from './durable-fs.js';
import { FolderCache } from './folder-cache.js';
import { FolderDirs } from './folder-files.js';
import { FolderLog } from './folder-log.js';
import { performOp, type CommitContext, type Deferred, type Op } from './folder-ops.js';
import { maildirFs } from './maildir-fs.js';
import { diffWithDirs, logPathOf, stampDirsSync, stampMs, type DirStamp } from './folder-scan.js';
import { FolderState, fileNameOf, noChanges, type FolderChanges, type LogRecord } from './folder-state.js';

export { cacheEntryOf, type NewMessage } from './new-message.js';

/** The folder lock file (O_EXCL dotlock) held around log appends, UID allocation and directory scans. */
export const FOLDER_LOCK_FILE = 'postern-log.lock';
/** How long a writer waits for another process's folder lock (held for milliseconds normally) before failing. */
const LOCK_WAIT_MS = 30_000;
/** Compaction runs when the log holds more than twice the live messages plus this many records. */
const COMPACT_SLACK = 1000;
/** A directory scan that only confirms unchanged mtimes may use at most 1/10 of the time (see {@link dirsNeedScan}). */
const CONFIRM_SCAN_FACTOR = 10;
/**
 * ... and runs at most this often (per folder and process): under a steady stream of changes the stamp is always
 * fresh, and a tool's change hidden in the same mtime tick as one of ours is then still found well within a second.
 */
const CONFIRM_SCAN_MIN_INTERVAL_MS = 200;

/**
 * The base class (under `FolderReader`) of {@link MaildirFolder}, which describes how the whole works. Holds what the
 * folder's calls share and runs every task that changes the state or the directories: {@link exclusive} orders them,
 * {@link enqueue} queues a change for the next group commit, {@link withLock} takes the folder lock and catches up with
 * the log first.
 */
export abstract class FolderEngine {
  protected state = new FolderState();
  protected log: FolderLog;
  protected readonly cache: FolderCache;
  protected chain: Promise<unknown> = Promise.resolve();
  private pending: Op[] = [];
  private scheduled = false;
  /** Message files being written to `tmp/` right now: a commit waits for these to join its group. */
  protected readonly preparing = new Set<Promise<unknown>>();
  protected deleted = false;
  private lastScanStart = 0;
  private lastScanEnd = 0;
  private lastScanMs = 0;
  /** `new/` and `cur/`, kept open for their fsyncs. */
  protected readonly dirs = new FolderDirs();
  /** Settles when the last committed group and all before it are durable; rejects when one of their fsyncs failed. */
  protected flushed: Promise<void> = Promise.resolve();

  protected constructor(
    /** Directory of the folder; updated by {@link MaildirFolder.moveTo} when the mailbox is renamed. */
    public path: string,
    /** fsync message files, directories and the log ({@link FolderOptions.durable}). */
    protected readonly durable: boolean,
  ) {
    this.log = new FolderLog(logPathOf(path), durable);
    this.cache = new FolderCache(path);
  }

  /** Closes the kept log file and directories (both come back on next use). */
  protected async closeFiles(): Promise<void> {
    await Promise.all([this.log.close(), this.dirs.close()]);
  }

  /** Runs `task` after every earlier state-changing task of this folder (in-process order). */
  protected exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.chain.then(task);
    this.chain = result.catch(() => undefined);
    return result;
  }

  protected enqueue<T>(make: (done: Deferred<T>) => Op): Promise<T> {
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
  protected async withLock<T>(changes: FolderChanges, task: (hasLog: boolean, stamp: DirStamp) => Promise<T>): Promise<T> {
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
  protected async catchUp(changes: FolderChanges): Promise<boolean> {
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
  protected dirsNeedScan(confirm: boolean, now: DirStamp): boolean {
    const known = this.state.dirStamp;
    if (known === undefined || now.n !== known.n || now.c !== known.c) return true;
    if (!confirm || stampMs(known) + 1000 <= this.lastScanStart) return false;
    return Date.now() - this.lastScanEnd >= Math.max(CONFIRM_SCAN_FACTOR * this.lastScanMs, CONFIRM_SCAN_MIN_INTERVAL_MS);
  }

  /** Brings the log in line with the directories (caller holds the lock and has caught up). */
  protected async scanLocked(changes: FolderChanges): Promise<void> {
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
        const durable = this.durable && batch.some((op) => op.kind !== 'current');
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

  /** Tells the folder's owner about changes by other processes and tools, if there are any (never the folder's own calls). */
  protected abstract report(changes: FolderChanges): void;
}
