/**
 * FdMonitor in this very process (issue 16, mutation testing): the soft descriptor limit is lowered with `prlimit
 * --pid` (util-linux) and /dev/null opened until the count sits at the edges of the 90 % mark, or until open() fails
 * with EMFILE; the limit and the descriptors are given back before each test ends. The warning pause is checked with
 * `Date.now` pinned (the monitor's only clock), never by waiting it out; the interval is awaited once per owner case.
 *
 * FdMonitor's state is process-wide (static), so every test starts from a reset one: its private statics are set back
 * to their initial values here (a spec that left a listener open, or a mutant run before this one in the same Stryker
 * process, would otherwise decide what this spec sees).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { FdMonitor } from '../../lib/core/fd-monitor.js';
import { RecordingLogger } from '../support/recording-logger.js';

/** FdMonitor's private statics, for the resets. */
interface MonitorState {
  users: Set<object>;
  timer?: NodeJS.Timeout;
  log?: unknown;
  backoffMs: number;
  lastWarn: number;
  lastLimit?: number;
}
const state = FdMonitor as unknown as MonitorState;

function resetBackoff(): void {
  state.backoffMs = 0;
  state.lastWarn = 0;
}

function resetAll(): void {
  clearInterval(state.timer);
  state.users.clear();
  state.timer = undefined;
  state.log = undefined;
  state.lastLimit = undefined;
  resetBackoff();
}

const softLimit = (): number => Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]);
/** Descriptors open now, counted as the monitor counts them (the directory read's own descriptor included). */
const openCount = (): number => readdirSync('/proc/self/fd').length;

function setSoftLimit(n: number): void {
  const r = spawnSync('prlimit', [`--pid=${process.pid}`, `--nofile=${n}:`], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`prlimit --nofile=${n}: exited ${r.status}`);
}

/** Records every `setInterval`/`clearInterval` (passed on to the real ones) until `restore()`. */
function recordIntervals(): { set: Array<{ ms?: number; tick: () => void; handle: NodeJS.Timeout }>; cleared: unknown[]; restore: () => void } {
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  const set: Array<{ ms?: number; tick: () => void; handle: NodeJS.Timeout }> = [];
  const cleared: unknown[] = [];
  globalThis.setInterval = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const handle = realSet(fn, ms, ...args);
    set.push({ ms, tick: () => fn(...args), handle });
    return handle;
  }) as typeof setInterval;
  globalThis.clearInterval = ((t: NodeJS.Timeout | undefined) => {
    cleared.push(t);
    realClear(t);
  }) as typeof clearInterval;
  return {
    set,
    cleared,
    restore: () => {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
    },
  };
}

