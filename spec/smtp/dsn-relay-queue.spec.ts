/**
 * DsnRelayQueue on its own (mutation testing of `dsn-relay-queue.ts`): a fake relay (`deliver`) that the test settles
 * call by call, a RecordingLogger, and, where the schedule matters, the retry timers held by `heldTimers` and fired by
 * the test with `Date.now` on a test clock, so that no case waits for a real retry. Pins the order of attempts, their
 * numbers, each wait, the 5xx drop, the bound, the reasons as logged, and what close() waits for, clears and logs.
 */
import { expect } from 'chai';
import type { DsnNotice } from '../../lib/smtp/dsn-notices.js';
import { DSN_RELAY_CLOSE_WAIT_MS, DsnRelayQueue, isPermanentRefusal, type DsnRelayQueueOptions } from '../../lib/smtp/dsn-relay-queue.js';
import { heldTimers } from '../support/held-timers.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { testClock } from '../support/test-clock.js';
import { waitUntil } from '../support/wait-until.js';

/** One call of the fake relay: which report, which attempt, and how the test settles it. */
interface Call {
  readonly to: string;
  readonly attempt: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

const notice = (to: string): DsnNotice => ({ to, recipients: ['rcpt@example.com'], raw: Buffer.from('Subject: report\r\n\r\n') });

/** An SMTP reply error as nodemailer reports it. */
const replyError = (code: number, text: string): Error => Object.assign(new Error(`Mail command failed: ${text}`), { responseCode: code });

/** A few turns of the event loop (and a real 5 ms), for what must NOT happen after a step. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe('DsnRelayQueue: order, retries, the 5xx drop, the bound and close() (dsn-relay-queue.ts)', () => {
  const clock = testClock();
  let calls: Call[];
  let log: RecordingLogger;
  let queues: DsnRelayQueue[];
  beforeEach(() => {
    calls = [];
    log = new RecordingLogger();
    queues = [];
  });
  afterEach(async () => {
    // Nothing left running: close (a wait for the report being sent) while every call the fake relay got settles.
    const closing = queues.map((q) => q.close());
    for (const c of calls) c.resolve();
    await Promise.all(closing);
  });

  const queue = (options: DsnRelayQueueOptions = {}): DsnRelayQueue => {
    const q = new DsnRelayQueue(
      (n, attempt) => new Promise<void>((resolve, reject) => calls.push({ to: n.to, attempt, resolve, reject })),
      options,
      log,
    );
    queues.push(q);
    return q;
  };
  /** The calls so far as `to #attempt`. */
  const sent = (): string[] => calls.map((c) => `${c.to} #${c.attempt}`);
  const records = (): Array<[string, string, Record<string, unknown>]> => log.records.map((r) => [r.level, r.message, { ...r.meta }]);
  const waitForCalls = (n: number): Promise<void> => waitUntil(() => calls.length >= n, `${n} call(s) of the relay`, 2_000);
  /** Queues a@x.test and fails its first attempt; resolves once the timer of its retry is armed. */
  const failFirst = async (q: DsnRelayQueue, timers: ReturnType<typeof heldTimers>): Promise<void> => {
    q.add(notice('a@x.test'));
    calls[0]!.reject(new Error('down'));
    await waitUntil(() => timers.armed.length === 1, 'the retry timer', 2_000);
  };
  /** Runs `body` with the timers of these delays held (`heldTimers`), and puts the real timers back whatever happens. */
  const withHeldTimers = async (delays: readonly number[], body: (timers: ReturnType<typeof heldTimers>) => Promise<void>): Promise<void> => {
    const timers = heldTimers(...delays);
    try {
      await body(timers);
    } finally {
      timers.restore();
    }
  };

  it('isPermanentRefusal: a numeric responseCode from 500 to 599, nothing else', () => {
    const table = [499, 500, 550, 599, 600].map((code) => [code, isPermanentRefusal({ responseCode: code })]);
    expect(table).to.deep.equal([
      [499, false],
      [500, true],
      [550, true],
      [599, true],
      [600, false],
    ]);
    expect(isPermanentRefusal({ responseCode: '550' })).to.equal(false);
    expect(isPermanentRefusal(replyError(554, '554 5.7.1 no'))).to.equal(true);
    expect(isPermanentRefusal(new Error('connect ECONNREFUSED 127.0.0.1:25'))).to.equal(false);
    expect(isPermanentRefusal({})).to.equal(false);
    expect(isPermanentRefusal(undefined)).to.equal(false);
    expect(isPermanentRefusal(null)).to.equal(false);
  });

