import { open, rename, type FileHandle } from 'node:fs/promises';
import { readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDir, isErrno } from './durable-fs.js';
import { maildirFs } from './maildir-fs.js';
import { parseRecord, type LogRecord } from './folder-state.js';

/** What {@link FolderLog.readNew} found. */
export interface LogRead {
  /** The file was replaced (compacted by someone) or read for the first time: `records` are the whole log. */
  readonly replaced: boolean;
  readonly records: LogRecord[];
}

let tmpCounter = 0;
/**
 * Closes the kept file of a log that was dropped without {@link FolderLog.close} (a store nobody closed, as in tests):
 * the registry holds the handle, so Node never finds it unreferenced and warns about closing it on garbage collection.
 */
const dropped = new FinalizationRegistry<FileHandle>((handle) => {
  handle.close().catch(() => undefined);
});

/**
 * The append-only state log of one folder, as a file: it remembers how far it has read (byte offset and inode), so
 * that each later read costs only the new records. Writers hold the folder's lock file while they read the tail and
 * append; readers need no lock, because they consume complete lines only (a line without its `\n` is either being
 * written right now or was torn by a crash, and the next writer truncates it).
 */
export class FolderLog {
  private ino = -1;
  private offset = 0;
  private lineCount = 0;
  /** The log file, kept open between calls (reads and appends then cost no open/close round trips). */
  private handle: FileHandle | undefined;
  /** Size of the file at the last {@link readNew} (what an append under the same lock may rely on). */
  private seenSize = -1;

  /** @param path the log file. @param durable fsync appends and rewrites. */
  constructor(
    readonly path: string,
    private readonly durable: boolean,
  ) {}

  /** Records in the current file (the compaction trigger compares it with the live messages). */
  get records(): number {
    return this.lineCount;
  }

  /**
   * True when the file at {@link path} is the one we read and holds nothing past our offset: one blocking `stat` (a few
   * microseconds from the inode cache, where a thread-pool round trip costs far more under load). False when it may
   * have changed (or is gone), so that the caller reads it.
   */
  unchanged(): boolean {
    try {
      const info = statSync(this.path, { throwIfNoEntry: false });
      return info !== undefined && info.ino === this.ino && info.size === this.offset;
    } catch {
      return false;
    }
  }

  /**
   * Reads the complete records appended since the last call (all of them when the file is new to us).
   * Resolves undefined when the file does not exist. Lines that do not parse are skipped (foreign or torn).
   * One `stat` when nothing was appended; a read of the new bytes otherwise (and an open when the file was replaced).
   */
  async readNew(): Promise<LogRead | undefined> {
    // The stat and the read of the tail (usually a few records) are blocking calls: microseconds from the page cache,
    // and the folder lock is held around them (see FolderLog.unchanged).
    let info: { ino: number; size: number } | undefined = statSync(this.path, { throwIfNoEntry: false });
    if (info === undefined) return undefined;
    let replaced = false;
    if (info.ino !== this.ino || this.handle === undefined || info.size < this.offset) {
      await this.close();
      let handle;
      try {
        handle = await open(this.path, 'r+');
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return undefined;
        throw err;
      }
      info = await handle.stat();
      this.keep(handle);
      replaced = true;
      this.ino = info.ino;
      this.offset = 0;
      this.lineCount = 0;
    }
    this.seenSize = info.size;
    if (info.size === this.offset) return { replaced, records: [] };
    const length = info.size - this.offset;
    const buffer = Buffer.allocUnsafe(length);
    const handle = this.handle!;
    let filled = 0;
    while (filled < length) {
      const bytesRead = readSync(handle.fd, buffer, filled, length - filled, this.offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const end = filled === 0 ? -1 : buffer.lastIndexOf(0x0a, filled - 1);
    if (end < 0) return { replaced, records: [] };
    const records: LogRecord[] = [];
    for (const line of buffer.toString('utf8', 0, end).split('\n')) {
      this.lineCount++;
      const record = parseRecord(line);
      if (record !== undefined) records.push(record);
    }
    this.offset += end + 1;
    return { replaced, records };
  }

  /**
   * Appends records and fsyncs the file (when `sync`; by default when the log is durable). The caller holds the folder
   * lock and has just called {@link readNew} (so the open file is the one at {@link path}), so anything past our offset
   * is a torn record of a crashed writer: it is cut off first.
   */
  async append(records: readonly LogRecord[], sync = this.durable): Promise<void> {
    if (records.length === 0) return;
    const handle = this.handle;
    if (handle === undefined) throw new Error('folder log not read before append');
    const data = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    if (this.seenSize !== this.offset) await handle.truncate(this.offset);
    await maildirFs.writeAt(handle, data, this.offset);
    // fdatasync: the size (metadata needed to read the data back) is flushed with the data.
    if (sync) await handle.datasync();
    this.offset += data.length;
    this.seenSize = this.offset;
    this.lineCount += records.length;
  }

  private keep(handle: FileHandle): void {
    this.handle = handle;
    dropped.register(this, handle, this);
  }

  /**
   * Starts an fdatasync of what {@link append} wrote (call it right after, still under the lock: it syncs the file
   * that was written even if a later compaction replaces it). Resolves when the records are durable.
   */
  startSync(): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return Promise.reject(new Error('folder log not open'));
    return maildirFs.datasync(handle);
  }

  /** Closes the kept file (idempotent); the next {@link readNew} reopens it and reads it whole. */
  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    dropped.unregister(this);
    this.ino = -1;
    this.seenSize = -1;
    await handle?.close().catch(() => undefined);
  }

  /**
   * Replaces the whole log with `records` the way dovecot-uidlist is rewritten: a sibling temporary file, fsync,
   * rename over the log, fsync the directory. Used to create the log and to compact it (caller holds the lock).
   * Readers in other processes notice the new inode and reload.
   */
  async rewrite(records: readonly LogRecord[]): Promise<void> {
    const temporary = `${this.path}.tmp-${process.pid}-${++tmpCounter}`;
    const data = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    const handle = await open(temporary, 'wx+', 0o600);
    try {
      await handle.writeFile(data);
      if (this.durable) await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    try {
      await rename(temporary, this.path);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    await this.close();
    this.keep(handle);
    if (this.durable) await fsyncDir(dirname(this.path));
    const info = await handle.stat();
    this.ino = info.ino;
    this.offset = data.length;
    this.seenSize = data.length;
    this.lineCount = records.length;
  }
}
