import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { isAtomNamed, type ImapValue } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { parseSearch, SearchError, usesModseq, type SearchProgram } from '../imap-search.js';
import { matchesSearch } from '../imap-search-match.js';
import { formatSequenceSet } from '../imap-sequence.js';

/** ESEARCH result options (RFC 4731 §3.1). */
const RETURN_OPTIONS = ['MIN', 'MAX', 'ALL', 'COUNT'] as const;
type ReturnOption = (typeof RETURN_OPTIONS)[number];

/** `RETURN (…)` before the keys (RFC 4731 §3.1): the options, or undefined for a plain SEARCH. `()` means ALL. */
function returnOptions(args: ImapValue[]): Set<ReturnOption> | undefined {
  if (!isAtomNamed(args[0], 'RETURN')) return undefined;
  const list = args[1];
  if (list?.type !== 'list') throw new ProtocolSyntaxError('RETURN (options) expected');
  args.splice(0, 2);
  const options = new Set<ReturnOption>();
  for (const item of list.items) {
    const name = item.type === 'atom' ? RETURN_OPTIONS.find((o) => o === item.value.toUpperCase()) : undefined;
    if (!name) throw new ProtocolSyntaxError('Unknown SEARCH RETURN option');
    options.add(name);
  }
  if (options.size === 0) options.add('ALL');
  return options;
}

/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8) with CHARSET US-ASCII or UTF-8. Answers `* SEARCH n…`
 * (sequence numbers, or UIDs for UID SEARCH), or with `RETURN (MIN MAX ALL COUNT)` one
 * `* ESEARCH (TAG "t") [UID] …` (RFC 4731 §3.1). A MODSEQ key (RFC 7162 §3.1.5) turns CONDSTORE on and adds the
 * highest modseq of the matches: `(MODSEQ n)` after SEARCH results, `MODSEQ n` in ESEARCH.
 */
export async function search(s: ImapConnection): Promise<void> {
  const uid = s.command.command === 'UID SEARCH';
  const args = [...s.command.args];
  const options = returnOptions(args);
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
    s.send(esearchLine(s.command.tag, uid, options, found, highest(onlyEnds ? ends : all)));
  } else if (found.length === 0) s.send('* SEARCH\r\n');
  else s.send(`* SEARCH ${found.join(' ')}${withModseq ? ` (MODSEQ ${highest(all)})` : ''}\r\n`);
  await s.ok(`${s.command.command} completed`);
}

/** `found` is ascending. `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ n]`: MIN/MAX/ALL only when something matched. */
function esearchLine(tag: string, uid: boolean, options: ReadonlySet<ReturnOption>, found: readonly number[], modseq: number): string {
  let line = `* ESEARCH (TAG "${tag.replace(/(["\\])/g, '\\$1')}")${uid ? ' UID' : ''}`;
  if (found.length > 0 && options.has('MIN')) line += ` MIN ${found[0]}`;
  if (found.length > 0 && options.has('MAX')) line += ` MAX ${found[found.length - 1]}`;
  if (options.has('COUNT')) line += ` COUNT ${found.length}`;
  if (found.length > 0 && options.has('ALL')) line += ` ALL ${formatSequenceSet(found)}`;
  if (modseq > 0 && found.length > 0) line += ` MODSEQ ${modseq}`;
  return `${line}\r\n`;
}
