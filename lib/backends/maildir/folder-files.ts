/**
 * A Maildir folder's file work outside its commit: writing a new message into `tmp/`, and fsyncing `new/` and `cur/`
 * through directory handles kept open between commits.
 */
import { closeSync, fsync, futimesSync, openSync, statSync, writeSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncDir, isErrno } from './durable-fs.js';

/**
 * Messages up to this size are read and written with blocking calls: from and into the page cache that costs a few
 * microseconds, where each async step is a thread-pool round trip (four for a read: open, fstat, read, close) that
 * queues behind other fsyncs under load; those reads dominated FETCH BODY[] and POP3 RETR profiles. Dovecot reads
 * message files with blocking I/O too. Larger messages go through the thread pool (or are streamed), so a big file
 * never holds the event loop for long. A new message's fsync always runs in the thread pool.
 */
export const SYNC_IO_MAX_OCTETS = 128 * 1024;

const fsyncFd = promisify(fsync);

/**
 * Writes a new message file `tmp` (exclusive create, mode 0600), dates it `internalDate` (the log has the date; the
 * mtime carries it for other Maildir tools) and, when `durable`, fsyncs it. A failed write leaves no file.
 */
export async function writeMessageFile(tmp: string, data: Buffer, internalDate: Date, durable: boolean): Promise<void> {
  if (data.length <= SYNC_IO_MAX_OCTETS) return writeSmallMessageFile(tmp, data, internalDate, durable);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.utimes(internalDate, internalDate);
    if (durable) await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
}

/** {@link writeMessageFile} of a message up to {@link SYNC_IO_MAX_OCTETS}: create, write and date it with blocking calls. */
async function writeSmallMessageFile(tmp: string, data: Buffer, internalDate: Date, durable: boolean): Promise<void> {
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written);
    futimesSync(fd, internalDate, internalDate);
    if (durable) await fsyncFd(fd);
  } catch (err) {
    closeSync(fd);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  closeSync(fd);
}

/** Closes the kept directory handles of a {@link FolderDirs} dropped without {@link FolderDirs.close}. */
const droppedDirs = new FinalizationRegistry<Promise<FileHandle>>((handle) => {
  handle.then((h) => h.close()).catch(() => undefined);
});

/**
 * `new/` and `cur/` of one folder, kept open for their fsyncs (one thread-pool job per fsync instead of open, fsync,
 * close), each with the inode it was opened on. Handles come back on next use after {@link close}.
 */
export class FolderDirs {
  private readonly kept = new Map<'new' | 'cur', { ino: number; handle: Promise<FileHandle> }>();

  /**
   * fsyncs `dir` of the folder at `path`. A blocking `stat` first makes sure the kept handle is still the directory at
   * that path (a folder removed and made again, or renamed). A directory that is gone is skipped: the folder's next
   * access reports it. File systems without directory fsync (EINVAL, EISDIR, EPERM) are fine, as with `fsyncDir`.
   */
  async sync(path: string, dir: 'new' | 'cur'): Promise<void> {
    const dirPath = join(path, dir);
    const ino = statSync(dirPath, { throwIfNoEntry: false })?.ino;
    if (ino === undefined) return;
    let kept = this.kept.get(dir);
    if (kept?.ino !== ino) {
      if (kept !== undefined) {
        droppedDirs.unregister(kept);
        void kept.handle.then((handle) => handle.close()).catch(() => undefined);
      }
      kept = { ino, handle: open(dirPath, 'r') };
      kept.handle.catch(() => undefined);
      droppedDirs.register(this, kept.handle, kept);
      this.kept.set(dir, kept);
    }
    let handle;
    try {
      handle = await kept.handle;
    } catch {
      if (this.kept.get(dir) === kept) this.kept.delete(dir);
      return fsyncDir(dirPath);
    }
    try {
      await handle.sync();
    } catch (err) {
      if (!isErrno(err, 'EINVAL') && !isErrno(err, 'EISDIR') && !isErrno(err, 'EPERM')) throw err;
    }
  }

  /** Closes the kept handles. */
  async close(): Promise<void> {
    const open = [...this.kept.values()];
    this.kept.clear();
    for (const kept of open) droppedDirs.unregister(kept);
    await Promise.all(open.map(async (kept) => (await kept.handle.catch(() => undefined))?.close().catch(() => undefined)));
  }
}
