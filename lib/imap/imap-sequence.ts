/**
 * Sequence sets (RFC 3501 §9 `sequence-set`, RFC 9051 §9, RFC 5182 `$`) and UID sets for COPYUID/APPENDUID
 * (RFC 4315 §3).
 *
 * A set is parsed once into ranges whose ends may be `*`; it is then resolved against the mailbox: either
 * against the message count (sequence numbers) or the ascending UID list (UID commands).
 */

/** One end of a range: a number or `*` (the largest number in use, RFC 3501 §9 `seq-number`). */
export type SequenceBound = number | '*';

/** `a:b` (unordered, RFC 3501 §9 `seq-range`) or a single number (`start === end`). */
export interface SequenceRange {
  readonly start: SequenceBound;
  readonly end: SequenceBound;
}

/** A parsed sequence set. `searchResult` is RFC 5182 `$` (the saved SEARCH result), whose ranges are empty. */
export interface SequenceSet {
  readonly ranges: readonly SequenceRange[];
  readonly searchResult: boolean;
}

/** Thrown by {@link parseSequenceSet} for malformed text; the session answers `BAD`. */
export class SequenceSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SequenceSetError';
  }
}

/** nz-number is 32-bit in RFC 3501 §9 (`number` < 4,294,967,296). */
const MAX_NUMBER = 0xffffffff;

function parseBound(text: string): SequenceBound {
  if (text === '*') return '*';
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new SequenceSetError('Invalid sequence number');
  const n = Number(text);
  if (n > MAX_NUMBER) throw new SequenceSetError('Sequence number out of range');
  return n;
}

/**
 * Parses `1:*`, `*:4`, `2,4:6`, `*`, and `$` (only when `allowSearchResult`, RFC 5182 §2.1: `$` stands alone).
 * Zero, empty elements, and ranges with more than two ends throw {@link SequenceSetError}.
 */
export function parseSequenceSet(text: string, options: { allowSearchResult?: boolean } = {}): SequenceSet {
  if (text === '$') {
    if (!options.allowSearchResult) throw new SequenceSetError('$ is not allowed here');
    return { ranges: [], searchResult: true };
  }
  if (text.length === 0) throw new SequenceSetError('Empty sequence set');
  const ranges = text.split(',').map((element): SequenceRange => {
    const ends = element.split(':');
    if (ends.length > 2) throw new SequenceSetError('Invalid range');
    const start = parseBound(ends[0]);
    const end = ends.length === 2 ? parseBound(ends[1]) : start;
    return { start, end };
  });
  return { ranges, searchResult: false };
}

/** Concrete, ordered, merged `[low, high]` intervals for the given value of `*`. */
function intervals(set: SequenceSet, star: number): Array<[number, number]> {
  const raw = set.ranges.map(({ start, end }): [number, number] => {
    const a = start === '*' ? star : start;
    const b = end === '*' ? star : end;
    return a <= b ? [a, b] : [b, a];
  });
  raw.sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const r of raw) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/**
 * True when the set names a message number above `count`, or uses `*` on an empty mailbox. RFC 9051 §9
 * (`seq-number`): the server should answer BAD to such a sequence-number command. Not for UID sets, where
 * unknown UIDs are simply skipped (RFC 3501 §6.4.8).
 */
export function exceedsMessageCount(set: SequenceSet, count: number): boolean {
  return set.ranges.some(
    ({ start, end }) =>
      (start === '*' && count === 0) ||
      (end === '*' && count === 0) ||
      (typeof start === 'number' && start > count) ||
      (typeof end === 'number' && end > count),
  );
}

/**
 * Message sequence numbers (1-based, ascending, unique) named by `set` in a mailbox of `count` messages;
 * `*` is `count`. Numbers above `count` are dropped (check {@link exceedsMessageCount} first for BAD).
 * `$` resolves to nothing here: the session substitutes its saved result.
 */
export function resolveSequenceNumbers(set: SequenceSet, count: number): number[] {
  const out: number[] = [];
  if (count === 0) return out;
  for (const [lo, hi] of intervals(set, count)) {
    for (let n = lo; n <= Math.min(hi, count); n++) out.push(n);
  }
  return out;
}

/** Index of the first element of ascending `values` that is ≥ `target`. */
function lowerBound(values: readonly number[], target: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Resolves a UID set against the mailbox's UIDs (ascending) and returns the **sequence numbers** (1-based,
 * ascending) of the matching messages; `uids[seq - 1]` gives each UID. `*` is the highest UID in the mailbox, and
 * ranges are unordered, so `100:*` with a highest UID of 50 matches UID 50 (RFC 3501 §6.4.8, RFC 9051 §6.4.9).
 * An empty mailbox matches nothing.
 */
export function resolveUidSet(set: SequenceSet, uids: readonly number[]): number[] {
  const out: number[] = [];
  if (uids.length === 0) return out;
  const star = uids[uids.length - 1];
  for (const [lo, hi] of intervals(set, star)) {
    for (let i = lowerBound(uids, lo); i < uids.length && uids[i] <= hi; i++) out.push(i + 1);
  }
  return out;
}

/**
 * True when `value` is in the set, with `*` standing for `star` (the highest sequence number or UID in use).
 * Used by SEARCH, which evaluates message by message.
 */
export function sequenceSetContains(set: SequenceSet, value: number, star: number): boolean {
  return set.ranges.some(({ start, end }) => {
    const a = start === '*' ? star : start;
    const b = end === '*' ? star : end;
    return value >= Math.min(a, b) && value <= Math.max(a, b);
  });
}

/**
 * Compresses numbers into sequence-set text: `[1, 2, 3, 5]` → `1:3,5`. By default the numbers are sorted and
 * de-duplicated (SEARCH results, ESEARCH ALL). With `keepOrder`, runs are only formed from consecutive ascending
 * numbers in the given order, as COPYUID needs: its source and destination sets pair up element by element
 * (RFC 4315 §3). Returns an empty string for no numbers.
 */
export function formatSequenceSet(numbers: Iterable<number>, options: { keepOrder?: boolean } = {}): string {
  let list = [...numbers];
  if (!options.keepOrder) list = [...new Set(list)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < list.length) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j] + 1) j++;
    parts.push(j === i ? String(list[i]) : `${list[i]}:${list[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * The numbers of `set` (with `*` = `star`, none above `max`) that are not in `present` (ascending), as
 * sequence-set text, or `''`.
 * Works on ranges, so a set like `1:4294967295` costs no more than the messages present: used for QRESYNC's
 * `VANISHED (EARLIER)` (RFC 7162 §3.2.5.1, §3.2.6), computed from the UIDs the client says it knows.
 */
export function missingFromSet(set: SequenceSet, star: number, present: readonly number[], max = Number.MAX_SAFE_INTEGER): string {
  const parts: string[] = [];
  const push = (lo: number, hi: number): void => {
    if (lo <= hi) parts.push(lo === hi ? String(lo) : `${lo}:${hi}`);
  };
  for (const [lo, top] of intervals(set, star)) {
    const hi = Math.min(top, max);
    let next = lo;
    for (let i = lowerBound(present, lo); i < present.length && present[i] <= hi; i++) {
      push(next, present[i] - 1);
      next = present[i] + 1;
    }
    push(next, hi);
  }
  return parts.join(',');
}