  it('sends one report at a time, in the order added, each as attempt 1; size counts the one being sent', async () => {
    const q = queue();
    q.add(notice('a@x.test'));
    q.add(notice('b@x.test'));
    q.add(notice('c@x.test'));
    // The first call starts within add(); the others wait for it.
    expect(sent()).to.deep.equal(['a@x.test #1']);
    expect(q.size).to.equal(3);
    await settle();
    expect(sent()).to.deep.equal(['a@x.test #1']);
    calls[0]!.resolve();
    await waitForCalls(2);
    expect(q.size).to.equal(2);
    calls[1]!.resolve();
    await waitForCalls(3);
    expect(q.size).to.equal(1);
    calls[2]!.resolve();
    await waitUntil(() => q.size === 0, 'an empty queue', 2_000);
    // Once empty it stays idle: no call again, nothing logged (a relayed report is logged by RelayDsnNoticeSender).
    await settle();
    expect(sent()).to.deep.equal(['a@x.test #1', 'b@x.test #1', 'c@x.test #1']);
    expect(log.records).to.deep.equal([]);
  });

  it('retries a failed report at each wait of retryDelaysMs (an unref\'d timer, not before it is due), then drops it', async () => {
    const T = 1_700_000_000_000;
    clock.use(T);
    await withHeldTimers([1, 10, 20], async (timers) => {
      const q = queue({ retryDelaysMs: [10, 20] });
      q.add(notice('a@x.test'));
      calls[0]!.reject(new Error('connect ECONNREFUSED 127.0.0.1:25'));
      await waitUntil(() => timers.armed.length === 1, 'the first retry timer', 2_000);
      expect(timers.armed.map((t) => [t.ms, t.handle.hasRef()])).to.deep.equal([[10, false]]);
      expect(q.size).to.equal(1);
      // Fired early (the clock has not moved): no attempt, the timer is set again for what is left.
      timers.armed[0]!.fire();
      expect(timers.armed.map((t) => t.ms)).to.deep.equal([10, 10]);
      expect(sent()).to.deep.equal(['a@x.test #1']);
      clock.t = T + 9;
      timers.armed[1]!.fire();
      expect(timers.armed.map((t) => t.ms)).to.deep.equal([10, 10, 1]);
      // Due exactly now: the second attempt.
      clock.t = T + 10;
      timers.armed[2]!.fire();
      expect(sent()).to.deep.equal(['a@x.test #1', 'a@x.test #2']);
      calls[1]!.reject(new Error('greeting never received'));
      await waitUntil(() => timers.armed.length === 4, 'the second retry timer', 2_000);
      expect(timers.armed[3]!.ms).to.equal(20);
      clock.t = T + 30;
      timers.armed[3]!.fire();
      expect(sent()).to.deep.equal(['a@x.test #1', 'a@x.test #2', 'a@x.test #3']);
      calls[2]!.reject(new Error('connect ECONNREFUSED 127.0.0.1:25'));
      await waitUntil(() => q.size === 0, 'the report dropped', 2_000);
      await settle();
      expect(timers.armed).to.have.length(4);
      expect(sent()).to.have.length(3);
      expect(records()).to.deep.equal([
        ['warn', 'delivery notice failed', { to: 'a@x.test', reason: 'connect ECONNREFUSED 127.0.0.1:25', attempt: 1, retryInMs: 10 }],
        ['warn', 'delivery notice failed', { to: 'a@x.test', reason: 'greeting never received', attempt: 2, retryInMs: 20 }],
        ['warn', 'delivery notice dropped', { to: 'a@x.test', reason: 'connect ECONNREFUSED 127.0.0.1:25', attempts: 3 }],
      ]);
    });
  });

