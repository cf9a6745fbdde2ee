import { SYSTEM_FLAGS } from '../../contracts/mail-store.js';

/** System flags in canonical spelling (RFC 3501 §2.3.2), keyed by their lower-case form. */
const SYSTEM_FLAG_BY_KEY: ReadonlyMap<string, string> = new Map(SYSTEM_FLAGS.map((flag) => [flag.toLowerCase(), flag]));

/** The flag every unseen count looks for. */
export const SEEN = '\\Seen';

/**
 * Canonical, de-duplicated flags: system flags get their canonical case, keywords keep the first spelling seen
 * (flags compare case-insensitively). `\Recent` and unknown `\…` flags are dropped: clients cannot set them
 * (RFC 3501 §2.3.2), and `\Recent` belongs to the IMAP session layer.
 */
export function normalizeFlags(flags: Iterable<string>): string[] {
  const byKey = new Map<string, string>();
  for (const flag of flags) {
    if (flag.length === 0) continue;
    const key = flag.toLowerCase();
    if (flag.startsWith('\\')) {
      const system = SYSTEM_FLAG_BY_KEY.get(key);
      if (system !== undefined) byKey.set(key, system);
      continue;
    }
    if (!byKey.has(key)) byKey.set(key, flag);
  }
  return [...byKey.values()];
}

/** The flags after a STORE-like change (`set` replaces, `add` unions, `remove` subtracts), case-insensitively. */
export function applyFlags(current: Iterable<string>, change: string[], mode: 'set' | 'add' | 'remove'): Set<string> {
  const wanted = normalizeFlags(change);
  if (mode === 'set') return new Set(wanted);
  const result = new Map(normalizeFlags(current).map((flag) => [flag.toLowerCase(), flag]));
  for (const flag of wanted) {
    if (mode === 'add') {
      if (!result.has(flag.toLowerCase())) result.set(flag.toLowerCase(), flag);
    } else {
      result.delete(flag.toLowerCase());
    }
  }
  return new Set(result.values());
}

/** True when both sets hold the same flags. */
export function sameFlags(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((flag) => b.has(flag));
}

/** True for a keyword (a flag that is not a system flag). */
export function isKeyword(flag: string): boolean {
  return !flag.startsWith('\\');
}
