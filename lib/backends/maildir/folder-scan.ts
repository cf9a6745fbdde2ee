import { statSync } from 'node:fs';
import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MailStoreError, type DeliveryEnvelope } from '../../contracts/mail-store.js';
import { isErrno } from './durable-fs.js';
import { FOLDER_LOG_FILE, fileNameOf, type Entry, type FolderChanges, type FolderState, type LogRecord } from './folder-state.js';
import { parseFileName } from './maildir-names.js';

/** v0.1's whole-file state (JSON), migrated to the log on open and then removed. */
export const UIDLIST_FILE = 'postern-uidlist';
/** Files in `tmp/` older than this are abandoned whoever wrote them (the Maildir spec says 36 hours). */
const TMP_MAX_AGE_MS = 36 * 3600_000;

/** A file found in `new/` or `cur/`. */
export interface FoundFile {
  readonly dir: 'new' | 'cur';
  readonly letters: string;
  readonly file: string;
}

/** The mtimes (ns, as decimal strings) of `new/` and `cur/`, and the later of the two in ms. */
export interface DirStamp {
  readonly n: string;
  readonly c: string;
}

/** Stats `new/` and `cur/`. @throws MailStoreError `NO_SUCH_MAILBOX` when the folder is gone. */
export async function stampDirs(path: string): Promise<DirStamp> {
  try {
    const [n, c] = await Promise.all([stat(join(path, 'new'), { bigint: true }), stat(join(path, 'cur'), { bigint: true })]);
    return { n: n.mtimeNs.toString(), c: c.mtimeNs.toString() };
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new MailStoreError('NO_SUCH_MAILBOX', 'mailbox vanished');
    throw err;
  }
}

/**
 * {@link stampDirs} with two blocking `stat`s: microseconds from the inode cache, for the check a refresh makes before
 * anything else (Dovecot's quick check stats the directories the same way). @throws like {@link stampDirs}.
 */
export function stampDirsSync(path: string): DirStamp {
  try {
    const n = statSync(join(path, 'new'), { bigint: true });
    const c = statSync(join(path, 'cur'), { bigint: true });
    return { n: n.mtimeNs.toString(), c: c.mtimeNs.toString() };
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new MailStoreError('NO_SUCH_MAILBOX', 'mailbox vanished');
    throw err;
  }
}

/** The later mtime of a stamp in ms. */
export function stampMs(stamp: DirStamp): number {
  return Number((BigInt(stamp.n) > BigInt(stamp.c) ? BigInt(stamp.n) : BigInt(stamp.c)) / 1_000_000n);
}

