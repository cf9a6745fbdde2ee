/**
 * The Maildir folder scan against real directories (issue 16, survivors of its mutation run): the listing of `new/` and
 * `cur/`, the records `diffWithDirs` builds for files other tools moved, renamed, removed or added (including a rename
 * between the two listings, made by hooking `readdir` to move a real file at that point), the migration of a v0.1
 * `postern-uidlist`, and the start-up removal of leftover temporary files by owner pid and age.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UIDLIST_FILE, diffWithDirs, listMessageFiles, migrateUidList, removeLeftovers } from '../../lib/backends/maildir/folder-scan.js';
import { FolderState } from '../../lib/backends/maildir/folder-state.js';

/** A pid no process can have (above Linux's largest `pid_max`). */
const DEAD_PID = 4_194_399;

describe('Maildir folder scan against real directories (mutation testing)', () => {
  let dir: string;
  const realReaddir = fs.promises.readdir;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-folder-diff-'));
    await mkdir(join(dir, 'new'));
    await mkdir(join(dir, 'cur'));
    await mkdir(join(dir, 'tmp'));
  });
  afterEach(async () => {
    fs.promises.readdir = realReaddir;
    syncBuiltinESMExports();
    await rm(dir, { recursive: true, force: true });
  });

  /** Calls `before(path, n)` before the n-th (from 1) `readdir` of the folder scan runs. */
  function hookReaddir(before: (path: string, n: number) => Promise<void>): { calls: string[] } {
    const calls: string[] = [];
    fs.promises.readdir = (async (path: string, ...rest: unknown[]) => {
      calls.push(String(path).slice(dir.length + 1));
      await before(String(path), calls.length);
      return (realReaddir as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
    }) as typeof fs.promises.readdir;
    syncBuiltinESMExports();
    return { calls };
  }

  /** Writes a message file with the given mtime (seconds). */
  async function file(sub: string, name: string, body: string, mtime = 1000): Promise<void> {
    await writeFile(join(dir, sub, name), body);
    await utimes(join(dir, sub, name), mtime, mtime);
  }

  /** A state with messages (uid, base, in new/ or with letters in cur/, keywords), modseq 10, UIDNEXT 20. */
  function stateOf(...entries: Array<[number, string, string | undefined, string[]?]>): FolderState {
    const state = new FolderState();
    state.apply({ t: 'h', v: 2, uv: 7, un: 20, hm: 10 });
    for (const [u, b, letters, k] of entries) {
      state.apply({ t: 'a', u, m: 5, b, d: 1, s: 1, ...(letters === undefined ? { n: 1 as const } : { l: letters }), ...(k ? { k } : {}) });
    }
    return state;
  }

  it('lists new/ then cur/ without dot files; cur/ wins, and a name in new/ has no letters', async () => {
    await file('new', 'a1', 'x');
    await file('new', 'a2:2,S', 'x');
    await file('new', 'dup', 'x');
    await file('new', '.hidden', 'x');
    await file('cur', 'b1:2,FS', 'x');
    await file('cur', 'dup:2,R', 'x');
    await file('cur', '.hidden:2,S', 'x');
    const found = await listMessageFiles(dir);
    expect(Object.fromEntries([...found].sort(([a], [b]) => (a < b ? -1 : 1)))).to.deep.equal({
      a1: { dir: 'new', letters: '', file: 'a1' },
      a2: { dir: 'new', letters: '', file: 'a2:2,S' },
      b1: { dir: 'cur', letters: 'FS', file: 'b1:2,FS' },
      dup: { dir: 'cur', letters: 'R', file: 'dup:2,R' },
    });
  });

  it('answers NO_SUCH_MAILBOX when cur/ is gone and passes other listing errors on', async () => {
    await rm(join(dir, 'cur'), { recursive: true });
    const error = await listMessageFiles(dir).catch((e: Error & { code?: string }) => `${e.name} ${e.code} ${e.message}`);
    expect(error).to.equal('MailStoreError NO_SUCH_MAILBOX mailbox vanished');
    await writeFile(join(dir, 'cur'), '');
    const other = await listMessageFiles(dir).catch((e: Error & { code?: string }) => `${e.name} ${e.code}`);
    expect(other).to.equal('Error ENOTDIR');
  });

  it('builds f, c and x records for files other tools renamed, moved and removed, in UID order', async () => {
    await file('cur', 'm1:2,S', 'x'); // was new/: now seen and flagged
    await file('cur', 'm2:2,', 'x'); // was new/: moved unchanged
    await file('cur', 'm4:2,FS', 'x'); // was S with keywords: flag changed, keywords kept
    await file('cur', 'm5:2,S', 'x'); // unchanged
    await file('new', 'm6', 'x'); // unchanged, still new
    const state = stateOf([1, 'm1', undefined], [2, 'm2', undefined], [3, 'm3', 'S'], [4, 'm4', 'S', ['$Work', 'Later']], [5, 'm5', 'S'], [6, 'm6', undefined], [7, 'm7', '']);
    const records = await diffWithDirs(dir, state);
    expect(records).to.deep.equal([
      { t: 'f', u: 1, m: 11, l: 'S' },
      { t: 'c', u: [2] },
      { t: 'f', u: 4, m: 12, l: 'FS', k: ['$Work', 'Later'] },
      { t: 'x', u: [3, 7], m: 13 },
    ]);
    expect(state.highestModseq).to.equal(13);
    expect(state.uidNext).to.equal(20);
  });

  it('adds new files by (mtime, name) with their size and whole-ms date, n: 1 in new/ and the letters in cur/', async () => {
    await file('new', 'zeta', 'three', 3000.0045);
    await file('cur', 'beta:2,RS', 'four', 2000);
    await file('new', 'alpha', 'four!', 2000);
    await file('cur', 'omega:2,', '', 1000);
    const state = stateOf();
    expect(await diffWithDirs(dir, state)).to.deep.equal([
      { t: 'a', u: 20, m: 11, b: 'omega', d: 1_000_000, s: 0, l: '' },
      { t: 'a', u: 21, m: 12, b: 'alpha', d: 2_000_000, s: 5, n: 1 },
      { t: 'a', u: 22, m: 13, b: 'beta', d: 2_000_000, s: 4, l: 'RS' },
      { t: 'a', u: 23, m: 14, b: 'zeta', d: 3_000_004, s: 5, n: 1 },
    ]);
  });

  it('orders new files of the same mtime by name, whatever directory and listing order they come in', async () => {
    await file('new', 'm-c', 'x', 2000);
    await file('new', 'm-b', 'x', 2000);
    await file('cur', 'm-a:2,', 'x', 2000);
    await file('cur', 'm-d:2,S', 'x', 2000);
    await file('new', 'm-e', 'x', 2000);
    const records = await diffWithDirs(dir, stateOf());
    expect(records.map((r) => (r.t === 'a' ? `${r.u} ${r.b}` : r.t))).to.deep.equal(['20 m-a', '21 m-b', '22 m-c', '23 m-d', '24 m-e']);
  });

  it('passes on a stat error other than ENOENT for a new file (a symlink loop in new/)', async () => {
    await symlink(join(dir, 'new', 'loop'), join(dir, 'new', 'loop'));
    const error = await diffWithDirs(dir, stateOf()).catch((e: Error & { code?: string }) => `${e.name} ${e.code}`);
    expect(error).to.equal('Error ELOOP');
  });

  it('skips a new file removed between the listing and its stat', async () => {
    await file('new', 'keep', 'x', 1000);
    await file('new', 'short-lived', 'x', 1000);
    // The listing of cur/ is the last one before the stats: remove the file just after new/ was listed.
    hookReaddir(async (path) => {
      if (path.endsWith('cur')) await unlink(join(dir, 'new', 'short-lived'));
    });
    expect(await diffWithDirs(dir, stateOf())).to.deep.equal([{ t: 'a', u: 20, m: 11, b: 'keep', d: 1_000_000, s: 1, n: 1 }]);
  });

  it('lists each directory once when nothing is missing', async () => {
    await file('cur', 'm1:2,S', 'x');
    const { calls } = hookReaddir(async () => undefined);
    expect(await diffWithDirs(dir, stateOf([1, 'm1', 'S']))).to.deep.equal([]);
    expect(calls).to.deep.equal(['new', 'cur']);
  });

  it('looks again for a message missing from the first listing (moved cur/ → new/ meanwhile), and keeps what it saw first', async () => {
    await file('cur', 'moved:2,S', 'x');
    await file('cur', 'other:2,', 'x');
    const { calls } = hookReaddir(async (_path, n) => {
      // First listing: 'moved' goes from cur/ to new/ after new/ was read, so that listing misses it.
      if (n === 2) await rename(join(dir, 'cur', 'moved:2,S'), join(dir, 'new', 'moved'));
      // Second listing: 'other' gets a flag; the first listing's name stays the one used.
      if (n === 4) await rename(join(dir, 'cur', 'other:2,'), join(dir, 'cur', 'other:2,S'));
    });
    const records = await diffWithDirs(dir, stateOf([1, 'moved', 'S'], [2, 'other', '']));
    expect(calls).to.deep.equal(['new', 'cur', 'new', 'cur']);
    expect(records).to.deep.equal([]);
  });

  describe('migrating a v0.1 postern-uidlist', () => {
    const uidlist = (value: unknown): Promise<void> => writeFile(join(dir, UIDLIST_FILE), typeof value === 'string' ? value : JSON.stringify(value));

    it('resolves undefined without a file, for bad JSON and for JSON of another shape', async () => {
      expect(await migrateUidList(dir)).to.equal(undefined);
      const shapes: unknown[] = [
        '{"uidValidity": 1,',
        'null',
        '7',
        '"text"',
        { uidNext: 2, messages: [] },
        { uidValidity: '1', uidNext: 2, messages: [] },
        { uidValidity: 1, messages: [] },
        { uidValidity: 1, uidNext: '2', messages: [] },
        { uidValidity: 1, uidNext: 2 },
        { uidValidity: 1, uidNext: 2, messages: { length: 0 } },
      ];
      for (const shape of shapes) {
        await uidlist(shape);
        expect(await migrateUidList(dir), JSON.stringify(shape)).to.equal(undefined);
      }
    });

    it('passes on a read error other than a missing file', async () => {
      await mkdir(join(dir, UIDLIST_FILE));
      const error = await migrateUidList(dir).catch((e: Error & { code?: string }) => `${e.name} ${e.code}`);
      expect(error).to.equal('Error EISDIR');
    });

    it('keeps UIDVALIDITY, UIDNEXT and each message whose file is there, in UID order, with size and date from the file', async () => {
      await file('cur', 'c1:2,FS', 'seven!!', 4000.0019);
      await file('new', 'n1', 'abc', 5000);
      await file('cur', 'c2:2,', '', 6000);
      await file('cur', 'c3:2,T', 'xy', 7000);
      await symlink(join(dir, 'cur', 'loop:2,S'), join(dir, 'cur', 'loop:2,S'));
      const envelope = { mailFrom: 'a@example.org', rcptTo: ['b@example.org'] };
      await uidlist({
        uidValidity: 4242,
        uidNext: 90,
        highestModseq: 30,
        messages: [
          { uid: 9, base: 'c3', keywords: [], modseq: 0 },
          { uid: 8, base: 'c2', keywords: 'Later', modseq: -4, envelope: null },
          { uid: 7, base: 'n1', modseq: 'x', envelope: 'text' },
          { uid: 5, base: 'c1', keywords: ['$Work', 3, 'Later'], modseq: 12, envelope },
          { uid: '6', base: 'c2' },
          { uid: 6 },
          { uid: 4, base: 'gone' },
          { uid: 3, base: 'loop' },
        ],
      });
      expect(await migrateUidList(dir)).to.deep.equal([
        { t: 'h', v: 2, uv: 4242, un: 90, hm: 30 },
        { t: 'a', u: 5, m: 12, b: 'c1', d: 4_000_001, s: 7, l: 'FS', k: ['$Work', 'Later'], e: envelope },
        { t: 'a', u: 7, m: 1, b: 'n1', d: 5_000_000, s: 3, n: 1 },
        { t: 'a', u: 8, m: 1, b: 'c2', d: 6_000_000, s: 0, l: '' },
        { t: 'a', u: 9, m: 1, b: 'c3', d: 7_000_000, s: 2, l: 'T' },
      ]);
    });

    it('takes HIGHESTMODSEQ from the messages when the file has a lower one or none (1 for messages without)', async () => {
      await file('new', 'n1', 'abc', 5000);
      await file('new', 'n2', 'abc', 5000);
      await uidlist({ uidValidity: 1, uidNext: 3, highestModseq: 2, messages: [{ uid: 1, base: 'n1', modseq: 7 }, { uid: 2, base: 'n2', modseq: 3 }] });
      expect((await migrateUidList(dir))?.[0]).to.deep.equal({ t: 'h', v: 2, uv: 1, un: 3, hm: 7 });
      await uidlist({ uidValidity: 1, uidNext: 3, highestModseq: '9', messages: [{ uid: 1, base: 'n1' }] });
      expect((await migrateUidList(dir))?.[0]).to.deep.equal({ t: 'h', v: 2, uv: 1, un: 3, hm: 1 });
      await uidlist({ uidValidity: 1, uidNext: 3, messages: [] });
      expect(await migrateUidList(dir)).to.deep.equal([{ t: 'h', v: 2, uv: 1, un: 3, hm: 0 }]);
    });
  });

  describe('removing leftovers at start-up', () => {
    const hour = 3600;
    const nowS = (): number => Date.now() / 1000;

    /** The files left in tmp/ and in the folder itself (sorted). */
    async function left(): Promise<{ tmp: string[]; folder: string[] }> {
      return {
        tmp: (await readdir(join(dir, 'tmp'))).sort(),
        folder: (await readdir(dir)).filter((f) => !['new', 'cur', 'tmp'].includes(f)).sort(),
      };
    }

    it("removes tmp/ files of dead processes, keeps live processes' files (ours too) until 36 hours, and foreign names by age only", async () => {
      const young = nowS() - 35.9 * hour;
      const old = nowS() - 36.1 * hour;
      const me = process.pid;
      const parent = process.ppid;
      await file('tmp', `1700000000.M1P${DEAD_PID}.host`, 'x', young);
      await file('tmp', `1700000000.M123456P${DEAD_PID}.host`, 'x', young);
      await file('tmp', `1700000000.${DEAD_PID}_1.host`, 'x', young);
      await file('tmp', `1700000000.M1P${me}.host`, 'x', young);
      await file('tmp', `1700000000.${me}_2.host`, 'x', old);
      await file('tmp', `1700000000.M2P${parent}.host`, 'x', young);
      await file('tmp', `1700000000.M3P${parent}.host`, 'x', old);
      await file('tmp', `1700000000.M4P0.host`, 'x', young);
      await file('tmp', `1700000000.M5P0.host`, 'x', old);
      await file('tmp', 'foreign-young', 'x', young);
      await file('tmp', 'foreign-old', 'x', old);
      await file('tmp', `x1700000000.${DEAD_PID}_3.host`, 'x', young);
      await file('tmp', `1700000000.MP${DEAD_PID}.host`, 'x', young);
      await removeLeftovers(dir);
      expect((await left()).tmp).to.deep.equal(
        [`1700000000.M1P${me}.host`, `1700000000.M2P${parent}.host`, '1700000000.M4P0.host', 'foreign-young', `x1700000000.${DEAD_PID}_3.host`, `1700000000.MP${DEAD_PID}.host`].sort(),
      );
    });

    it("keeps a live process's tmp/ file exactly 36 hours old and removes it one millisecond later (Date.now held)", async () => {
      const realNow = Date.now;
      const t = Math.floor(realNow() / 1000) * 1000; // a whole second: the file's mtime is then exact to the millisecond
      await file('tmp', `1700000000.M1P${process.ppid}.host`, 'x', t / 1000 - 36 * hour);
      try {
        Date.now = () => t;
        await removeLeftovers(dir);
        expect((await left()).tmp).to.deep.equal([`1700000000.M1P${process.ppid}.host`]);
        Date.now = () => t + 1;
        await removeLeftovers(dir);
        expect((await left()).tmp).to.deep.equal([]);
      } finally {
        Date.now = realNow;
      }
    });

    it('removes temporary state files of dead processes and old ones, and nothing else in the folder', async () => {
      const old = nowS() - 37 * hour;
      const young = nowS();
      await file('', `postern-log.tmp-${DEAD_PID}-3`, 'x', young);
      await file('', `postern-cache.stale-${DEAD_PID}-1`, 'x', young);
      await file('', `postern-cache.tmp-${DEAD_PID}-1234`, 'x', young);
      await file('', `postern-log.tmp-${process.pid}-1`, 'x', old);
      await file('', `postern-log.tmp-${process.ppid}-1`, 'x', old);
      await file('', `postern-log.tmp-${process.pid}-2`, 'x', young);
      await file('', `postern-log.tmp-${process.ppid}-2`, 'x', young);
      await file('', `postern-log.tmp-${DEAD_PID}-1.keep`, 'x', young);
      await file('', `postern-log.tmp-${DEAD_PID}-`, 'x', young);
      await file('', `postern-log.old-${DEAD_PID}-1`, 'x', young);
      await file('', 'postern-log', 'x', old);
      await removeLeftovers(dir);
      expect((await left()).folder).to.deep.equal(
        ['postern-log', `postern-log.old-${DEAD_PID}-1`, `postern-log.tmp-${DEAD_PID}-`, `postern-log.tmp-${DEAD_PID}-1.keep`, `postern-log.tmp-${process.pid}-2`, `postern-log.tmp-${process.ppid}-2`].sort(),
      );
    });

    it('does without a tmp/ directory and passes on other listing errors', async () => {
      await rm(join(dir, 'tmp'), { recursive: true });
      await file('', `postern-log.tmp-${DEAD_PID}-3`, 'x');
      await removeLeftovers(dir);
      expect((await readdir(dir)).sort()).to.deep.equal(['cur', 'new']);
      await writeFile(join(dir, 'tmp'), '');
      const error = await removeLeftovers(dir).catch((e: Error & { code?: string }) => `${e.name} ${e.code}`);
      expect(error).to.equal('Error ENOTDIR');
    });
  });
});
