/** One timer {@link heldTimers} holds: its delay, a `fire` that runs its callback with its arguments, its real handle. */
export interface HeldTimer {
  readonly ms: number;
  readonly fire: () => void;
  readonly handle: NodeJS.Timeout;
}

/**
 * Replaces the global `setTimeout`/`clearTimeout` until `restore()`: timers set with one of `delays` are held (a real,
 * empty timer of the same delay stands in, so `unref`/`hasRef` work on the handle) and run only when the test calls
 * `fire`; other timers run as usual. `cleared` collects every handle passed to `clearTimeout`. For code whose timers
 * matter only by whether they are armed, unref'd, cleared or what they do when they fire (grace periods, backoffs).
 */
export function heldTimers(...delays: number[]): { armed: HeldTimer[]; cleared: Set<unknown>; restore: () => void } {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const armed: HeldTimer[] = [];
  const cleared = new Set<unknown>();
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (ms === undefined || !delays.includes(ms)) return realSet(fn, ms, ...args);
    const handle = realSet(() => undefined, ms);
    armed.push({ ms, fire: () => fn(...args), handle });
    return handle;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((t: NodeJS.Timeout | undefined) => {
    cleared.add(t);
    realClear(t);
  }) as typeof clearTimeout;
  return {
    armed,
    cleared,
    restore: () => {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

/**
 * {@link heldTimers} for `setInterval`/`clearInterval`: intervals set with one of `delays` are held (a real, empty
 * interval of the same period stands in) and run only when the test calls `fire`, once per call; `cleared` collects
 * every handle passed to `clearInterval`. For pollers whose period matters only by whether they are armed, unref'd,
 * cleared or what one tick does.
 */
export function heldIntervals(...delays: number[]): { armed: HeldTimer[]; cleared: Set<unknown>; restore: () => void } {
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  const armed: HeldTimer[] = [];
  const cleared = new Set<unknown>();
  globalThis.setInterval = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (ms === undefined || !delays.includes(ms)) return realSet(fn, ms, ...args);
    const handle = realSet(() => undefined, ms);
    armed.push({ ms, fire: () => fn(...args), handle });
    return handle;
  }) as typeof setInterval;
  globalThis.clearInterval = ((t: NodeJS.Timeout | undefined) => {
    cleared.add(t);
    realClear(t);
  }) as typeof clearInterval;
  return {
    armed,
    cleared,
    restore: () => {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
    },
  };
}
