/**
 * The Maildir folder scan's small helpers (issue 16, uncovered in its mutation run): the directory stamps of a folder
 * that vanished or is not a directory, errors passed on as they are, the later mtime of a stamp, and merged change lists.
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeChanges, stampDirs, stampDirsSync, stampMs } from '../../lib/backends/maildir/folder-scan.js';
import { noChanges } from '../../lib/backends/maildir/folder-state.js';

describe('Maildir folder scan helpers (mutation testing)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-folder-scan-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** What a stamp call threw, as `name code message`. */
  async function thrown(f: () => unknown): Promise<string> {
    try {
      await f();
    } catch (err) {
      const e = err as Error & { code?: string };
      return `${e.name} ${e.code} ${e.message}`;
    }
    return 'nothing';
  }

  it('stamps new/ and cur/ in nanoseconds, the same way with and without blocking calls', async () => {
    await mkdir(join(dir, 'new'));
    await mkdir(join(dir, 'cur'));
    await utimes(join(dir, 'new'), 1000, 1000);
    await utimes(join(dir, 'cur'), 2000, 2000);
    await utimes(dir, 3000, 3000);
    const stamp = { n: '1000000000000', c: '2000000000000' };
    expect(await stampDirs(dir)).to.deep.equal(stamp);
    expect(stampDirsSync(dir)).to.deep.equal(stamp);
  });

  it('answers NO_SUCH_MAILBOX for a folder that is gone or not a directory, and passes other errors on', async () => {
    const vanished = 'MailStoreError NO_SUCH_MAILBOX mailbox vanished';
    expect(await thrown(() => stampDirs(join(dir, 'gone')))).to.equal(vanished);
    expect(await thrown(() => stampDirsSync(join(dir, 'gone')))).to.equal(vanished);
    await writeFile(join(dir, 'file'), '');
    expect(await thrown(() => stampDirs(join(dir, 'file')))).to.equal(vanished);
    expect(await thrown(() => stampDirsSync(join(dir, 'file')))).to.equal(vanished);
    // A path component that loops is neither: the file system's error as it is.
    await symlink(join(dir, 'loop'), join(dir, 'loop'));
    expect(await thrown(() => stampDirs(join(dir, 'loop')))).to.match(/^Error ELOOP /);
    expect(await thrown(() => stampDirsSync(join(dir, 'loop')))).to.match(/^Error ELOOP /);
  });

  it('takes the later of the two mtimes, in ms', () => {
    expect(stampMs({ n: '5000000000', c: '3999999' })).to.equal(5000);
    expect(stampMs({ n: '3999999', c: '7000000001' })).to.equal(7000);
  });

  it('merges change lists', () => {
    const into = { added: [1], expunged: [2], flagged: [3] };
    mergeChanges(into, { added: [4], expunged: [5, 6], flagged: [] });
    mergeChanges(into, noChanges());
    expect(into).to.deep.equal({ added: [1, 4], expunged: [2, 5, 6], flagged: [3] });
  });
});
