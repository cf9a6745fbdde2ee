import { expect } from 'chai';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maildirFs } from '../../lib/backends/maildir/maildir-fs.js';

// Written against the mutants StrykerJS left alive in maildir-fs.ts (README, "Scores (Stryker"); a real file.
describe('maildirFs.writeAt: a log append that the kernel takes in pieces', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-maildir-fs-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes all of the data at the position even when each write takes at most 3 octets', async () => {
    const path = join(dir, 'log');
    const handle = await open(path, 'w+');
    try {
      await handle.write('0123456789');
      const calls: Array<[number, number]> = [];
      // A real file handle whose write() stops short, as write(2) may on a full pipe or a signal.
      const short = {
        write: (buffer: Buffer, offset: number, length: number, position: number) => {
          calls.push([length, position]);
          return handle.write(buffer, offset, Math.min(length, 3), position);
        },
      } as unknown as FileHandle;
      await maildirFs.writeAt(short, Buffer.from('abcdefgh'), 4);
      expect(calls).to.deep.equal([
        [8, 4],
        [5, 7],
        [2, 10],
      ]);
    } finally {
      await handle.close();
    }
    expect(await readFile(path, 'utf8')).to.equal('0123abcdefgh');
  });
});
