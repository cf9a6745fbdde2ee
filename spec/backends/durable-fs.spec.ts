import { expect } from 'chai';
import { readlinkSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsyncDir, isErrno, replaceFile, writeNewFile } from '../../lib/backends/maildir/durable-fs.js';
import { fileHandlePrototype, openOn, openUnder } from '../support/open-files.js';

// Written against the mutants StrykerJS left alive in durable-fs.ts (README, "Scores (Stryker"); real files in a temp dir.
describe('durable-fs: create-only writes, atomic replacement, directory fsync', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-durable-fs-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const durable of [true, false]) {
    it(`writeNewFile (durable ${durable}) creates a private file and never overwrites one`, async () => {
      const path = join(dir, 'new');
      await writeNewFile(path, 'first', durable);
      expect(await readFile(path, 'utf8')).to.equal('first');
      expect((await stat(path)).mode & 0o777).to.equal(0o600);
      let code: unknown;
      await writeNewFile(path, 'second', durable).catch((err: unknown) => (code = (err as NodeJS.ErrnoException).code));
      expect(code).to.equal('EEXIST');
      expect(await readFile(path, 'utf8')).to.equal('first');
    });

    it(`replaceFile (durable ${durable}) replaces whole, leaves no temporary file, and survives concurrent callers`, async () => {
      const path = join(dir, 'state');
      await writeFile(path, 'old contents that are longer');
      await replaceFile(path, Buffer.from('new'), durable);
      expect(await readFile(path, 'utf8')).to.equal('new');
      expect((await stat(path)).mode & 0o777).to.equal(0o600);
      const texts = Array.from({ length: 8 }, (_, i) => `version ${i}`);
      await Promise.all(texts.map((text) => replaceFile(path, text, durable)));
      expect(texts).to.include(await readFile(path, 'utf8'));
      expect(await readdir(dir)).to.deep.equal(['state']);
    });
  }

  it('fsyncDir resolves for a directory, a file, and a path that does not exist', async () => {
    await writeFile(join(dir, 'f'), 'x');
    await fsyncDir(dir);
    await fsyncDir(join(dir, 'f'));
    await fsyncDir(join(dir, 'missing'));
    expect(await readdir(dir)).to.deep.equal(['f']);
  });

  it('isErrno matches only an object with that code', () => {
    expect(isErrno(Object.assign(new Error('x'), { code: 'ENOENT' }), 'ENOENT')).to.equal(true);
    expect(isErrno({ code: 'ENOENT' }, 'ENOENT')).to.equal(true);
    expect(isErrno({ code: 'EEXIST' }, 'ENOENT')).to.equal(false);
    expect(isErrno(new Error('ENOENT'), 'ENOENT')).to.equal(false);
    expect(isErrno(null, 'ENOENT')).to.equal(false);
    expect(isErrno(undefined, 'ENOENT')).to.equal(false);
    expect(isErrno('ENOENT', 'ENOENT')).to.equal(false);
  });

  describe('what is fsynced (a pass-through spy on FileHandle.prototype.sync)', () => {
    let proto: { sync(this: FileHandle): Promise<void> };
    let realSync: (this: FileHandle) => Promise<void>;
    /** Paths fsynced, relative to the temp dir ('.' for the dir itself), or the absolute path outside it. */
    let synced: string[];
    beforeEach(async () => {
      synced = [];
      proto = await fileHandlePrototype<typeof proto>();
      realSync = proto.sync;
      proto.sync = function (this: FileHandle) {
        const target = readlinkSync(`/proc/self/fd/${this.fd}`);
        synced.push(target === dir ? '.' : target.startsWith(dir + '/') ? target.slice(dir.length + 1).replace(/\.tmp-\d+-\d+$/, '.tmp') : target);
        return realSync.call(this);
      };
    });
    afterEach(() => {
      proto.sync = realSync;
    });
    /** Descriptors of this process open on something under the temp dir. */
    const openInDir = (): string[] => openUnder(dir);

    it('fsyncs the new file when durable, and the replaced file then its directory; nothing when not durable; no handle left open', async () => {
      await writeNewFile(join(dir, 'a'), 'x', true);
      expect(synced).to.deep.equal(['a']);
      synced = [];
      await replaceFile(join(dir, 'b'), 'y', true);
      expect(synced).to.deep.equal(['b.tmp', '.']);
      synced = [];
      await writeNewFile(join(dir, 'c'), 'x', false);
      await replaceFile(join(dir, 'd'), 'y', false);
      expect(synced).to.deep.equal([]);
      await fsyncDir(dir);
      expect(synced).to.deep.equal(['.']);
      expect(openInDir()).to.deep.equal([]);
    });

    it('fsyncDir swallows EINVAL (a file that cannot be fsynced, as directories on some file systems) and closes it', async () => {
      // fsync(2) of /dev/null fails with EINVAL, the answer of file systems without directory fsync.
      const before = openOn('/dev/null');
      await fsyncDir('/dev/null');
      expect(synced).to.deep.equal(['/dev/null']);
      const after = openOn('/dev/null');
      expect(after).to.equal(before);
    });
  });
});
