import { link, rename, unlink, type FileHandle } from 'node:fs/promises';

/**
 * The file-system steps of the Maildir store whose failure matters for crash safety, in one object so that specs can
 * inject faults (a rename that fails, a log append that stops half-way) without mocking `node:fs`. Production code
 * never replaces them; a spec that does restores them in `afterEach`.
 */
export const maildirFs = {
  rename,
  link,
  unlink,
  /** fdatasync of the log after an append (the fsync that makes a group's records durable). */
  datasync(handle: FileHandle): Promise<void> {
    return handle.datasync();
  },
  /** Writes all of `data` at `position` (a log append). */
  async writeAt(handle: FileHandle, data: Buffer, position: number): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
      written += bytesWritten;
    }
  },
};
