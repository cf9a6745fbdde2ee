import { link, mkdir, readFile, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailStoreError, type DeliveryEnvelope, type StoredMessage } from '../../contracts/mail-store.js';
import { applyFlags, isKeyword, normalizeFlags } from '../shared/message-flags.js';
import { fsyncDir, isErrno, replaceFile, writeNewFile } from './durable-fs.js';
import { INFO_SEPARATOR, flagsOfLetters, lettersOfFlags, parseFileName, uniqueBaseName } from './maildir-names.js';

/** Per-folder state file: UIDVALIDITY, UIDNEXT, the UID and keywords of each message (like dovecot-uidlist). */
export const UIDLIST_FILE = 'postern-uidlist';

/** One message as the folder index knows it. */
interface Entry {
  readonly uid: number;
  /** Unique Maildir name, stable across flag changes. */
  readonly base: string;
  dir: 'new' | 'cur';
  /** Info letters after `:2,` (only in cur/). */
  letters: string;
  keywords: string[];
  readonly size: number;
  readonly internalDate: Date;
  /** RFC 7162 modification sequence. */
  modseq: number;
  readonly envelope?: DeliveryEnvelope;
}

interface UidListFile {
  version: 1;
  uidValidity: number;
  uidNext: number;
  /** Absent in files written before MODSEQ support: then every message counts as modseq 1. */
  highestModseq?: number;
  messages: Array<{ uid: number; base: string; keywords?: string[]; modseq?: number; envelope?: DeliveryEnvelope }>;
}

/** What a {@link MaildirFolder.sync} found changed by someone else on disk. */
export interface SyncResult {
  readonly added: number[];
  readonly expunged: number[];
  readonly flagged: number[];
}

function fileName(entry: Entry): string {
  return entry.dir === 'new' ? entry.base : entry.base + INFO_SEPARATOR + entry.letters;
}

function parseUidList(text: string): UidListFile | undefined {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const file = parsed as Partial<UidListFile>;
  if (typeof file.uidValidity !== 'number' || typeof file.uidNext !== 'number' || !Array.isArray(file.messages)) return undefined;
  return file as UidListFile;
}

/**
 * One Maildir (INBOX) or Maildir++ folder: `cur/ new/ tmp/` plus {@link UIDLIST_FILE}. The index of messages is
 * kept in memory and reconciled with the directories by {@link sync}, so files added, renamed or removed by other
 * Maildir tools are picked up. Callers serialize mutations (the store holds a per-user queue).
 */
export class MaildirFolder {
  private entries = new Map<string, Entry>();
  private deleted = false;

  private constructor(
    /** Directory of the folder; updated by {@link moveTo} when the mailbox is renamed. */
    public path: string,
    private readonly durable: boolean,
    public uidValidity: number,
    public uidNext: number,
    public highestModseq = 0,
  ) {}

