/**
 * The read side of a {@link MaildirFolder} ({@link FolderReader}, between its base class `FolderEngine` and it): message
 * snapshots with their identity and their structure from the index cache, and reads of message files that follow
 * concurrent renames.
 */
import { readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { MailStoreError, type CachedStructure, type MessageIdentity, type StoredMessage, type StreamableMessage } from '../../contracts/mail-store.js';
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

  /** `MaildirFolder.refresh`: a read that found no file catches up with the folder before it tries again. */
  abstract refresh(): Promise<FolderChanges>;
}
