import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { isAtomNamed } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { matchesSearch, parseSearch, SearchError, type SearchProgram } from '../imap-search.js';

/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8) with CHARSET US-ASCII or UTF-8. Answers `* SEARCH n…`
 * (sequence numbers, or UIDs for UID SEARCH). ESEARCH `RETURN (…)` is not supported (not advertised).
 */
export async function search(s: ImapConnection): Promise<void> {
  const uid = s.command.command === 'UID SEARCH';
  const args = s.command.args;
  if (isAtomNamed(args[0], 'RETURN')) throw new ProtocolSyntaxError('SEARCH RETURN is not supported');
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
  const mailbox = s.selected;
  const context = { messageCount: mailbox.count, maxUid: mailbox.maxUid };
  const found: number[] = [];
  for (let seq = 1; seq <= mailbox.count; seq++) {
    const m = mailbox.at(seq);
    const candidate = {
      seq,
      uid: m.uid,
      flags: m.flags,
      recent: mailbox.isRecent(m.uid),
      internalDate: m.internalDate,
      size: m.size,
      raw: () => m.raw(),
    };
    // A message expunged by another session meanwhile (its octets gone) simply does not match.
    const hit = await matchesSearch(program.key, candidate, context).catch(() => false);
    if (hit) found.push(uid ? m.uid : seq);
  }
  s.send(found.length > 0 ? `* SEARCH ${found.join(' ')}\r\n` : '* SEARCH\r\n');
  await s.ok(`${s.command.command} completed`);
}
