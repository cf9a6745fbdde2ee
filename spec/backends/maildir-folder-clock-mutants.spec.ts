/**
 * One Maildir folder on real directories, the parts that depend on time (issue 16, survivors of `maildir-folder.ts`'s
 * mutation runs that stop 21 left as "timing-only"): the confirming scan's rate limit (`Date.now` is replaced by a
 * test clock while a case runs, so no case waits), the scan bookkeeping and its `s` record, the 1 s poll and fs.watch
 * of a watched folder (the poll interval is held by `heldIntervals` and fired by the test), a commit queued before
 * the folder was deleted, and the file handles a folder keeps open until `idle()`.
 */
import { expect } from 'chai';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirFolder, WATCH_POLL_MS, type FolderChanges } from '../../lib/backends/maildir/maildir-folder.js';
import { FOLDER_LOG_FILE } from '../../lib/backends/maildir/folder-state.js';
import { maildirFs } from '../../lib/backends/maildir/maildir-fs.js';
import { heldIntervals } from '../support/held-timers.js';
import { openUnder } from '../support/open-files.js';
import { testClock } from '../support/test-clock.js';

const DATE = new Date('2024-02-03T04:05:06.789Z');
const body = (text: string): Buffer => Buffer.from(`Subject: ${text}\r\n\r\n${text}\r\n`);
/** A whole second in ms (directory mtimes set with utimes are exact then). */
const M = 1_700_000_000_000;

