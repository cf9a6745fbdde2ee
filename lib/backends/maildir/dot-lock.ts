import { hostname } from 'node:os';
import { linkSync, unlinkSync } from 'node:fs';
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { isErrno } from './durable-fs.js';

/**
 * A lock older than this is stale even if its pid seems alive (pid reuse, another host on a shared file system).
 * Holders refresh the mtime of long-held locks (POP3 maildrops) well within it. Dovecot's dotlocks use the same
 * idea with a configurable stale timeout.
 */
export const STALE_LOCK_MS = 120_000;
/** How often a long-held lock file's mtime is touched so that it never looks stale while held. */
const TOUCH_INTERVAL_MS = 30_000;
/** Polling delays while waiting for a busy lock: start small (folder locks are held for milliseconds), cap at 50 ms. */
const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 50;
const HOST = hostname();
/** Lock files this process holds (several stores in one process, e.g. tests, must not break each other's locks). */
const heldHere = new Set<string>();
let tmpCounter = 0;
/** An empty lock file older than this is stale (only foreign tools create them empty; ours are written whole). */
const EMPTY_STALE_MS = 10_000;

/** Why {@link acquireDotLock} gave up. */
export class DotLockBusyError extends Error {
  override readonly name = 'DotLockBusyError';
  /** @param path the lock file. @param holder the text found in it (pid, host, owner). */
  constructor(
    readonly path: string,
    readonly holder: string,
  ) {
    super(`lock ${path} is held by ${holder}`);
  }
}

/** A held lock; `release()` is idempotent. */
export interface DotLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes a lock file the way Dovecot's dotlocks do: create `path` exclusively holding `pid host owner`; when it
 * exists, it is broken if its writer is gone (same host and the pid no longer runs, or the pid is our own but we
 * do not hold it, i.e. it survived a crash of an earlier process with our pid) or if its change time (ctime) is older than
 * {@link STALE_LOCK_MS}. Breaking renames the file aside first so that two breakers cannot both win.
 *
 * @param waitMs how long to keep retrying a live lock; 0 fails at once.
 * @param keepFresh touch the file every 30 s while held (for long-held locks).
 * @throws DotLockBusyError when a live holder keeps it past `waitMs`; file-system errors otherwise.
 */
export async function acquireDotLock(path: string, owner: string, waitMs: number, keepFresh = false): Promise<DotLock> {
  const deadline = Date.now() + waitMs;
  let delay = FIRST_RETRY_MS;
  const content = `${process.pid} ${HOST} ${owner.replace(/\s+/g, '_')}\n`;
  for (;;) {
    // Written whole under a private name, then hard-linked into place: link() fails with EEXIST if the lock exists,
    // and a holder killed at any moment leaves either no lock or a complete one (Dovecot's dotlocks do the same).
    // Short-held locks keep that private file (same content every time) for the next take: one link() per lock.
    const temporary = keepFresh ? await writeTemplate(path, content) : await templateFor(path, content);
    try {
      // A short-held lock is taken with a blocking link(): microseconds, where a thread-pool round trip queues
      // behind the fsyncs of everything else in flight (and the lock is held meanwhile).
      if (keepFresh) await link(temporary, path);
      else linkSync(temporary, path);
      heldHere.add(path);
      return heldLock(path, keepFresh);
    } catch (err) {
      if (isErrno(err, 'ENOENT') && !keepFresh) {
        // The kept file vanished (its directory was removed and made again, or a cleaner ran): write it anew.
        templates.delete(path);
        const retry = await templateFor(path, content);
        if (retry !== temporary) continue;
      }
      if (!isErrno(err, 'EEXIST')) throw err;
    } finally {
      if (keepFresh) await unlink(temporary).catch(() => undefined);
    }
    const holder = await breakIfStale(path);
    if (holder === undefined) continue;
    if (Date.now() >= deadline) throw new DotLockBusyError(path, holder);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, MAX_RETRY_MS);
  }
}

/** Kept private lock files of short-held locks, by lock path. */
const templates = new Map<string, { file: string; content: string }>();

async function writeTemplate(path: string, content: string): Promise<string> {
  const temporary = `${path}.tmp-${process.pid}-${++tmpCounter}`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
  return temporary;
}

async function templateFor(path: string, content: string): Promise<string> {
  const known = templates.get(path);
  if (known !== undefined && known.content === content) return known.file;
  if (known !== undefined) await unlink(known.file).catch(() => undefined);
  const file = await writeTemplate(path, content);
  templates.set(path, { file, content });
  return file;
}

/**
 * Removes the private file kept for taking the lock at `path` (when its directory is closed or about to be removed).
 * Idempotent; a later {@link acquireDotLock} writes a new one. Leftovers of a killed process carry its pid and are
 * removed by the next start-up cleaning.
 */
export async function dropLockTemplate(path: string): Promise<void> {
  const known = templates.get(path);
  if (known === undefined) return;
  templates.delete(path);
  await unlink(known.file).catch(() => undefined);
}

function heldLock(path: string, keepFresh: boolean): DotLock {
  let released = false;
  const timer = keepFresh
    ? setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => undefined);
      }, TOUCH_INTERVAL_MS)
    : undefined;
  timer?.unref();
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      heldHere.delete(path);
      if (timer !== undefined) clearInterval(timer);
      try {
        if (keepFresh) await unlink(path);
        else unlinkSync(path);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    },
  };
}

/** Resolves undefined when the lock was stale and is now gone (retry at once), else the holder's text. */
async function breakIfStale(path: string): Promise<string | undefined> {
  let text: string;
  let changedMs: number;
  try {
    text = await readFile(path, 'utf8');
    // The inode change time, not mtime: a lock linked into place from a kept file (see acquireDotLock) has the mtime of
    // that file, which can be hours old, while link() sets the ctime; a refresh with utimes sets both.
    const info = await stat(path);
    changedMs = Math.max(info.mtimeMs, info.ctimeMs);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const [pidText, host] = text.trim().split(' ');
  const pid = Number(pidText);
  // An empty file comes from another tool (ours are linked into place complete): only age breaks it.
  const writerGone = text.length > 0 && host === HOST && Number.isInteger(pid) && pid > 0 && !isRunning(pid, path);
  const tooOld = Date.now() - changedMs > (text.length === 0 ? EMPTY_STALE_MS : STALE_LOCK_MS);
  if (!writerGone && !tooOld) return text.trim() || 'an unknown holder';
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  // Another process may have broken the same stale lock and taken a fresh one between our read and our rename:
  // if what we moved aside is not what we judged, put it back (link fails if a third lock exists meanwhile).
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== text) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return undefined;
}

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
function isRunning(pid: number, path: string): boolean {
  // Our own pid: live only if we hold it; otherwise an earlier process with our pid left it behind.
  if (pid === process.pid) return heldHere.has(path);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}
