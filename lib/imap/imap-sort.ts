/**
 * SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957): the sort keys of a message and their comparison, plus the base
 * subject of RFC 5256 §2.1 that SORT SUBJECT and THREAD share. Strings compare with `i;ascii-casemap`
 * (ASCII letters case-folded); ties are broken by sequence number (RFC 5256 §3).
 */
import { decodeHeaderWords } from './imap-decode.js';
import { parseAddressList } from './imap-envelope.js';
import { headerValue, parseHeader, type HeaderField } from './imap-mime.js';

/** One sort criterion. */
export interface SortCriterion {
  readonly key: SortKeyName;
  readonly reverse: boolean;
}
/** RFC 5256 §3 keys plus RFC 5957 DISPLAYFROM/DISPLAYTO. */
export type SortKeyName = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';
/** Every key name. */
export const SORT_KEYS: readonly SortKeyName[] = ['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'];

/** What sorting and threading need of one message: its number, arrival and size, and its parsed header. */
export interface SortItem {
  readonly seq: number;
  readonly internalDate: Date;
  readonly size: number;
  readonly fields: readonly HeaderField[];
}

/** Reads the header of a raw message for {@link SortItem.fields}. */
export function headerFields(raw: Buffer): HeaderField[] {
  return parseHeader(raw, 0, raw.length).fields;
}

const BLOB = /^\[[^[\]]*\][ ]*/;
const REFWD = /^(?:re|fwd?)[ ]*(?:\[[^[\]]*\][ ]*)?:/i;

/**
 * RFC 5256 §2.1 base subject: decoded, white space collapsed, trailers `(fwd)`, leaders `Re:`/`Fw:`/`Fwd:` with
 * `[blob]`s and a `[Fwd: …]` wrapper removed. `isReply` says whether anything of the kind was removed (§2.2 step 5).
 */
export function baseSubject(value: string | undefined): { subject: string; isReply: boolean } {
  let s = decodeHeaderWords(value ?? '').replace(/[\t\r\n]+/g, ' ').replace(/ {2,}/g, ' ');
  let isReply = false;
  for (let guard = 0; guard < 100; guard++) {
    // Step 2: trailers.
    for (;;) {
      const t = s.replace(/(?:\(fwd\)| )+$/i, '');
      if (t === s) break;
      if (/\(fwd\)$/i.test(s)) isReply = true;
      s = t;
    }
    // Steps 3–5: leaders and blobs.
    for (;;) {
      const before = s;
      s = s.replace(/^ +/, '');
      let m: RegExpExecArray | null;
      let rest = s;
      while ((m = BLOB.exec(rest))) rest = rest.slice(m[0].length);
      if ((m = REFWD.exec(rest))) {
        s = rest.slice(m[0].length);
        isReply = true;
      } else if ((m = BLOB.exec(s)) && s.slice(m[0].length).trim() !== '') {
        s = s.slice(m[0].length);
      }
      if (s === before) break;
    }
    // Step 6: [fwd: …] wrapper.
    if (/^\[fwd:/i.test(s) && s.endsWith(']')) {
      s = s.slice(5, -1);
      isReply = true;
      continue;
    }
    break;
  }
  return { subject: s.trim(), isReply };
}

/**
 * The sent date of RFC 5256 §2.2: the Date header in UTC, or the internal date when it is missing or unparseable.
 */
export function sentDate(item: SortItem): number {
  const value = headerValue(item.fields, 'date');
  const t = value ? Date.parse(value.replace(/\([^)]*\)/g, '').trim()) : NaN;
  return Number.isNaN(t) ? item.internalDate.getTime() : t;
}

function firstAddress(item: SortItem, field: string): ReturnType<typeof parseAddressList>[number] | undefined {
  const value = headerValue(item.fields, field);
  // The first entry even when it starts a group: its mailbox is the group name (as Dovecot sorts).
  return value === undefined ? undefined : parseAddressList(value)[0];
}

/** RFC 5957 §3: the display name (decoded) of the first address, else its addr-spec. */
function display(item: SortItem, field: string): string {
  const a = firstAddress(item, field);
  if (!a) return '';
  const name = a[0] ? decodeHeaderWords(a[0]).trim() : '';
  if (name !== '') return name;
  return a[3] ? `${a[2] ?? ''}@${a[3]}` : (a[2] ?? '');
}

function keyValue(item: SortItem, key: SortKeyName): string | number {
  switch (key) {
    case 'ARRIVAL':
      return item.internalDate.getTime();
    case 'DATE':
      return sentDate(item);
    case 'SIZE':
      return item.size;
    case 'SUBJECT':
      return baseSubject(headerValue(item.fields, 'subject')).subject;
    case 'FROM':
    case 'TO':
    case 'CC':
      // RFC 5256 §3: the addr-mailbox (local part) of the first address.
      return firstAddress(item, key.toLowerCase())?.[2] ?? '';
    case 'DISPLAYFROM':
      return display(item, 'from');
    case 'DISPLAYTO':
      return display(item, 'to');
  }
}

/** i;ascii-casemap (RFC 4790 §9.2): ASCII letters upper-cased, then octet order. */
function compareStrings(a: string, b: string): number {
  const x = a.replace(/[a-z]+/g, (m) => m.toUpperCase());
  const y = b.replace(/[a-z]+/g, (m) => m.toUpperCase());
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Sorts by the criteria in order, ties by sequence number (RFC 5256 §3). Returns sequence numbers. */
export function sortItems(items: readonly SortItem[], criteria: readonly SortCriterion[]): number[] {
  const keyed = items.map((item) => ({ item, keys: criteria.map((c) => keyValue(item, c.key)) }));
  keyed.sort((a, b) => {
    for (const [i, c] of criteria.entries()) {
      const x = a.keys[i];
      const y = b.keys[i];
      const d = typeof x === 'number' && typeof y === 'number' ? x - y : compareStrings(String(x), String(y));
      if (d !== 0) return c.reverse ? -d : d;
    }
    return a.item.seq - b.item.seq;
  });
  return keyed.map((k) => k.item.seq);
}
