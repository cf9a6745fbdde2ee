import { hostname } from 'node:os';
import { closeSync, linkSync, openSync, unlinkSync, writeSync } from 'node:fs';
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
 * do not hold it, i.e. it survived a crash of an earlier process with our pid) or if its mtime is older than
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
    const temporary = `${path}.tmp-${process.pid}-${++tmpCounter}`;
    if (!(keepFresh ? await linkInPlace(temporary, path, content) : linkInPlaceSync(temporary, path, content))) {
      const holder = await breakIfStale(path);
      if (holder === undefined) continue;
      if (Date.now() >= deadline) throw new DotLockBusyError(path, holder);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, MAX_RETRY_MS);
      continue;
    }
    heldHere.add(path);
    return heldLock(path, keepFresh);
  }
}

/** One attempt: write `temporary`, link it to `path`, remove it. False when `path` exists. */
async function linkInPlace(temporary: string, path: string, content: string): Promise<boolean> {
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, path);
    return true;
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    return false;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/**
 * {@link linkInPlace} with blocking calls, for short-held locks (the folder lock): five syscalls into the page cache
 * cost microseconds, where each thread-pool round trip would queue behind the fsyncs of everything else in flight.
 */
function linkInPlaceSync(temporary: string, path: string, content: string): boolean {
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
    return true;
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    return false;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // already gone: nothing to clean
    }
  }
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
    changedMs = (await stat(path)).mtimeMs;
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
