import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireDotLock, DotLockBusyError, STALE_LOCK_MS } from '../../lib/backends/maildir/dot-lock.js';

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
});
