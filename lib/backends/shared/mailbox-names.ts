import { MailStoreError } from '../../contracts/mail-store.js';

/** The hierarchy separator of every Postern store (RFC 3501 §5.1.1). */
export const SEPARATOR = '/';

/** The one mailbox every user has (RFC 3501 §5.1). */
export const INBOX = 'INBOX';

/**
 * Canonical form of a mailbox name: `INBOX` as first level is case-insensitive (RFC 3501 §5.1), everything else is
 * kept as given.
 * @throws MailStoreError `CANNOT` for an empty name, an empty level (`a//b`, leading or trailing `/`), a control
 *   character, or the LIST wildcards `*` and `%` (RFC 3501 §6.3.8), which no client could address afterwards.
 */
export function normalizeMailboxName(name: string): string {
  const levels = name.split(SEPARATOR);
  if (name.length === 0 || levels.some((level) => level.length === 0)) {
    throw new MailStoreError('CANNOT', 'invalid mailbox name');
  }
  // RFC 3501 §5.1: names are 7-bit/UTF-8 text; control characters and wildcards cannot round-trip through LIST.
  if (/[\u0000-\u001f\u007f*%]/u.test(name)) {
    throw new MailStoreError('CANNOT', 'invalid character in mailbox name');
  }
  if (levels[0]!.toUpperCase() === INBOX) levels[0] = INBOX;
  return levels.join(SEPARATOR);
}

/** True when `name` (canonical) is INBOX itself. */
export function isInbox(name: string): boolean {
  return name === INBOX;
}

/** True when `name` lies strictly below `ancestor` in the hierarchy. */
export function isBelow(name: string, ancestor: string): boolean {
  return name.startsWith(ancestor + SEPARATOR);
}

/** The superior levels of a name, outermost first: `a/b/c` gives `['a', 'a/b']`. */
export function superiorsOf(name: string): string[] {
  const levels = name.split(SEPARATOR);
  const result: string[] = [];
  for (let i = 1; i < levels.length; i++) result.push(levels.slice(0, i).join(SEPARATOR));
  return result;
}

/** One LIST row computed from the set of existing mailboxes. */
export interface HierarchyEntry {
  readonly name: string;
  /** Implicit parent of existing mailboxes, not itself a mailbox (\Noselect). */
  readonly noselect: boolean;
  readonly hasChildren: boolean;
}

/** Sort order of LIST output: INBOX first, then by code point. */
export function compareMailboxNames(a: string, b: string): number {
  if (a === b) return 0;
  if (isInbox(a)) return -1;
  if (isInbox(b)) return 1;
  return a < b ? -1 : 1;
}

/**
 * Every mailbox plus the implicit parents of existing mailboxes, with child flags (RFC 3501 §6.3.8, RFC 3348),
 * sorted with {@link compareMailboxNames}.
 */
export function hierarchyOf(existing: Iterable<string>): HierarchyEntry[] {
  const real = new Set(existing);
  const all = new Set(real);
  for (const name of real) for (const superior of superiorsOf(name)) all.add(superior);
  const names = [...all].sort(compareMailboxNames);
  return names.map((name) => ({
    name,
    noselect: !real.has(name),
    hasChildren: names.some((other) => isBelow(other, name)),
  }));
}

/**
 * The (old, new) name pairs of a RENAME with its inferior names (RFC 3501 §6.3.5), parents first.
 * @throws MailStoreError `CANNOT` when `to` lies below `from`, `ALREADY_EXISTS` when a target name is taken.
 */
export function renamePlan(existing: Iterable<string>, from: string, to: string): Array<[string, string]> {
  if (to === from) throw new MailStoreError('ALREADY_EXISTS', 'target mailbox exists');
  if (isBelow(to, from)) throw new MailStoreError('CANNOT', 'cannot rename a mailbox below itself');
  const names = [...existing];
  // RFC 3501 §6.3.5: INBOX's inferiors are not renamed with it.
  const moving = names.filter((name) => name === from || (!isInbox(from) && isBelow(name, from))).sort();
  const taken = new Set(names);
  const plan = moving.map((name): [string, string] => [name, to + name.slice(from.length)]);
  if (plan.some(([, target]) => taken.has(target))) throw new MailStoreError('ALREADY_EXISTS', 'target mailbox exists');
  return plan;
}
