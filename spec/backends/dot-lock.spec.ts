import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireDotLock, DotLockBusyError, STALE_LOCK_MS } from '../../lib/backends/maildir/dot-lock.js';
import { heldIntervals, heldTimers } from '../support/held-timers.js';
import { openUnder } from '../support/open-files.js';
import { waitUntil } from '../support/wait-until.js';

/** Above Linux's default pid range: never a running process. */
const DEAD_PID = 2 ** 22 + 17;

/** The DotLockBusyError of a rejected acquisition (fails when it resolves or rejects with something else). */
async function busy(promise: Promise<unknown>): Promise<DotLockBusyError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(DotLockBusyError);
    return err as DotLockBusyError;
  }
  expect.fail('expected DotLockBusyError');
}

/** Sets a file's mtime `ageMs` into the past. */
async function age(path: string, ageMs: number): Promise<void> {
  const then = new Date(Date.now() - ageMs);
  await utimes(path, then, then);
}

// Written against the mutants StrykerJS left alive in dot-lock.ts (README, "Scores (Stryker"); real files in a temp dir.
describe('acquireDotLock: who holds, when a lock is stale, what release removes', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-dot-lock-'));
    path = join(dir, 'x.lock');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes "pid host owner" with blanks in the owner folded to _, and leaves no temporary file', async () => {
    const lock = await acquireDotLock(path, 'pop3  session\t1', 0);
    expect(lock.path).to.equal(path);
    expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} pop3_session_1\n`);
    expect(await readdir(dir)).to.deep.equal(['x.lock']);
    await lock.release();
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('refuses a lock of a live process on this host until it is older than STALE_LOCK_MS, then breaks it', async () => {
    const holder = `${process.ppid} ${hostname()} imap`;
    await writeFile(path, `${holder}\n`);
    await age(path, STALE_LOCK_MS - 60_000);
    const err = await busy(acquireDotLock(path, 'me', 0));
    expect([err.path, err.holder, err.message]).to.deep.equal([path, holder, `lock ${path} is held by ${holder}`]);
    await age(path, STALE_LOCK_MS + 60_000);
    const lock = await acquireDotLock(path, 'me', 0);
    expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} me\n`);
    expect(await readdir(dir)).to.deep.equal(['x.lock']);
    await lock.release();
  });

  it('never breaks a fresh lock of another host, even with a pid that runs nowhere here, nor one without a pid', async () => {
    await writeFile(path, `${DEAD_PID} other.host.example pop3\n`);
    expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal(`${DEAD_PID} other.host.example pop3`);
    await writeFile(path, `not-a-pid ${hostname()} pop3\n`);
    expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal(`not-a-pid ${hostname()} pop3`);
    await writeFile(path, `1.5 ${hostname()} pop3\n`); // not a pid either (process.kill would refuse it)
    expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal(`1.5 ${hostname()} pop3`);
  });

  it('breaks a lock with its own pid that it does not hold (left by an earlier process with this pid)', async () => {
    await writeFile(path, `${process.pid} ${hostname()} earlier\n`);
    const lock = await acquireDotLock(path, 'now', 0);
    expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} now\n`);
    await lock.release();
  });

  it('treats an empty lock file of another tool as held for 10 s, then as stale', async () => {
    await writeFile(path, '');
    expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal('an unknown holder');
    await age(path, 9_000);
    expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal('an unknown holder');
    await age(path, 11_000);
    const lock = await acquireDotLock(path, 'me', 0);
    expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} me\n`);
    await lock.release();
  });

  it('waits for a live holder that lets go within waitMs', async () => {
    const first = await acquireDotLock(path, 'first', 0);
    const second = acquireDotLock(path, 'second', 10_000);
    // The second caller is polling now; let go once it has found the lock held at least once.
    await new Promise((resolve) => setImmediate(resolve));
    await first.release();
    const lock = await second;
    expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} second\n`);
    await lock.release();
  });

  it('releases only once: a second release neither throws nor removes the next holder, a vanished file is fine', async () => {
    const first = await acquireDotLock(path, 'first', 0);
    await first.release();
    const second = await acquireDotLock(path, 'second', 0);
    await first.release();
    expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} second\n`);
    await unlink(path);
    await second.release();
    // Released locks are no longer ours: a file with our pid left behind is broken, not taken for a live one.
    await writeFile(path, `${process.pid} ${hostname()} second\n`);
    await (await acquireDotLock(path, 'third', 0)).release();
  });

  describe('kept fresh, retried, aged on a test clock (mutation testing)', () => {
    const realNow = Date.now;
    afterEach(() => {
      Date.now = realNow;
    });
    /** Descriptors of this process open on something under the temp dir. */
    const openInDir = (): string[] => openUnder(dir);

    it('names its error DotLockBusyError, and leaves no descriptor open', async () => {
      const first = await acquireDotLock(path, 'first', 0);
      const err = await busy(acquireDotLock(path, 'second', 0));
      expect(err.name).to.equal('DotLockBusyError');
      await first.release();
      expect(openInDir()).to.deep.equal([]);
    });

    it('keepFresh: written whole, touched every 30 s by an unref\'d timer cleared at release; refused while held; none without it', async () => {
      const timers = heldIntervals(30_000);
      try {
        const plain = await acquireDotLock(path, 'plain', 0);
        expect(timers.armed).to.have.length(0);
        await plain.release();
        const lock = await acquireDotLock(path, 'pop3 maildrop', 0, true);
        expect(await readFile(path, 'utf8')).to.equal(`${process.pid} ${hostname()} pop3_maildrop\n`);
        expect(await readdir(dir)).to.deep.equal(['x.lock']);
        expect(timers.armed.map((t) => [t.ms, t.handle.hasRef()])).to.deep.equal([[30_000, false]]);
        const err = await busy(acquireDotLock(path, 'second', 0, true));
        expect(err.holder).to.equal(`${process.pid} ${hostname()} pop3_maildrop`);
        expect(await readdir(dir)).to.deep.equal(['x.lock']);
        await age(path, 60_000);
        const old = (await stat(path)).mtimeMs;
        timers.armed[0]!.fire();
        for (let i = 0; i < 100 && (await stat(path)).mtimeMs === old; i++) await new Promise((resolve) => setTimeout(resolve, 5));
        expect((await stat(path)).mtimeMs).to.be.greaterThan(old + 50_000);
        await lock.release();
        expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
        expect(await readdir(dir)).to.deep.equal([]);
        expect(openInDir()).to.deep.equal([]);
      } finally {
        timers.restore();
      }
    });

    it('retries a live lock after 1, 2, 4 … ms, at most 50 ms apart, and only once a first wait is over', async () => {
      const delays = [1, 2, 4, 8, 16, 32, 50];
      const timers = heldTimers(...delays);
      try {
        const first = await acquireDotLock(path, 'first', 0);
        const second = acquireDotLock(path, 'second', 60_000);
        for (let n = 1; n <= 9; n++) {
          await waitUntil(() => timers.armed.length >= n, `retry timer ${n}`);
          if (n === 9) await first.release();
          timers.armed[n - 1]!.fire();
        }
        await (await second).release();
        expect(timers.armed.map((t) => t.ms)).to.deep.equal([1, 2, 4, 8, 16, 32, 50, 50, 50]);
      } finally {
        timers.restore();
      }
    });

    it('gives up at the deadline (waitMs after the call) and not before', async () => {
      const first = await acquireDotLock(path, 'first', 0);
      const T = realNow(); // the lock file's age must stay far below STALE_LOCK_MS
      let t = T;
      Date.now = () => t;
      const timers = heldTimers(1, 2, 4);
      try {
        const second = acquireDotLock(path, 'second', 3);
        await waitUntil(() => timers.armed.length >= 1, 'the first retry timer');
        t = T + 2;
        timers.armed[0]!.fire();
        await waitUntil(() => timers.armed.length >= 2, 'the second retry timer');
        t = T + 3;
        timers.armed[1]!.fire();
        expect((await busy(second)).holder).to.equal(`${process.pid} ${hostname()} first`);
        expect(timers.armed).to.have.length(2);
      } finally {
        timers.restore();
        await first.release();
      }
    });

    it('breaks a lock of exactly STALE_LOCK_MS only once it is older, on the test clock', async () => {
      const holder = `${process.ppid} ${hostname()} imap`;
      await writeFile(path, `${holder}\n`);
      const T = 1_800_000_000_000;
      await utimes(path, (T - STALE_LOCK_MS) / 1000, (T - STALE_LOCK_MS) / 1000);
      Date.now = () => T;
      expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal(holder);
      Date.now = () => T + 1;
      await (await acquireDotLock(path, 'me', 0)).release();
    });

    it('breaks a dead writer\'s lock without an owner field, and keeps one with a negative pid', async () => {
      await writeFile(path, `${DEAD_PID} ${hostname()}\n`);
      await (await acquireDotLock(path, 'me', 0)).release();
      await writeFile(path, `-${DEAD_PID} ${hostname()} x\n`);
      expect((await busy(acquireDotLock(path, 'me', 0))).holder).to.equal(`-${DEAD_PID} ${hostname()} x`);
    });

    it('passes on errors other than ENOENT: a directory in place of the lock at acquire and at release', async () => {
      await mkdir(path);
      const code = (p: Promise<unknown>): Promise<unknown> =>
        p.then(
          () => 'resolved',
          (e: NodeJS.ErrnoException) => e.code,
        );
      expect(await code(acquireDotLock(path, 'me', 0))).to.equal('EISDIR');
      await rm(path, { recursive: true });
      for (const keepFresh of [false, true]) {
        const lock = await acquireDotLock(path, 'me', 0, keepFresh);
        await unlink(path);
        await mkdir(path);
        expect(await code(lock.release())).to.equal('EISDIR');
        await rm(path, { recursive: true });
      }
    });
  });
});
