/**
 * A settable clock for a describe block: `use(t)` makes `Date.now()` answer `clock.t` (move it by assigning `t`)
 * until the end of the running case, when the real `Date.now` is put back. For code that compares wall-clock times
 * (rate limits, stale ages, re-check intervals) without waiting for them.
 */
export interface TestClock {
  t: number;
  use(t: number): void;
}

export function testClock(): TestClock {
  const realNow = Date.now;
  const clock: TestClock = {
    t: 0,
    use(t: number): void {
      clock.t = t;
      Date.now = () => clock.t;
    },
  };
  afterEach(() => {
    Date.now = realNow;
  });
  return clock;
}
