/**
 * The command line's error type and the small readers every option group uses: a bad flag is a {@link UsageError}
 * (one line, exit code 2), never a stack trace.
 */
import { readFileSync } from 'node:fs';

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A whole-number flag, undefined when absent. */
export function wholeNumber(str: (k: string) => string | undefined, flag: string): number | undefined {
  const v = str(flag);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag}: expected a whole number, got "${v}"`);
  return Number(v);
}

/** Runs `fn`, turning its Error into a {@link UsageError} with the same message. */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A file named by `flag`, as UTF-8 text; an unreadable file is a {@link UsageError}. */
export function readFile(path: string, flag: string): string {
  return readFileBuffer(path, flag).toString('utf8');
}

/** A file named by `flag`, as bytes; an unreadable file is a {@link UsageError}. */
export function readFileBuffer(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
