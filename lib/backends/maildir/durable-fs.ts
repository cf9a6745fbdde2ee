import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

let tmpCounter = 0;

/** Flushes a directory's entries (a rename or create in it) to disk. Best effort where directories cannot be opened. */
export async function fsyncDir(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch (err) {
    // EINVAL/EISDIR: platforms or file systems without directory fsync; nothing more can be done there.
    if (!isErrno(err, 'EINVAL') && !isErrno(err, 'EISDIR') && !isErrno(err, 'EPERM')) throw err;
  } finally {
    await handle.close();
  }
}

/** Creates `path` (it must not exist) with `data`, fsyncing the file when `durable`. */
export async function writeNewFile(path: string, data: Buffer | string, durable: boolean): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    if (durable) await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Atomically replaces `path` with `data` (write a sibling temporary file, fsync, rename, fsync the directory). */
export async function replaceFile(path: string, data: Buffer | string, durable: boolean): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}-${++tmpCounter}`;
  await writeNewFile(temporary, data, durable);
  await rename(temporary, path);
  if (durable) await fsyncDir(dirname(path));
}

/** True when `err` is a Node system error with the given code. */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && (err as { code: unknown }).code === code;
}
