import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { isAtomNamed, valueText, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { parseSearch, SearchError, usesModseq, type SearchProgram } from '../imap-search.js';
import { matchesSearch } from '../imap-search-match.js';
import { formatSequenceSet } from '../imap-sequence.js';

/** ESEARCH result options (RFC 4731 §3.1), UPDATE and CONTEXT (RFC 5267 §4.1), PARTIAL (RFC 9394 §3.1). */
const RETURN_OPTIONS = ['MIN', 'MAX', 'ALL', 'COUNT', 'UPDATE', 'CONTEXT', 'PARTIAL'] as const;
type ReturnOption = (typeof RETURN_OPTIONS)[number];

/** `RETURN (…)`: the options and PARTIAL's range (1-based positions; negative ones count from the end). */
interface ReturnSpec {
  readonly options: Set<ReturnOption>;
  readonly partial?: readonly [number, number];
}

/** `RETURN (…)` before the keys, or undefined for a plain SEARCH. `()` means ALL (RFC 4731 §3.1). */
function returnOptions(args: ImapValue[]): ReturnSpec | undefined {
  if (!isAtomNamed(args[0], 'RETURN')) return undefined;
  const list = args[1];
  if (list?.type !== 'list') throw new ProtocolSyntaxError('RETURN (options) expected');
  args.splice(0, 2);
  const options = new Set<ReturnOption>();
  let partial: [number, number] | undefined;
  for (let i = 0; i < list.items.length; i++) {
    const item = list.items[i];
    const name = item.type === 'atom' ? RETURN_OPTIONS.find((o) => o === item.value.toUpperCase()) : undefined;
    if (!name) throw new ProtocolSyntaxError('Unknown SEARCH RETURN option');
    if (name === 'PARTIAL') {
      const m = /^(-?[1-9]\d{0,9}):(-?[1-9]\d{0,9})$/.exec(valueText(list.items[++i]) ?? '');
      if (!m || m[1].startsWith('-') !== m[2].startsWith('-')) throw new ProtocolSyntaxError('PARTIAL range expected');
      const [a, b] = [Number(m[1]), Number(m[2])];
      partial = a < 0 ? [Math.max(a, b), Math.min(a, b)] : [Math.min(a, b), Math.max(a, b)];
    }
    options.add(name);
  }
  if (options.size === 0) options.add('ALL');
  return partial ? { options, partial } : { options };
}

/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8) with CHARSET US-ASCII or UTF-8. Answers `* SEARCH n…`
 * (sequence numbers, or UIDs for UID SEARCH), or with `RETURN (MIN MAX ALL COUNT)` one
 * `* ESEARCH (TAG "t") [UID] …` (RFC 4731 §3.1). A MODSEQ key (RFC 7162 §3.1.5) turns CONDSTORE on and adds the
 * highest modseq of the matches: `(MODSEQ n)` after SEARCH results, `MODSEQ n` in ESEARCH.
 */
export async function search(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID SEARCH';
  const args = [...cmd.args];
  const spec = returnOptions(args);
  const options = spec?.options;
  let program: SearchProgram;
  try {
    program = parseSearch(args);
  } catch (err) {
    if (err instanceof SearchError) {
      if (err.code === 'BADCHARSET') throw new ImapError('NO', 'BADCHARSET (UTF-8 US-ASCII)', 'Unsupported charset');
      throw new ProtocolSyntaxError(err.message);
    }
    throw err;
  }
  const withModseq = usesModseq(program.key);
  if (withModseq) s.enableExtension('CONDSTORE');
  const mailbox = s.selected;
  const context = { messageCount: mailbox.count, maxUid: mailbox.maxUid };
  const found: number[] = [];
  const modseqs: number[] = [];
  for (let seq = 1; seq <= mailbox.count; seq++) {
    const m = mailbox.at(seq);
    const candidate = {
      seq,
      uid: m.uid,
      flags: m.flags,
      recent: mailbox.isRecent(m.uid),
      internalDate: m.internalDate,
      size: m.size,
      modseq: m.modseq,
      raw: () => m.raw(),
    };
    // A message expunged by another session meanwhile (its octets gone) simply does not match.
    const hit = await matchesSearch(program.key, candidate, context).catch(() => false);
    if (!hit) continue;
    found.push(uid ? m.uid : seq);
    modseqs.push(m.modseq);
  }
  const highest = (indexes: number[]): number => (withModseq ? Math.max(0, ...indexes.map((i) => modseqs[i])) : 0);
  const all = modseqs.map((_, i) => i);
  if (options) {
    // RFC 4731 §3.2: with only MIN and/or MAX, MODSEQ is that of the messages returned, else of every match.
    const onlyEnds = !options.has('ALL') && !options.has('COUNT');
    const ends = [...(options.has('MIN') ? [0] : []), ...(options.has('MAX') ? [found.length - 1] : [])].filter((i) => i >= 0);
    s.send(esearchLine(cmd.tag, uid, spec as ReturnSpec, found, highest(onlyEnds ? ends : all)));
    if (options.has('UPDATE') && !mailbox.contexts.add(cmd.tag, uid, program.key, found.map((n) => (uid ? n : mailbox.at(n).uid)))) {
      throw new ImapError('NO', 'LIMIT', 'Too many searches with UPDATE');
    }
  } else if (found.length === 0) s.send('* SEARCH\r\n');
  else s.send(`* SEARCH ${found.join(' ')}${withModseq ? ` (MODSEQ ${highest(all)})` : ''}\r\n`);
  await s.ok(`${cmd.command} completed`);
}

/**
 * `found` is ascending. `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [PARTIAL (range set)]
 * [MODSEQ n]`: MIN/MAX/ALL only when something matched; PARTIAL's set is NIL when its range holds nothing.
 */
function esearchLine(tag: string, uid: boolean, spec: ReturnSpec, found: readonly number[], modseq: number): string {
  const options = spec.options;
  let line = `* ESEARCH (TAG "${tag.replace(/(["\\])/g, '\\$1')}")${uid ? ' UID' : ''}`;
  if (found.length > 0 && options.has('MIN')) line += ` MIN ${found[0]}`;
  if (found.length > 0 && options.has('MAX')) line += ` MAX ${found[found.length - 1]}`;
  if (options.has('COUNT')) line += ` COUNT ${found.length}`;
  if (found.length > 0 && options.has('ALL')) line += ` ALL ${formatSequenceSet(found)}`;
  if (spec.partial) {
    const [a, b] = spec.partial;
    // RFC 9394 §3.1: positions in the result; negative ones count from its end (-1 is the last).
    const slice = a > 0 ? found.slice(a - 1, b) : found.slice(Math.max(0, found.length + b), found.length + a + 1);
    line += ` PARTIAL (${a}:${b} ${slice.length > 0 ? formatSequenceSet(slice) : 'NIL'})`;
  }
  if (modseq > 0 && found.length > 0) line += ` MODSEQ ${modseq}`;
  return `${line}\r\n`;
}

/** CANCELUPDATE "tag" … (RFC 5267 §4.3): ends the updates of those searches. */
export async function cancelUpdate(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const tags = cmd.args.map((a) => (a.type === 'quoted' || a.type === 'literal' ? valueText(a) : undefined));
  if (tags.length === 0 || tags.some((t) => t === undefined)) throw new ProtocolSyntaxError('CANCELUPDATE "tag" …');
  for (const tag of tags) if (!s.selected.contexts.cancel(tag as string)) throw new ProtocolSyntaxError('No search with that tag');
  await s.ok('CANCELUPDATE completed');
}