  /** True when `path` looks like a Maildir (has `cur/`). */
  static async exists(path: string): Promise<boolean> {
    try {
      return (await stat(join(path, 'cur'))).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  /**
   * Creates the directories (and Maildir++'s `maildirfolder` marker for a sub-folder) and an empty state file.
   * Existing directories are kept (an existing Maildir without a state file is adopted).
   */
  static async create(path: string, durable: boolean, uidValidity: number, isSubFolder: boolean): Promise<MaildirFolder> {
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(path, sub), { recursive: true, mode: 0o700 });
    if (isSubFolder) await writeFile(join(path, 'maildirfolder'), '');
    const folder = new MaildirFolder(path, durable, uidValidity, 1);
    await folder.sync();
    await folder.save();
    return folder;
  }

  /** Loads the state file (creating one with `fallbackUidValidity()` if missing) and syncs with the directories. */
  static async open(path: string, durable: boolean, fallbackUidValidity: () => number): Promise<MaildirFolder> {
    let state: UidListFile | undefined;
    try {
      state = parseUidList(await readFile(join(path, UIDLIST_FILE), 'utf8'));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    if (state === undefined) return MaildirFolder.create(path, durable, fallbackUidValidity(), false);
    const folder = new MaildirFolder(path, durable, state.uidValidity, state.uidNext, Math.max(state.highestModseq ?? 0, state.messages.length > 0 ? 1 : 0));
    for (const m of state.messages) {
      // Placeholders until sync() finds the file; size and date come from the file itself.
      const modseq = m.modseq ?? 1;
      folder.entries.set(m.base, { uid: m.uid, base: m.base, dir: 'new', letters: '', keywords: m.keywords ?? [], size: -1, internalDate: new Date(0), modseq, ...(m.envelope === undefined ? {} : { envelope: m.envelope }) });
    }
    await folder.sync();
    return folder;
  }

  /** The messages in UID order. */
  list(): Entry[] {
    return [...this.entries.values()].sort((a, b) => a.uid - b.uid);
  }

  /** IMAP flags of an entry. */
  flagsOf(entry: Entry): Set<string> {
    return new Set([...flagsOfLetters(entry.letters), ...entry.keywords]);
  }

  /** A snapshot whose `raw()` follows later renames of the file. */
  messageOf(entry: Entry): StoredMessage {
    return {
      uid: entry.uid,
      internalDate: new Date(entry.internalDate.getTime()),
      size: entry.size,
      flags: this.flagsOf(entry),
      modseq: entry.modseq,
      ...(entry.envelope === undefined ? {} : { envelope: entry.envelope }),
      raw: () => this.read(entry.base),
    };
  }

  /** Reconciles the index with `new/` and `cur/`; new files get UIDs in (mtime, name) order. */
  async sync(): Promise<SyncResult> {
    const found = new Map<string, { dir: 'new' | 'cur'; letters: string; file: string }>();
    for (const dir of ['new', 'cur'] as const) {
      let files: string[];
      try {
        files = await readdir(join(this.path, dir));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new MailStoreError('NO_SUCH_MAILBOX', 'mailbox vanished');
        throw err;
      }
      for (const file of files) {
        if (file.startsWith('.')) continue;
        const { base, letters } = parseFileName(file);
        found.set(base, { dir, letters: dir === 'new' ? '' : letters, file });
      }
    }
    const expunged: number[] = [];
    const flagged: number[] = [];
    for (const entry of [...this.entries.values()]) {
      const seen = found.get(entry.base);
      if (seen === undefined) {
        this.entries.delete(entry.base);
        expunged.push(entry.uid);
        continue;
      }
      found.delete(entry.base);
      if (entry.size < 0) {
        const info = await stat(join(this.path, seen.dir, seen.file));
        this.entries.set(entry.base, { ...entry, dir: seen.dir, letters: seen.letters, size: info.size, internalDate: info.mtime });
        continue;
      }
      if (seen.letters !== entry.letters) {
        flagged.push(entry.uid);
        entry.modseq = ++this.highestModseq;
      }
      entry.dir = seen.dir;
      entry.letters = seen.letters;
    }
    const fresh: Entry[] = [];
    for (const [base, seen] of found) {
      const info = await stat(join(this.path, seen.dir, seen.file));
      fresh.push({ uid: 0, base, dir: seen.dir, letters: seen.letters, keywords: [], size: info.size, internalDate: info.mtime, modseq: 0 });
    }
    fresh.sort((a, b) => a.internalDate.getTime() - b.internalDate.getTime() || (a.base < b.base ? -1 : 1));
    const added = fresh.map((entry) => {
      const uid = this.uidNext++;
      this.entries.set(entry.base, { ...entry, uid, modseq: ++this.highestModseq });
      return uid;
    });
    if (expunged.length > 0) this.highestModseq++;
    if (added.length > 0 || expunged.length > 0 || flagged.length > 0) await this.save();
    return { added, expunged, flagged };
  }

  /**
   * Stores a message the Maildir way: write to `tmp/`, fsync, rename into `new/` (or `cur/` when it has system
   * flags), fsync the directory, then record its UID.
   * @param source hard-link this existing file instead of writing `raw` (COPY); falls back to writing.
   */
  async add(
    raw: Buffer | undefined,
    flags: Iterable<string>,
    internalDate: Date,
    source?: { path: string; size: number },
    envelope?: DeliveryEnvelope,
  ): Promise<Entry> {
    const size = source?.size ?? raw!.length;
    const normalized = normalizeFlags(flags);
    const base = uniqueBaseName(size);
    const letters = lettersOfFlags(normalized);
    const entry: Entry = {
      uid: 0,
      base,
      dir: letters.length > 0 ? 'cur' : 'new',
      letters,
      keywords: normalized.filter(isKeyword),
      size,
      internalDate: new Date(internalDate.getTime()),
      modseq: 0,
      ...(envelope === undefined ? {} : { envelope }),
    };
    const target = join(this.path, entry.dir, fileName(entry));
    let linked = false;
    if (source !== undefined) {
      try {
        await link(source.path, target);
        linked = true;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new MailStoreError('NO_SUCH_MESSAGE', 'message vanished');
      }
    }
    if (!linked) {
      const data = raw ?? (await readFile(source!.path));
      const temporary = join(this.path, 'tmp', base);
      await writeNewFile(temporary, data, this.durable);
      await utimes(temporary, entry.internalDate, entry.internalDate);
      await rename(temporary, target);
    }
    if (this.durable) await fsyncDir(join(this.path, entry.dir));
    const stored = { ...entry, uid: this.uidNext++, modseq: ++this.highestModseq };
    this.entries.set(base, stored);
    await this.save();
    return stored;
  }

  /** Changes flags (renaming files for system flags, the state file for keywords); resolves updated entries and changed UIDs. */
  async setFlags(uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<{ entries: Entry[]; changed: number[] }> {
    const wanted = new Set(uids);
    const entries: Entry[] = [];
    const changed: number[] = [];
    for (const entry of this.list()) {
      if (!wanted.has(entry.uid)) continue;
      const next = [...applyFlags(this.flagsOf(entry), flags, mode)];
      const letters = lettersOfFlags(next, entry.letters);
      const keywords = next.filter(isKeyword);
      const lettersDiffer = letters !== entry.letters;
      const keywordsDiffer = keywords.join('\n') !== entry.keywords.join('\n');
      if (lettersDiffer) {
        const from = join(this.path, entry.dir, fileName(entry));
        const moved: Entry = { ...entry, dir: 'cur', letters };
        await rename(from, join(this.path, 'cur', fileName(moved)));
        entry.dir = 'cur';
        entry.letters = letters;
      }
      if (keywordsDiffer) {
        entry.keywords = keywords;
      }
      if (lettersDiffer || keywordsDiffer) {
        changed.push(entry.uid);
        entry.modseq = ++this.highestModseq;
      }
      entries.push(entry);
    }
    if (changed.length > 0) await this.save();
    return { entries, changed };
  }

  /** Moves `new/` files to `cur/` (a client has now seen them), as Maildir readers do. */
  async markCurrent(): Promise<void> {
    for (const entry of this.entries.values()) {
      if (entry.dir !== 'new') continue;
      await rename(join(this.path, 'new', entry.base), join(this.path, 'cur', entry.base + INFO_SEPARATOR));
      entry.dir = 'cur';
    }
  }

  /** Deletes the files of the given UIDs; resolves the UIDs removed, ascending. */
  async remove(uids: number[]): Promise<number[]> {
    const wanted = new Set(uids);
    const removed: number[] = [];
    for (const entry of this.list()) {
      if (!wanted.has(entry.uid)) continue;
      try {
        await unlink(join(this.path, entry.dir, fileName(entry)));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      this.entries.delete(entry.base);
      removed.push(entry.uid);
    }
    if (removed.length > 0) {
      this.highestModseq++;
      await this.save();
    }
    return removed;
  }

  /** Current path of a message file. */
  pathOf(entry: Entry): string {
    return join(this.path, entry.dir, fileName(entry));
  }

  /**
   * Reads a message by its base name, following concurrent renames.
   * @throws MailStoreError `NO_SUCH_MESSAGE` when it was expunged or its folder deleted.
   */
  async read(base: string): Promise<Buffer> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = this.entries.get(base);
      if (entry === undefined || this.deleted) break;
      try {
        return await readFile(this.pathOf(entry));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    throw new MailStoreError('NO_SUCH_MESSAGE', 'message no longer exists');
  }

  /** Follows a rename of the folder directory. */
  moveTo(path: string): void {
    this.path = path;
  }

  /** Marks the folder as deleted: snapshots can no longer be read. */
  markDeleted(): void {
    this.deleted = true;
    this.entries.clear();
  }

  private async save(): Promise<void> {
    const state: UidListFile = {
      version: 1,
      uidValidity: this.uidValidity,
      uidNext: this.uidNext,
      highestModseq: this.highestModseq,
      messages: this.list().map((e) => ({
        uid: e.uid,
        base: e.base,
        modseq: e.modseq,
        ...(e.keywords.length > 0 ? { keywords: e.keywords } : {}),
        ...(e.envelope === undefined ? {} : { envelope: e.envelope }),
      })),
    };
    await replaceFile(join(this.path, UIDLIST_FILE), JSON.stringify(state, null, 1) + '\n', this.durable);
  }
}
