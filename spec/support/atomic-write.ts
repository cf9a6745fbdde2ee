/** Writes a file the way deployment tools and ACME clients do: a temporary file in the same directory, then rename. */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces or creates `file` atomically, so a watcher never reads it half-written. The temporary name starts with a
 * dot, which CertificateStore skips.
 */
export async function atomicWrite(file: string, data: string | Buffer): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(temp, data);
  await rename(temp, file);
}
