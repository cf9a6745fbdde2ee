import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

/** How often the descriptor count is checked while a listener runs (one directory read of /proc/self/fd). */
export const FD_CHECK_INTERVAL_MS = 1_000;
/** Share of the soft RLIMIT_NOFILE in use from which a warning is logged. */
export const FD_WARN_RATIO = 0.9;

/**
 * Watches this process's open file descriptors against its soft limit (Linux `/proc`; elsewhere it does nothing)
 * and logs `warn file descriptors nearly exhausted` when they pass {@link FD_WARN_RATIO}, with a pause doubling from
 * 1 s to 5 min between warnings. Needed because libuv hides `EMFILE` on accept: it closes the connections it cannot
 * take (its reserve-descriptor trick) and tells nobody. Shared by every `TcpServer` of the process: the first
 * `start()` arms it, the last `close()` stops it; its timer never keeps the process alive.
 */
export class FdMonitor {
  private static users = new Set<object>();
  private static timer?: NodeJS.Timeout;
  private static log?: Logger;
  private static backoffMs = 0;
  private static lastWarn = 0;
  private static lastLimit?: number;

  /** Starts watching for `owner` (a listener); the first owner's logger is used. */
  static acquire(owner: object, log: Logger): void {
    FdMonitor.users.add(owner);
    FdMonitor.log ??= log;
    FdMonitor.lastLimit ??= limit();
    if (FdMonitor.timer || FdMonitor.lastLimit === undefined) return;
    FdMonitor.timer = setInterval(() => FdMonitor.check(), FD_CHECK_INTERVAL_MS);
    FdMonitor.timer.unref();
  }

  /** Stops watching for `owner`; the timer stops with the last one. */
  static release(owner: object): void {
    FdMonitor.users.delete(owner);
    if (FdMonitor.users.size > 0) return;
    clearInterval(FdMonitor.timer);
    FdMonitor.timer = undefined;
    FdMonitor.log = undefined;
  }

  /** One check (also callable directly); returns the count and limit seen. */
  static check(): { open: number; limit: number } | undefined {
    // At the limit even reading /proc fails with EMFILE: then the last limit seen is used and the count is "all".
    const max = limit() ?? FdMonitor.lastLimit;
    if (max === undefined) return undefined;
    FdMonitor.lastLimit = max;
    let open: number;
    try {
      open = readdirSync('/proc/self/fd').length;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EMFILE' && code !== 'ENFILE') return undefined;
      open = max;
    }
    const now = Date.now();
    if (open >= max * FD_WARN_RATIO && now - FdMonitor.lastWarn >= FdMonitor.backoffMs) {
      FdMonitor.log?.warn('file descriptors nearly exhausted', { open, limit: max, nextWarnMs: FdMonitor.backoffMs });
      FdMonitor.backoffMs = FdMonitor.backoffMs === 0 ? 1_000 : Math.min(FdMonitor.backoffMs * 2, 300_000);
      FdMonitor.lastWarn = now;
    }
    return { open, limit: max };
  }
}

/** The soft RLIMIT_NOFILE from /proc/self/limits (read each time: `prlimit` can change it), or undefined. */
function limit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
