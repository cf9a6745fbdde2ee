import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { isAtomNamed, valueText, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { parseSearch, SearchError, SEARCH_CHARSETS } from '../imap-search.js';
import { matchesSearch } from '../imap-search-match.js';
import { formatSequenceSet } from '../imap-sequence.js';
import { headerFields, SORT_KEYS, sortItems, type SortCriterion, type SortItem } from '../imap-sort.js';
import { threadOrderedSubject, threadReferences } from '../imap-thread.js';

/** THREAD algorithms offered (RFC 5256 §2.1, §2.2). */
export const THREAD_ALGORITHMS = ['ORDEREDSUBJECT', 'REFERENCES'] as const;

function sortCriteria(value: ImapValue | undefined): SortCriterion[] {
  if (value?.type !== 'list' || value.items.length === 0) throw new ProtocolSyntaxError('Sort criteria expected');
  const out: SortCriterion[] = [];
  let reverse = false;
  for (const item of value.items) {
    const name = item.type === 'atom' ? item.value.toUpperCase() : '';
    if (name === 'REVERSE' && !reverse) {
      reverse = true;
      continue;
    }
    const key = SORT_KEYS.find((k) => k === name);
    if (!key) throw new ProtocolSyntaxError('Unknown sort key');
    out.push({ key, reverse });
    reverse = false;
  }
  if (reverse) throw new ProtocolSyntaxError('REVERSE needs a sort key');
  return out;
}

/** The messages matching the search keys, with their headers loaded, in sequence order. */
async function matching(s: ImapConnection, charsetArg: ImapValue | undefined, keys: readonly ImapValue[]): Promise<SortItem[]> {
  const charset = valueText(charsetArg)?.toUpperCase();
  if (!charset || !SEARCH_CHARSETS.some((c) => c === charset)) throw new ImapError('NO', 'BADCHARSET (UTF-8 US-ASCII)', 'Unsupported charset');
  let key;
  try {
    key = parseSearch(keys).key;
  } catch (err) {
    if (err instanceof SearchError) throw new ProtocolSyntaxError(err.message);
    throw err;
  }
  const mailbox = s.selected;
  const context = { messageCount: mailbox.count, maxUid: mailbox.maxUid };
  const items: SortItem[] = [];
  for (let seq = 1; seq <= mailbox.count; seq++) {
    const m = mailbox.at(seq);
    const candidate = { seq, uid: m.uid, flags: m.flags, recent: mailbox.isRecent(m.uid), internalDate: m.internalDate, size: m.size, modseq: m.modseq, raw: () => m.raw() };
    try {
      if (!(await matchesSearch(key, candidate, context))) continue;
      items.push({ seq, internalDate: m.internalDate, size: m.size, fields: headerFields(await m.raw()) });
    } catch {
      // Expunged by another session meanwhile: left out (RFC 3501 §7.4.1).
    }
  }
  return items;
}

/**
 * SORT and UID SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO): `SORT (criteria) charset keys` → `* SORT n…`,
 * or with ESORT `SORT RETURN (MIN MAX COUNT ALL) …` → `* ESEARCH` (RFC 5267 §3).
 */
export async function sort(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID SORT';
  const args = [...cmd.args];
  let ret: string[] | undefined;
  if (isAtomNamed(args[0], 'RETURN')) {
    const list = args[1];
    if (list?.type !== 'list') throw new ProtocolSyntaxError('RETURN (options) expected');
    ret = list.items.map((i) => (i.type === 'atom' ? i.value.toUpperCase() : ''));
    if (ret.some((o) => !['MIN', 'MAX', 'COUNT', 'ALL'].includes(o))) throw new ProtocolSyntaxError('Unknown SORT RETURN option');
    if (ret.length === 0) ret = ['ALL'];
    args.splice(0, 2);
  }
  const [criteriaArg, charsetArg, ...keys] = args;
  const criteria = sortCriteria(criteriaArg);
  if (keys.length === 0) throw new ProtocolSyntaxError('SORT (criteria) charset search-keys');
  const items = await matching(s, charsetArg, keys);
  const ids = sortItems(items, criteria).map((seq) => (uid ? s.selected.at(seq).uid : seq));
  if (!ret) s.send(ids.length > 0 ? `* SORT ${ids.join(' ')}\r\n` : '* SORT\r\n');
  else {
    // RFC 5267 §3: MIN and MAX are the first and last in sort order; ALL keeps the sort order.
    let line = `* ESEARCH (TAG "${cmd.tag}")${uid ? ' UID' : ''}`;
    if (ids.length > 0 && ret.includes('MIN')) line += ` MIN ${ids[0]}`;
    if (ids.length > 0 && ret.includes('MAX')) line += ` MAX ${ids[ids.length - 1]}`;
    if (ret.includes('COUNT')) line += ` COUNT ${ids.length}`;
    if (ids.length > 0 && ret.includes('ALL')) line += ` ALL ${formatSequenceSet(ids, { keepOrder: true })}`;
    s.send(`${line}\r\n`);
  }
  await s.ok(`${cmd.command} completed`);
}

/** THREAD and UID THREAD (RFC 5256 §4): `THREAD algorithm charset keys` → `* THREAD (…)…`. */
export async function thread(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID THREAD';
  const [algArg, charsetArg, ...keys] = cmd.args;
  const algorithm = algArg?.type === 'atom' ? THREAD_ALGORITHMS.find((a) => a === algArg.value.toUpperCase()) : undefined;
  if (!algorithm) throw new ProtocolSyntaxError('Unknown threading algorithm');
  if (keys.length === 0) throw new ProtocolSyntaxError('THREAD algorithm charset search-keys');
  const items = await matching(s, charsetArg, keys);
  const mapped = uid ? items.map((i) => ({ ...i, seq: s.selected.at(i.seq).uid })) : items;
  const text = algorithm === 'REFERENCES' ? threadReferences(mapped) : threadOrderedSubject(mapped);
  s.send(`* THREAD${text ? ` ${text}` : ''}\r\n`);
  await s.ok(`${cmd.command} completed`);
}