  it('without retryDelaysMs, waits 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, and drops the report at the 7th failure', async () => {
    const T = 1_700_000_000_000;
    clock.use(T);
    const schedule = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000];
    await withHeldTimers(schedule, async (timers) => {
      const q = queue();
      q.add(notice('a@x.test'));
      for (let i = 0; i < schedule.length; i++) {
        calls[i]!.reject(new Error(`down ${i + 1}`));
        await waitUntil(() => timers.armed.length === i + 1, `retry timer ${i + 1}`, 2_000);
        clock.t += schedule[i]!;
        timers.armed[i]!.fire();
        expect(calls).to.have.length(i + 2);
      }
      calls[6]!.reject(new Error('down 7'));
      await waitUntil(() => q.size === 0, 'the report dropped', 2_000);
      expect(timers.armed.map((t) => t.ms)).to.deep.equal(schedule);
      expect(sent()).to.deep.equal([1, 2, 3, 4, 5, 6, 7].map((n) => `a@x.test #${n}`));
      expect(log.find('delivery notice failed').map((r) => r.meta.retryInMs)).to.deep.equal(schedule);
      expect(log.find('delivery notice dropped').map((r) => r.meta)).to.deep.equal([{ to: 'a@x.test', reason: 'down 7', attempts: 7 }]);
    });
  });

  it('drops a report at a 5xx reply without a retry; a 4xx one is retried', async () => {
    clock.use(1_700_000_000_000);
    await withHeldTimers([50], async (timers) => {
      const q = queue({ retryDelaysMs: [50] });
      q.add(notice('a@x.test'));
      calls[0]!.reject(replyError(550, '550 5.7.1 No reports here'));
      await waitUntil(() => q.size === 0, 'the refused report dropped', 2_000);
      await settle();
      expect(timers.armed).to.deep.equal([]);
      expect(sent()).to.deep.equal(['a@x.test #1']);
      q.add(notice('b@x.test'));
      calls[1]!.reject(replyError(451, '451 4.3.0 Try later'));
      await waitUntil(() => timers.armed.length === 1, 'the 4xx retry timer', 2_000);
      expect(q.size).to.equal(1);
      expect(records()).to.deep.equal([
        ['warn', 'delivery notice dropped', { to: 'a@x.test', reason: 'Mail command failed: 550 5.7.1 No reports here', attempts: 1, refused: true }],
        ['warn', 'delivery notice failed', { to: 'b@x.test', reason: 'Mail command failed: 451 4.3.0 Try later', attempt: 1, retryInMs: 50 }],
      ]);
    });
  });

  it('logs as the reason an error\'s message, or what was thrown as a string (no retries: dropped at once)', async () => {
    const q = queue({ retryDelaysMs: [] });
    const thrown: unknown[] = [new Error('socket hang up'), 'plain string', undefined, null];
    for (const [i, err] of thrown.entries()) {
      q.add(notice(`r${i}@x.test`));
      await waitForCalls(i + 1);
      calls[i]!.reject(err);
      await waitUntil(() => q.size === 0, `report ${i} dropped`, 2_000);
    }
    await settle();
    expect(records()).to.deep.equal(
      ['socket hang up', 'plain string', 'undefined', 'null'].map((reason, i) => ['warn', 'delivery notice dropped', { to: `r${i}@x.test`, reason, attempts: 1 }]),
    );
  });

  it('sends a new report before one waiting for its retry, then the retry when due', async () => {
    const T = 1_700_000_000_000;
    clock.use(T);
    await withHeldTimers([30, 50], async (timers) => {
      const q = queue({ retryDelaysMs: [50] });
      await failFirst(q, timers);
      clock.t = T + 20;
      // b is due now, a in 30 ms: b goes first, and the timer for a is cleared (one timer at a time).
      q.add(notice('b@x.test'));
      expect(sent()).to.deep.equal(['a@x.test #1', 'b@x.test #1']);
      expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
      calls[1]!.resolve();
      await waitUntil(() => timers.armed.length === 2, 'the timer for a again', 2_000);
      expect(timers.armed[1]!.ms).to.equal(30);
      expect(q.size).to.equal(1);
      clock.t = T + 50;
      timers.armed[1]!.fire();
      expect(sent()).to.deep.equal(['a@x.test #1', 'b@x.test #1', 'a@x.test #2']);
      calls[2]!.resolve();
      await waitUntil(() => q.size === 0, 'an empty queue', 2_000);
    });
  });

  it('sends a new report before a retry that is already overdue: a report not tried yet is due from the start', async () => {
    const T = 1_700_000_000_000;
    clock.use(T);
    await withHeldTimers([50], async (timers) => {
      const q = queue({ retryDelaysMs: [50] });
      await failFirst(q, timers);
      clock.t = T + 20;
      q.add(notice('b@x.test'));
      // c comes while b is being sent, after a's retry fell due (T + 50): c still goes before it.
      clock.t = T + 60;
      q.add(notice('c@x.test'));
      calls[1]!.resolve();
      await waitForCalls(3);
      calls[2]!.resolve();
      await waitForCalls(4);
      expect(sent()).to.deep.equal(['a@x.test #1', 'b@x.test #1', 'c@x.test #1', 'a@x.test #2']);
    });
  });

  it('holds at most maxQueued reports, the one being sent included; past that a new one is dropped and logged', async () => {
    const q = queue({ maxQueued: 2 });
    q.add(notice('a@x.test'));
    q.add(notice('b@x.test'));
    q.add(notice('c@x.test'));
    expect(q.size).to.equal(2);
    expect(records()).to.deep.equal([['warn', 'delivery notice dropped', { to: 'c@x.test', reason: 'queue full', max: 2, attempts: 0 }]]);
    calls[0]!.resolve();
    await waitForCalls(2);
    q.add(notice('d@x.test'));
    expect(q.size).to.equal(2);
    calls[1]!.resolve();
    await waitForCalls(3);
    expect(sent()).to.deep.equal(['a@x.test #1', 'b@x.test #1', 'd@x.test #1']);
    expect(log.records).to.have.length(1);
  });

  it('holds 1000 reports by default', () => {
    const q = queue();
    for (let i = 0; i <= 1000; i++) q.add(notice(`r${i}@x.test`));
    expect(q.size).to.equal(1000);
    expect(records()).to.deep.equal([['warn', 'delivery notice dropped', { to: 'r1000@x.test', reason: 'queue full', max: 1000, attempts: 0 }]]);
  });

  it('close(): an idle queue logs nothing and sets no timer; a report added after it is dropped (shutting down)', async () => {
    await withHeldTimers([DSN_RELAY_CLOSE_WAIT_MS], async (timers) => {
      const q = queue();
      await q.close();
      expect(timers.armed).to.deep.equal([]);
      expect(log.records).to.deep.equal([]);
      q.add(notice('late@x.test'));
      await settle();
      expect(calls).to.deep.equal([]);
      expect(q.size).to.equal(0);
      expect(records()).to.deep.equal([['warn', 'delivery notice dropped', { to: 'late@x.test', reason: 'shutting down', attempts: 0 }]]);
    });
  });

  it('close() waits for the report being sent, starts no other, clears its bound, and logs the ones never relayed', async () => {
    await withHeldTimers([DSN_RELAY_CLOSE_WAIT_MS], async (timers) => {
      const q = queue();
      q.add(notice('a@x.test'));
      q.add(notice('b@x.test'));
      q.add(notice('c@x.test'));
      let closed = false;
      const closing = q.close().then(() => (closed = true));
      await settle();
      expect(closed).to.equal(false);
      expect(timers.armed.map((t) => t.ms)).to.deep.equal([DSN_RELAY_CLOSE_WAIT_MS]);
      calls[0]!.resolve();
      await closing;
      expect(sent()).to.deep.equal(['a@x.test #1']);
      expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
      expect(q.size).to.equal(0);
      expect(records()).to.deep.equal([['warn', 'delivery notices not relayed', { count: 2, to: 'b@x.test,c@x.test' }]]);
    });
  });

  it(`close() gives up on a report still being sent after ${DSN_RELAY_CLOSE_WAIT_MS} ms and counts it as not relayed`, async () => {
    await withHeldTimers([DSN_RELAY_CLOSE_WAIT_MS], async (timers) => {
      const q = queue();
      q.add(notice('a@x.test'));
      q.add(notice('b@x.test'));
      let closed = false;
      const closing = q.close().then(() => (closed = true));
      await settle();
      expect(closed).to.equal(false);
      timers.armed[0]!.fire();
      await closing;
      expect(q.size).to.equal(0);
      expect(records()).to.deep.equal([['warn', 'delivery notices not relayed', { count: 2, to: 'a@x.test,b@x.test' }]]);
      // The relay answering afterwards changes nothing.
      calls[0]!.resolve();
      await settle();
      expect(sent()).to.deep.equal(['a@x.test #1']);
      expect(log.records).to.have.length(1);
    });
  });

  it('close() clears a pending retry timer; the report waiting for it is logged as not relayed', async () => {
    clock.use(1_700_000_000_000);
    await withHeldTimers([50], async (timers) => {
      const q = queue({ retryDelaysMs: [50] });
      await failFirst(q, timers);
      await q.close();
      expect(timers.cleared.has(timers.armed[0]!.handle)).to.equal(true);
      expect(records().slice(1)).to.deep.equal([['warn', 'delivery notices not relayed', { count: 1, to: 'a@x.test' }]]);
    });
  });

  it('close() during an attempt that fails: no retry starts, even one due at once', async () => {
    const q = queue({ retryDelaysMs: [0, 0] });
    q.add(notice('a@x.test'));
    const closing = q.close();
    calls[0]!.reject(new Error('down'));
    await closing;
    await settle();
    expect(sent()).to.deep.equal(['a@x.test #1']);
    expect(records()).to.deep.equal([
      ['warn', 'delivery notice failed', { to: 'a@x.test', reason: 'down', attempt: 1, retryInMs: 0 }],
      ['warn', 'delivery notices not relayed', { count: 1, to: 'a@x.test' }],
    ]);
  });
});
