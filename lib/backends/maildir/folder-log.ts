import { open, rename, stat } from 'node:fs/promises';
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
 * The append-only state log of one folder, as a file: it remembers how far it has read (byte offset and inode), so
 * that each later read costs only the new records. Writers hold the folder's lock file while they read the tail and
 * append; readers need no lock, because they consume complete lines only (a line without its `\n` is either being
 * written right now or was torn by a crash, and the next writer truncates it).
 */
export class FolderLog {
  private ino = -1;
  private offset = 0;
  private lineCount = 0;

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
   * Reads the complete records appended since the last call (all of them when the file is new to us).
   * Resolves undefined when the file does not exist. Lines that do not parse are skipped (foreign or torn).
   */
  async readNew(): Promise<LogRead | undefined> {
    let handle;
    try {
      handle = await open(this.path, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    try {
      const info = await handle.stat();
      const replaced = info.ino !== this.ino || info.size < this.offset;
      if (replaced) {
        this.ino = info.ino;
        this.offset = 0;
        this.lineCount = 0;
      }
      if (info.size === this.offset) return { replaced, records: [] };
      const length = info.size - this.offset;
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, this.offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      const end = buffer.lastIndexOf(0x0a, filled - 1);
      if (end < 0) return { replaced, records: [] };
      const records: LogRecord[] = [];
      for (const line of buffer.toString('utf8', 0, end).split('\n')) {
        this.lineCount++;
        const record = parseRecord(line);
        if (record !== undefined) records.push(record);
      }
      this.offset += end + 1;
      return { replaced, records };
    } finally {
      await handle.close();
    }
  }

  /**
   * Appends records and fsyncs the file (when `sync`; by default when the log is durable). The caller holds the folder lock and has just called
   * {@link readNew}, so anything past our offset is a torn record of a crashed writer: it is cut off first.
   */
  async append(records: readonly LogRecord[], sync = this.durable): Promise<void> {
    if (records.length === 0) return;
    const data = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    const handle = await open(this.path, 'r+');
    try {
      const info = await handle.stat();
      if (info.ino !== this.ino) throw new Error('folder log replaced while locked');
      if (info.size !== this.offset) await handle.truncate(this.offset);
      await maildirFs.writeAt(handle, data, this.offset);
      if (sync) await handle.sync();
    } finally {
      await handle.close();
    }
    this.offset += data.length;
    this.lineCount += records.length;
  }

  /**
   * Replaces the whole log with `records` the way dovecot-uidlist is rewritten: a sibling temporary file, fsync,
   * rename over the log, fsync the directory. Used to create the log and to compact it (caller holds the lock).
   * Readers in other processes notice the new inode and reload.
   */
  async rewrite(records: readonly LogRecord[]): Promise<void> {
    const temporary = `${this.path}.tmp-${process.pid}-${++tmpCounter}`;
    const data = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      if (this.durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.path);
    if (this.durable) await fsyncDir(dirname(this.path));
    const info = await stat(this.path);
    this.ino = info.ino;
    this.offset = data.length;
    this.lineCount = records.length;
  }
}