describe('MaildirFolder: scan rate limit, watching and kept handles (mutation testing)', () => {
  let root: string;
  const opened: MaildirFolder[] = [];
  /** The test clock: `Date.now()` answers `clock.t` while a case runs. */
  const clock = testClock();
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-clock-'));
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((f) => f.idle()));
    await rm(root, { recursive: true, force: true });
  });
  const useClock = (t: number): void => clock.use(t);

  type Told = FolderChanges[];
  async function create(name = 'INBOX', told: Told = [], durable = false): Promise<MaildirFolder> {
    const folder = await MaildirFolder.create(
      join(root, name),
      { durable, notify: (c) => told.push({ added: [...c.added], expunged: [...c.expunged], flagged: [...c.flagged] }) },
      77,
      name !== 'INBOX',
    );
    opened.push(folder);
    return folder;
  }
  const none = { added: [], expunged: [], flagged: [] };
  /** Sets the mtime of `new/` and/or `cur/` to `ms`. */
  async function stampAt(name: string, ms: number, dirs: Array<'new' | 'cur'> = ['new', 'cur']): Promise<void> {
    for (const d of dirs) await utimes(join(root, name, d), ms / 1000, ms / 1000);
  }
  /** A file another tool drops into new/ "in the same mtime tick": new/ keeps its mtime `ms`. */
  async function hide(name: string, file: string, ms: number): Promise<void> {
    await writeFile(join(root, name, 'new', file), body(file));
    await stampAt(name, ms, ['new']);
  }
  const lastRecord = async (name = 'INBOX'): Promise<Record<string, unknown>> => {
    const lines = (await readFile(join(root, name, FOLDER_LOG_FILE), 'utf8')).split('\n').filter((l) => l !== '');
    return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  };
  /** Resolves once `told` has `n` notifications (bounded by the test's timeout). */
  async function told(list: Told, n: number): Promise<Told> {
    while (list.length < n) await new Promise((resolve) => setTimeout(resolve, 10));
    return list;
  }

  it('confirms an unchanged but fresh stamp by a scan at most every 200 ms after the last scan, and not once the stamp is 1 s older than it', async () => {
    const folder = await create();
    await stampAt('INBOX', M);
    useClock(M + 500);
    // The stamp changed: a full scan, which records the new stamp.
    expect(await folder.refresh()).to.deep.equal(none);
    expect(await lastRecord()).to.deep.equal({ t: 's', n: `${M}000000`, c: `${M}000000` });
    await hide('INBOX', 'one', M);
    clock.t = M + 500 + 199;
    expect(await folder.refresh()).to.deep.equal(none);
    expect(folder.list()).to.have.length(0);
    clock.t = M + 500 + 200;
    // A second caller while the confirming refresh waits joins it, even once the clock says no scan is due.
    const first = folder.refresh();
    clock.t = M + 500 + 100;
    const second = folder.refresh();
    clock.t = M + 500 + 200;
    expect(await first).to.deep.equal({ added: [1], expunged: [], flagged: [] });
    expect(await second).to.deep.equal({ added: [1], expunged: [], flagged: [] });
    // That scan started at M + 700; at M + 1000 the stamp (M) is not yet 1 s older than it: confirmed again.
    await hide('INBOX', 'two', M);
    clock.t = M + 1000;
    expect((await folder.refresh()).added).to.deep.equal([2]);
    // Now the last scan started exactly 1 s after the stamp: nothing can hide behind it any more, never scanned again.
    await hide('INBOX', 'three', M);
    clock.t = M + 100_000;
    expect(await folder.refresh()).to.deep.equal(none);
    expect(folder.list().map((e) => e.uid)).to.deep.equal([1, 2]);
  });

  it('spaces confirming scans by 10 times the last scan when that is over 200 ms (a scan that took 50 ms: 500 ms)', async () => {
    const folder = await create();
    await stampAt('INBOX', M);
    useClock(M + 100);
    const realWriteAt = maildirFs.writeAt;
    // The scan's log append takes 50 ms on the test clock.
    maildirFs.writeAt = async (handle, data, position) => {
      clock.t += 50;
      return realWriteAt(handle, data, position);
    };
    try {
      expect(await folder.refresh()).to.deep.equal(none);
    } finally {
      maildirFs.writeAt = realWriteAt;
    }
    await hide('INBOX', 'one', M);
    clock.t = M + 150 + 499;
    expect(await folder.refresh()).to.deep.equal(none);
    clock.t = M + 150 + 500;
    expect((await folder.refresh()).added).to.deep.equal([1]);
  });

  it('scans when the log changed and a confirming scan is due, not when it is not; a commit never confirms', async () => {
    const toldHere: Told = [];
    const folder = await create('INBOX', toldHere);
    const m = await folder.add(body('m'), [], DATE);
    await stampAt('INBOX', M);
    useClock(M + 500);
    expect(await folder.refresh()).to.deep.equal(none);
    await hide('INBOX', 'one', M);
    clock.t = M + 500 + 100_000;
    // A commit with a confirming scan due: it scans only for a changed stamp (the file stays hidden).
    await folder.setFlags([m.uid], ['$k1'], 'add');
    expect(folder.list().map((e) => e.uid)).to.deep.equal([1]);
    // Another writer's record in the log (a keyword: no rename), with no confirming scan due: only the log is read.
    clock.t = M + 500 + 10;
    await appendFile(join(root, 'INBOX', FOLDER_LOG_FILE), JSON.stringify({ t: 'f', u: 1, m: folder.highestModseq + 1, l: '', k: ['$k2'] }) + '\n');
    expect(await folder.refresh()).to.deep.equal({ added: [], expunged: [], flagged: [1] });
    expect(folder.list().map((e) => e.uid)).to.deep.equal([1]);
    await appendFile(join(root, 'INBOX', FOLDER_LOG_FILE), JSON.stringify({ t: 'f', u: 1, m: folder.highestModseq + 1, l: '', k: ['$k3'] }) + '\n');
    clock.t = M + 500 + 100_000;
    expect(await folder.refresh()).to.deep.equal({ added: [2], expunged: [], flagged: [1] });
    expect(toldHere).to.deep.equal([
      { added: [], expunged: [], flagged: [1] },
      { added: [2], expunged: [], flagged: [1] },
    ]);
  });

  it('records the stamp when only new/ or only cur/ changed', async () => {
    const folder = await create();
    await stampAt('INBOX', M);
    await folder.refresh();
    expect(await lastRecord()).to.deep.equal({ t: 's', n: `${M}000000`, c: `${M}000000` });
    await stampAt('INBOX', M + 2000, ['new']);
    await folder.refresh();
    expect(await lastRecord()).to.deep.equal({ t: 's', n: `${M + 2000}000000`, c: `${M}000000` });
    await stampAt('INBOX', M + 4000, ['cur']);
    await folder.refresh();
    expect(await lastRecord()).to.deep.equal({ t: 's', n: `${M + 2000}000000`, c: `${M + 4000}000000` });
  });

  it('refuses a change queued just before the folder was deleted, and a refresh queued then reports nothing', async () => {
    const toldHere: Told = [];
    const folder = await create('INBOX', toldHere);
    const m = await folder.add(body('m'), [], DATE);
    await writeFile(join(root, 'INBOX', 'new', 'foreign'), body('f'));
    const change = folder.setFlags([m.uid], ['\\Seen'], 'add');
    const refresh = folder.refresh();
    folder.markDeleted();
    const outcome = await change.then(
      () => 'resolved',
      (e: Error & { code?: string }) => `${e.name} ${e.code} ${e.message}`,
    );
    expect(outcome).to.equal('MailStoreError NO_SUCH_MAILBOX mailbox deleted');
    expect(await refresh).to.deep.equal(none);
    expect(toldHere).to.deep.equal([]);
    expect((await readFile(join(root, 'INBOX', FOLDER_LOG_FILE), 'utf8')).split('\n').filter((l) => l.includes('"t":"f"'))).to.deep.equal([]);
  });

  describe('changes by another tool hidden in the same mtime tick (no confirming scan due)', () => {
    /** Scans at M + 5000 with new/ and cur/ at M: from then on their stamp is old enough that nothing confirms it. */
    async function settled(folder: MaildirFolder, name = 'INBOX'): Promise<void> {
      await stampAt(name, M);
      useClock(M + 5000);
      await folder.refresh();
    }
    /** Removes a message file and gives its directory back its mtime. */
    async function removeHidden(folder: MaildirFolder, uid: number, name = 'INBOX'): Promise<void> {
      const entry = folder.list().find((e) => e.uid === uid)!;
      await rm(folder.pathOf(entry));
      await stampAt(name, M, [entry.dir]);
    }
    const errorOf = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'resolved',
        (e: Error & { code?: string }) => `${e.name} ${e.code} ${e.message}`,
      );
    const records = async (): Promise<Array<Record<string, unknown>>> =>
      (await readFile(join(root, 'INBOX', FOLDER_LOG_FILE), 'utf8'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    it('read and openStream try three times (a refresh before each retry), then refuse with NO_SUCH_MESSAGE', async () => {
      const folder = await create();
      const m = await folder.add(body('m'), [], DATE);
      await settled(folder);
      await removeHidden(folder, m.uid);
      let refreshes = 0;
      const refresh = folder.refresh.bind(folder);
      folder.refresh = () => {
        refreshes++;
        return refresh();
      };
      expect(await errorOf(folder.read(m.base))).to.equal('MailStoreError NO_SUCH_MESSAGE message no longer exists');
      expect(refreshes).to.equal(3);
      refreshes = 0;
      expect(await errorOf(folder.openStream(m.base))).to.equal('MailStoreError NO_SUCH_MESSAGE message no longer exists');
      expect(refreshes).to.equal(3);
    });

    it('a flag change, an expunge and a new/ → cur/ move skip a file that vanished (ENOENT) and log no empty record', async () => {
      const folder = await create();
      const [a, b, c] = await folder.addMany(['a', 'b', 'c'].map((t) => ({ raw: body(t), flags: [], internalDate: DATE })));
      const uids = [a, b, c].map((r) => (r as PromiseFulfilledResult<{ uid: number }>).value.uid);
      await settled(folder);
      const before = (await records()).length;
      await removeHidden(folder, uids[0]!);
      expect(await folder.setFlags([uids[0]!], ['\\Seen'], 'add')).to.deep.equal({ entries: [], changed: [] });
      expect((await records()).length).to.equal(before);
      await removeHidden(folder, uids[1]!);
      expect(await folder.remove([uids[1]!])).to.deep.equal([uids[1]]);
      await removeHidden(folder, uids[2]!);
      await folder.markCurrent();
      expect((await records()).filter((r) => r['t'] === 'c' || r['t'] === 'f')).to.deep.equal([]);
    });

    it('a new/ → cur/ move that fails otherwise (a directory in the way) fails markCurrent with that error', async () => {
      const folder = await create();
      const m = await folder.add(body('m'), [], DATE);
      await settled(folder);
      await mkdir(join(root, 'INBOX', 'cur', `${m.base}:2,`, 'x'), { recursive: true });
      await stampAt('INBOX', M, ['cur']);
      expect(await errorOf(folder.markCurrent())).to.match(/^Error EISDIR /);
    });

    it('holds the folder lock as "pid host folder" while a group is placed', async () => {
      const folder = await create();
      const realRename = maildirFs.rename;
      let lock = '';
      maildirFs.rename = async (from, to) => {
        lock = await readFile(join(root, 'INBOX', 'postern-log.lock'), 'utf8');
        return realRename(from, to);
      };
      try {
        await folder.add(body('m'), [], DATE);
      } finally {
        maildirFs.rename = realRename;
      }
      expect(lock).to.equal(`${process.pid} ${hostname()} folder\n`);
    });
  });

  describe('watching (the 1 s poll held)', () => {
    let timers: ReturnType<typeof heldIntervals>;
    beforeEach(() => {
      timers = heldIntervals(WATCH_POLL_MS);
    });
    afterEach(() => {
      timers.restore();
    });
    const persistentWatchers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;

    it('arms one unref\'d poll and a non-persistent fs.watch, once; unwatch clears the poll; a deleted folder is not watched', async () => {
      const folder = await create();
      const watchers = persistentWatchers();
      folder.watch();
      folder.watch();
      expect(timers.armed.map((t) => [t.ms, t.handle.hasRef()])).to.deep.equal([[WATCH_POLL_MS, false]]);
      expect(persistentWatchers()).to.equal(watchers);
      folder.unwatch();
      folder.unwatch();
      expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
      folder.markDeleted();
      folder.watch();
      expect(timers.armed).to.have.length(1);
    });

    it('a poll tick refreshes (two ticks at once make one refresh) and reports a file another tool left in new/', async () => {
      const toldHere: Told = [];
      const folder = await create('INBOX', toldHere);
      folder.watch();
      let refreshes = 0;
      const refresh = folder.refresh.bind(folder);
      folder.refresh = () => {
        refreshes++;
        return refresh();
      };
      await writeFile(join(root, 'INBOX', 'new', 'foreign'), body('f'));
      timers.armed[0]!.fire();
      timers.armed[0]!.fire();
      await new Promise((resolve) => setImmediate(resolve));
      expect(refreshes).to.equal(1);
      expect(await told(toldHere, 1)).to.deep.equal([{ added: [1], expunged: [], flagged: [] }]);
    });

    it('fs.watch notices a record appended to the log (no poll tick, no lock file touched)', async () => {
      const toldHere: Told = [];
      const folder = await create('INBOX', toldHere);
      const m = await folder.add(body('m'), [], DATE);
      folder.watch();
      await appendFile(join(root, 'INBOX', FOLDER_LOG_FILE), JSON.stringify({ t: 'f', u: m.uid, m: folder.highestModseq + 1, l: '', k: ['$k'] }) + '\n');
      expect(await told(toldHere, 1)).to.deep.equal([{ added: [], expunged: [], flagged: [1] }]);
    });

    it('a watched folder that is renamed is watched again at its new path; an unwatched one is not', async () => {
      const toldHere: Told = [];
      const watched = await create('.A', toldHere);
      const m = await watched.add(body('m'), [], DATE);
      const unwatched = await create('.C');
      watched.watch();
      await rename(join(root, '.A'), join(root, '.B'));
      watched.moveTo(join(root, '.B'));
      expect(timers.armed).to.have.length(2);
      expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
      expect(timers.cleared.has(timers.armed[1]!.handle)).to.equal(false);
      await rename(join(root, '.C'), join(root, '.D'));
      unwatched.moveTo(join(root, '.D'));
      expect(timers.armed).to.have.length(2);
      await appendFile(join(root, '.B', FOLDER_LOG_FILE), JSON.stringify({ t: 'f', u: m.uid, m: watched.highestModseq + 1, l: '', k: ['$k'] }) + '\n');
      expect(await told(toldHere, 1)).to.deep.equal([{ added: [], expunged: [], flagged: [1] }]);
    });
  });

  describe('kept handles', () => {
    /** Descriptors of this process open on something under the temp dir, relative to it. */
    const openInRoot = (): string[] => openUnder(root).map((target) => target.slice(root.length + 1));

    it('idle() closes the log and the kept new/ and cur/ of a durable folder; new/ made again gets its old handle closed', async () => {
      const folder = await create('D', [], true);
      await folder.add(body('a'), [], DATE);
      await folder.add(body('b'), ['\\Seen'], DATE);
      expect(openInRoot().sort()).to.include.members(['D/cur', 'D/new']);
      await rm(join(root, 'D', 'new'), { recursive: true });
      await mkdir(join(root, 'D', 'new'));
      await folder.add(body('c'), [], DATE);
      for (let i = 0; i < 100 && openInRoot().some((p) => p.endsWith('(deleted)')); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(openInRoot().filter((p) => p.endsWith('(deleted)'))).to.deep.equal([]);
      await folder.idle();
      expect(openInRoot()).to.deep.equal([]);
    });
  });
});
