import type { ImapCommand } from '../imap-parser.js';
import type { ImapConnection } from '../imap-connection.js';
import { formatSequenceSet } from '../imap-sequence.js';
import { ImapError } from '../imap-replies.js';
import { expectCount, mailboxName, resolveSet, storeCall } from './args.js';

/**
 * COPY, UID COPY (RFC 3501 §6.4.7), MOVE and UID MOVE (RFC 6851). The target must exist (`NO [TRYCREATE]`).
 * COPY answers `OK [COPYUID v src dst]` (RFC 4315 §3); MOVE sends the COPYUID in an untagged OK, then the
 * EXPUNGE responses, then its tagged OK (RFC 6851 §4.3). MOVE needs a read-write mailbox.
 */
export async function copy(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const verb = cmd.command;
  const uid = verb.startsWith('UID ');
  const isMove = verb.endsWith('MOVE');
  expectCount(cmd.args, 2);
  const mailbox = s.selected;
  const seqs = resolveSet(cmd.args[0], mailbox, uid);
  const target = mailboxName(cmd.args[1], s.utf8);
  if (isMove && mailbox.readOnly) throw new ImapError('NO', 'CANNOT', 'Mailbox is read-only');
  const info = await storeCall(() => s.mailboxes.info(target), true);
  const uids = seqs.map((n) => mailbox.at(n).uid);
  const pairs = uids.length === 0 ? [] : await storeCall(() => (isMove ? s.mailboxes.move(mailbox.name, uids, info.name) : s.mailboxes.copy(mailbox.name, uids, info.name)), true);
  const code =
    pairs.length > 0
      ? `COPYUID ${info.uidValidity} ${formatSequenceSet(pairs.map((p) => p[0]), { keepOrder: true })} ${formatSequenceSet(pairs.map((p) => p[1]), { keepOrder: true })}`
      : undefined;
  if (isMove) {
    if (code) s.send(`* OK [${code}] Moved\r\n`);
    await s.ok(`${verb} completed`);
  } else {
    await s.ok(`${verb} completed`, code);
  }
}