/** Lists `new/` then `cur/` (in that order, so a file moved meanwhile is seen at least once; `cur/` wins). */
export async function listMessageFiles(path: string): Promise<Map<string, FoundFile>> {
  const found = new Map<string, FoundFile>();
  for (const dir of ['new', 'cur'] as const) {
    let files: string[];
    try {
      files = await readdir(join(path, dir));
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
  return found;
}

/**
 * Compares the state with the directories and builds the records that bring the log in line: `x` for files gone,
 * `f`/`c` for files renamed by other tools, `a` for new files (UIDs in (mtime, name) order, as v0.1 did).
 * A message seen missing is looked for once more, so that a rename by another tool between the two `readdir`s is
 * not taken for an expunge. Records are built against `state` but not applied.
 */
export async function diffWithDirs(path: string, state: FolderState): Promise<LogRecord[]> {
  const found = await listMessageFiles(path);
  const missing = (): Entry[] => state.list().filter((entry) => !found.has(entry.base));
  if (missing().length > 0) {
    const again = await listMessageFiles(path);
    for (const [base, file] of again) if (!found.has(base)) found.set(base, file);
  }
  const records: LogRecord[] = [];
  const gone: number[] = [];
  for (const entry of state.list()) {
    const seen = found.get(entry.base);
    if (seen === undefined) {
      gone.push(entry.uid);
      continue;
    }
    found.delete(entry.base);
    if (seen.dir === 'cur' && seen.letters !== entry.letters) {
      records.push({ t: 'f', u: entry.uid, m: state.allocateModseq(), l: seen.letters, ...(entry.keywords.length > 0 ? { k: [...entry.keywords] } : {}) });
    } else if (seen.dir === 'cur' && entry.dir === 'new') {
      records.push({ t: 'c', u: [entry.uid] });
    }
  }
  if (gone.length > 0) records.push({ t: 'x', u: gone, m: state.allocateModseq() });
  const fresh: Array<{ base: string; seen: FoundFile; size: number; date: number }> = [];
  for (const [base, seen] of found) {
    try {
      const info = await stat(join(path, seen.dir, seen.file));
      fresh.push({ base, seen, size: info.size, date: Math.floor(info.mtimeMs) });
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err; // gone again before we looked: nothing to adopt
    }
  }
  fresh.sort((a, b) => a.date - b.date || (a.base < b.base ? -1 : 1));
  for (const { base, seen, size, date } of fresh) {
    records.push({
      t: 'a',
      u: state.allocateUid(),
      m: state.allocateModseq(),
      b: base,
      d: date,
      s: size,
      ...(seen.dir === 'new' ? { n: 1 as const } : { l: seen.letters }),
    });
  }
  return records;
}

/**
 * Records for a v0.1 `postern-uidlist` (JSON: uidValidity, uidNext, messages with uid, base, keywords), so that an
 * old root keeps its UIDVALIDITY and UIDs. Messages whose file is gone are dropped; size and date come from the file.
 * Resolves undefined when there is no such file (or it does not parse).
 */
export async function migrateUidList(path: string): Promise<LogRecord[] | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(join(path, UIDLIST_FILE), 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
    throw err;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const old = parsed as { uidValidity?: unknown; uidNext?: unknown; highestModseq?: unknown; messages?: unknown };
  if (typeof old.uidValidity !== 'number' || typeof old.uidNext !== 'number' || !Array.isArray(old.messages)) return undefined;
  const found = await listMessageFiles(path);
  const records: LogRecord[] = [];
  // Files written before MODSEQ support have none: every message then counts as modseq 1.
  let highest = typeof old.highestModseq === 'number' ? old.highestModseq : 0;
  for (const item of old.messages as Array<{ uid?: unknown; base?: unknown; keywords?: unknown; modseq?: unknown; envelope?: unknown }>) {
    if (typeof item.uid !== 'number' || typeof item.base !== 'string') continue;
    const seen = found.get(item.base);
    if (seen === undefined) continue;
    let info;
    try {
      info = await stat(join(path, seen.dir, seen.file));
    } catch {
      continue;
    }
    const keywords = Array.isArray(item.keywords) ? item.keywords.filter((k): k is string => typeof k === 'string') : [];
    const modseq = typeof item.modseq === 'number' && item.modseq > 0 ? item.modseq : 1;
    highest = Math.max(highest, modseq);
    const envelope = typeof item.envelope === 'object' && item.envelope !== null ? (item.envelope as DeliveryEnvelope) : undefined;
    records.push({
      t: 'a',
      u: item.uid,
      m: modseq,
      b: item.base,
      d: Math.floor(info.mtimeMs),
      s: info.size,
      ...(seen.dir === 'new' ? { n: 1 as const } : { l: seen.letters }),
      ...(keywords.length > 0 ? { k: keywords } : {}),
      ...(envelope === undefined ? {} : { e: envelope }),
    });
  }
  records.sort((a, b) => (a.t === 'a' && b.t === 'a' ? a.u - b.u : 0));
  return [{ t: 'h', v: 2, uv: old.uidValidity, un: old.uidNext, hm: highest }, ...records];
}

/**
 * Start-up cleaning: files in `tmp/` and temporary state files (`*.tmp-<pid>-<n>`, `*.stale-…`) left by a process
 * that no longer runs (or older than 36 hours) are removed. Files of live processes, ours included, stay.
 */
export async function removeLeftovers(path: string): Promise<void> {
  const now = Date.now();
  const dead = (pid: number): boolean => {
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return !isErrno(err, 'EPERM');
    }
  };
  const sweep = async (dir: string, pidOf: (file: string) => number | undefined): Promise<void> => {
    let files: string[];
    try {
      files = await readdir(dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const file of files) {
      const pid = pidOf(file);
      if (pid === undefined) continue;
      let old = false;
      if (!dead(pid)) {
        const info = await stat(join(dir, file)).catch(() => undefined);
        old = info !== undefined && now - info.mtimeMs > TMP_MAX_AGE_MS;
      }
      if (dead(pid) || old) await unlink(join(dir, file)).catch(() => undefined);
    }
  };
  // tmp/: our names carry P<pid>; a foreign name without a pid is only removed by age.
  await sweep(join(path, 'tmp'), (file) => {
    const match = /\.M\d+P(\d+)/.exec(file) ?? /^\d+\.(\d+)_/.exec(file);
    return match === null ? -1 : Number(match[1]);
  });
  await sweep(path, (file) => {
    const match = /\.(?:tmp|stale)-(\d+)-\d+$/.exec(file);
    return match === null ? undefined : Number(match[1]);
  });
}

/** The log path of a folder. */
export function logPathOf(path: string): string {
  return join(path, FOLDER_LOG_FILE);
}

/** Current path of a message file. */
export function messagePath(path: string, entry: Pick<Entry, 'base' | 'dir' | 'letters'>): string {
  return join(path, entry.dir, fileNameOf(entry));
}

/** Merges change lists (for one notification). */
export function mergeChanges(into: FolderChanges, more: FolderChanges): void {
  into.added.push(...more.added);
  into.expunged.push(...more.expunged);
  into.flagged.push(...more.flagged);
}