/** Timers keeping the event loop alive. */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('core: FdMonitor against a lowered descriptor limit', function () {
  this.timeout(20_000);
  const original = softLimit();
  const opened: number[] = [];
  const realNow = Date.now;
  let log: RecordingLogger;
  const owner = {};

  const warnings = (l: RecordingLogger = log): Array<Record<string, unknown>> =>
    l.find('warn', 'file descriptors nearly exhausted').map((r) => ({ ...r.meta }));

  /** Opens /dev/null until `n` descriptors are open (as counted by {@link openCount}). */
  function fillTo(n: number): void {
    for (let i = 0; openCount() < n; i++) {
      if (i > 1000) throw new Error('could not reach the descriptor count');
      opened.push(openSync('/dev/null', 'r'));
    }
    expect(openCount()).to.equal(n);
  }

  /** A soft limit about 60 above the descriptors open now, rounded up to ten. */
  const limitAboveUse = (): number => Math.ceil((openCount() + 60) / 10) * 10;

  /** Opens /dev/null until it fails (at most `limit` times): the error code, or undefined when none failed. */
  function fillToFailure(limit: number): string | undefined {
    for (let i = 0; i < limit; i++) {
      try {
        opened.push(openSync('/dev/null', 'r'));
      } catch (err) {
        return (err as NodeJS.ErrnoException).code;
      }
    }
    return undefined;
  }

  function giveBack(): void {
    for (const fd of opened.splice(0)) closeSync(fd);
  }

  before(function () {
    if (process.platform !== 'linux') this.skip(); // the monitor reads /proc; elsewhere it does nothing
    if (spawnSync('prlimit', ['--version']).status !== 0) this.skip(); // util-linux prlimit missing (installed on CI)
  });
  beforeEach(() => {
    resetAll();
    log = new RecordingLogger();
  });
  afterEach(() => {
    Date.now = realNow;
    giveBack();
    setSoftLimit(original);
    FdMonitor.release(owner);
    resetAll();
  });

  it('reports the open descriptors and the soft limit, and warns from 90 % on, not below', () => {
    FdMonitor.acquire(owner, log);
    expect(FdMonitor.check()).to.deep.equal({ open: openCount(), limit: original });
    const limit = limitAboveUse();
    setSoftLimit(limit);
    fillTo(limit * 0.9 - 1);
    expect(FdMonitor.check()).to.deep.equal({ open: limit * 0.9 - 1, limit });
    expect(warnings()).to.deep.equal([]);
    fillTo(limit * 0.9);
    expect(FdMonitor.check()).to.deep.equal({ open: limit * 0.9, limit });
    expect(warnings()).to.deep.equal([{ open: limit * 0.9, limit, nextWarnMs: 0 }]);
  });

  it('pauses 1 s after the first warning, then doubles the pause up to 5 minutes', () => {
    FdMonitor.acquire(owner, log);
    const limit = limitAboveUse();
    setSoftLimit(limit);
    fillTo(limit * 0.9);
    let now = 1_000_000_000_000;
    Date.now = () => now;
    FdMonitor.check();
    const pauses = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000];
    for (const pause of pauses) {
      now += pause - 1;
      FdMonitor.check(); // one millisecond early: quiet
      now += 1;
      FdMonitor.check();
    }
    expect(warnings().map((w) => w.nextWarnMs)).to.deep.equal([0, ...pauses]);
  });

  it('at the limit itself, where reading /proc fails with EMFILE, counts every descriptor as open and warns', () => {
    FdMonitor.acquire(owner, log);
    const limit = limitAboveUse();
    setSoftLimit(limit);
    expect(FdMonitor.check()).to.deep.equal({ open: openCount(), limit });
    const code = fillToFailure(limit);
    const seen = FdMonitor.check();
    giveBack();
    expect(code).to.equal('EMFILE');
    expect(seen).to.deep.equal({ open: limit, limit });
    expect(warnings()).to.deep.equal([{ open: limit, limit, nextWarnMs: 0 }]);
  });

  it('checks every second from the first acquire on, logs to the first owner\'s logger until the last release, and starts afresh after', async () => {
    const limit = limitAboveUse();
    setSoftLimit(limit);
    // A few above the line: this case waits for real ticks, and a socket or pipe an earlier spec left closing (a
    // child process's, a client's) may be released meanwhile and must not take the count back under 90 %.
    fillTo(limit * 0.9 + 5);
    const [a, b, c] = [{}, {}, {}];
    const [logA, logB, logC] = [new RecordingLogger(), new RecordingLogger(), new RecordingLogger()];
    const t0 = timers();
    FdMonitor.acquire(a, logA);
    FdMonitor.acquire(b, logB);
    expect(timers(), 'the interval must not keep the process alive').to.equal(t0);
    FdMonitor.release(a); // b still watches: the timer goes on, with a's logger
    await logA.next('file descriptors nearly exhausted', 3_000);
    FdMonitor.release(b);
    resetBackoff();
    FdMonitor.acquire(c, logC);
    await logC.next('file descriptors nearly exhausted', 3_000);
    FdMonitor.release(c);
    expect([warnings(logA).length, warnings(logB).length, warnings(logC).length]).to.deep.equal([1, 0, 1]);
  });

  // The two cases below read the interval itself (recorded, its tick run by the test): an interval leaked by another
  // test or by an earlier mutant in Stryker's reused process cannot stand in for the one under test.
  it('arms one unref\'d one-second interval for all owners, whose tick is a check, and clears it at the last release', () => {
    const limit = limitAboveUse();
    setSoftLimit(limit);
    fillTo(limit * 0.9);
    const [a, b] = [{}, {}];
    const [logA, logB] = [new RecordingLogger(), new RecordingLogger()];
    const rec = recordIntervals();
    try {
      FdMonitor.acquire(a, logA);
      FdMonitor.acquire(b, logB);
      expect(rec.set.map((t) => t.ms)).to.deep.equal([1_000]);
      expect(rec.set[0]!.handle.hasRef()).to.equal(false);
      rec.set[0]!.tick();
      expect([warnings(logA), warnings(logB)]).to.deep.equal([[{ open: limit * 0.9, limit, nextWarnMs: 0 }], []]);
      FdMonitor.release(a);
      expect(rec.cleared).to.deep.equal([]);
      FdMonitor.release(b);
      expect(rec.cleared).to.deep.equal([rec.set[0]!.handle]);
    } finally {
      rec.restore();
    }
  });

  it('arms no interval when even the limit cannot be read (first acquired at EMFILE)', () => {
    const limit = limitAboveUse();
    setSoftLimit(limit);
    const code = fillToFailure(limit);
    const rec = recordIntervals();
    let seen: ReturnType<typeof FdMonitor.check> | null = null;
    try {
      FdMonitor.acquire(owner, log);
      seen = FdMonitor.check();
    } finally {
      rec.restore();
      giveBack();
    }
    expect(code).to.equal('EMFILE');
    expect(rec.set).to.deep.equal([]);
    expect(seen, 'no limit seen yet: no check').to.equal(undefined);
    expect(warnings()).to.deep.equal([]);
  });
});
