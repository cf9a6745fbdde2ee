/**
 * A new message's way into a Maildir folder before its group commit ({@link prepareMessage}): the file written to
 * `tmp/` (or hard-linked from a COPY's source) by each caller in parallel, the index cache filled from the octets at
 * hand, and the entry the commit then gives a UID. `folder-engine.ts` re-exports {@link NewMessage} and
 * {@link cacheEntryOf}.
 */
import { link, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailStoreError, type DeliveryEnvelope } from '../../contracts/mail-store.js';
import { parseMime } from '../../mime/mime-parse.js';
import { canonicalSize, pruneStructure } from '../../mime/mime-structure.js';
import { isKeyword, normalizeFlags } from '../shared/message-flags.js';
import { isErrno } from './durable-fs.js';
import type { CachedMessage, FolderCache } from './folder-cache.js';
import { writeMessageFile } from './folder-files.js';
import type { AddOp } from './folder-ops.js';
import type { Entry } from './folder-state.js';
import { lettersOfFlags, uniqueBaseName } from './maildir-names.js';

/** What the index cache keeps of a message. */
export function cacheEntryOf(raw: Buffer): CachedMessage {
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
 * Puts a new message's file in `tmp/` of the folder at `path` (written, and fsynced when `durable`, or hard-linked from
 * its source) and describes its entry. Runs outside the folder's queue, in parallel with other callers;
 * `FolderEngine.enqueue` then commits it. Called by `MaildirFolder.addMany` with the folder's path, durability and cache.
 * @throws MailStoreError `NO_SUCH_MESSAGE` when `source` vanished; file-system errors.
 */
export async function prepareMessage(item: NewMessage, path: string, durable: boolean, cache: FolderCache): Promise<Omit<AddOp, 'done'>> {
  const { raw, source, internalDate } = item;
  const size = source?.size ?? raw!.length;
  const normalized = normalizeFlags(item.flags);
  const base = uniqueBaseName(size);
  const letters = lettersOfFlags(normalized);
  const tmp = join(path, 'tmp', base);
  let linked = false;
  if (source !== undefined) {
    try {
      await link(source.path, tmp);
      linked = true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new MailStoreError('NO_SUCH_MESSAGE', 'message vanished');
    }
  }
  if (!linked) await writeMessageFile(tmp, raw ?? (await readFile(source!.path)), internalDate, durable);
  // Fill the index cache on delivery (the octets are at hand): later FETCH ENVELOPE/BODYSTRUCTURE read no file.
  if (raw !== undefined) cache.put(base, cacheEntryOf(raw));
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
