/**
 * The read side of a {@link MaildirFolder} ({@link FolderReader}, between its base class `FolderEngine` and it): message
 * snapshots with their identity and their structure from the index cache, and reads of message files that follow
 * concurrent renames.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { MailStoreError, type CachedStructure, type MessageIdentity, type PrefixReadableMessage, type StoredMessage, type StreamableMessage } from '../../contracts/mail-store.js';
import { emailIdOfName } from '../shared/object-ids.js';
import { isErrno } from './durable-fs.js';
import type { CachedMessage } from './folder-cache.js';
import { FolderEngine } from './folder-engine.js';
import { SYNC_IO_MAX_OCTETS } from './folder-files.js';
import { messagePath } from './folder-scan.js';
import { flagsOfEntry, type Entry, type FolderChanges } from './folder-state.js';
import { saveDateOfBaseName } from './maildir-names.js';
import { cacheEntryOf } from './new-message.js';

/** Chunk size of {@link FolderReader.openStream}. */
const STREAM_CHUNK_OCTETS = 64 * 1024;

/**
 * The base class of {@link MaildirFolder} that reads its messages: {@link messageOf} snapshots, {@link read} and
 * {@link openStream}, which catch up with the folder ({@link refresh}) when a file was renamed or expunged under them.
 * The folder member they use that `MaildirFolder` defines is declared here.
 */
export abstract class FolderReader extends FolderEngine {
  /**
   * RFC 8474 §5.1 EMAILID of an entry: the one it was copied with (COPY and MOVE keep their source's), else a hash of
   * its unique file name, the message's persistent identity in this folder.
   */
  emailIdOf(entry: Entry): string {
    return entry.emailId ?? emailIdOfName(entry.base);
  }

  /** A snapshot whose `raw()` follows later renames of the file, with its structure from the index cache. */
  messageOf(entry: Entry): StoredMessage & CachedStructure & StreamableMessage & PrefixReadableMessage & MessageIdentity {
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
      readPrefix: (octets: number) => this.readPrefix(base, octets),
    };
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
  read(base: string): Promise<Buffer> {
    return this.following(base, (path, entry) => (entry.size <= SYNC_IO_MAX_OCTETS ? readFileSync(path) : readFile(path)));
  }

  /**
   * The first `octets` of a message, following concurrent renames: one synchronous read up to `SYNC_IO_MAX_OCTETS`
   * (a few microseconds from the page cache, where a stream's open, read and close are thread-pool round trips).
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it was expunged or its folder deleted.
   */
  readPrefix(base: string, octets: number): Promise<Buffer> {
    return this.following(base, async (path, entry) => {
      const length = Math.min(octets, entry.size);
      if (length > SYNC_IO_MAX_OCTETS) {
        const handle = await open(path, 'r');
        try {
          const { buffer, bytesRead } = await handle.read(Buffer.allocUnsafe(length), 0, length, 0);
          return buffer.subarray(0, bytesRead);
        } finally {
          await handle.close();
        }
      }
      const fd = openSync(path, 'r');
      try {
        const buffer = Buffer.allocUnsafe(length);
        return buffer.subarray(0, readSync(fd, buffer, 0, length, 0));
      } finally {
        closeSync(fd);
      }
    });
  }

  /**
   * Opens a message for streaming (64 KiB chunks), following concurrent renames; once open, a rename or expunge
   * does not disturb the reader.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it was expunged or its folder deleted.
   */
  openStream(base: string): Promise<Readable> {
    return this.following(base, async (path) => (await open(path, 'r')).createReadStream({ highWaterMark: STREAM_CHUNK_OCTETS }));
  }

  /**
   * Runs `use` on the current path of a message, again after catching up with the folder when the file was renamed
   * away meanwhile (flags changed by another session, or moved from `new/` to `cur/`), up to three times.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it was expunged or its folder deleted.
   */
  private async following<T>(base: string, use: (path: string, entry: Entry) => T | Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = this.state.byBase(base);
      if (entry === undefined || this.deleted) break;
      try {
        return await use(this.pathOf(entry), entry);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      await this.refresh().catch(() => undefined);
    }
    throw new MailStoreError('NO_SUCH_MESSAGE', 'message no longer exists');
  }

  /** `MaildirFolder.refresh`: a read that found no file catches up with the folder before it tries again. */
  abstract refresh(): Promise<FolderChanges>;
}
