import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapCommand } from '../imap-parser.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { expectCount, resolveSet, storeCall } from './args.js';

/** UIDs of the messages that carry `\Deleted` in the store now. */
async function deletedUids(s: ImapConnection): Promise<number[]> {
  const messages = await storeCall(() => s.mailboxes.messages(s.selected.name));
  return messages.filter((m) => m.flags.has('\\Deleted')).map((m) => m.uid);
}

/** CLOSE (RFC 3501 §6.4.2): silently expunges `\Deleted` messages (unless read-only), then unselects. */
export async function close(s: ImapConnection): Promise<void> {
  const mailbox = s.selected;
  if (!mailbox.readOnly) {
    const uids = await deletedUids(s);
    if (uids.length > 0) await storeCall(() => s.mailboxes.expunge(mailbox.name, uids));
  }
  s.unselect();
  await s.ok('CLOSE completed');
}

/** UNSELECT (RFC 3691): unselects without expunging. */
export async function unselect(s: ImapConnection): Promise<void> {
  s.unselect();
  await s.ok('UNSELECT completed');
}

/**
 * EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE set (RFC 4315 §2.1): removes `\Deleted` messages (within the set);
 * the `* n EXPUNGE` responses come from the update sync before the tagged OK.
 */
export async function expunge(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID EXPUNGE';
  expectCount(cmd.args, uid ? 1 : 0);
  const mailbox = s.selected;
  if (mailbox.readOnly) throw new ImapError('NO', 'CANNOT', 'Mailbox is read-only');
  // Bring the session's view up to date first (flags set by others count), then expunge from that view.
  await s.sendUpdates();
  const seqs = uid ? resolveSet(cmd.args[0], mailbox, true) : Array.from({ length: mailbox.count }, (_, i) => i + 1);
  const uids = seqs.map((n) => mailbox.at(n)).filter((m) => m.flags.has('\\Deleted')).map((m) => m.uid);
  if (uids.length > 0) await storeCall(() => s.mailboxes.expunge(mailbox.name, uids));
  await s.ok(`${cmd.command} completed`);
}

/** CHECK (RFC 3501 §6.4.1): the store is always consistent; reports pending updates. */
export async function check(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  if (cmd.args.length > 0) throw new ProtocolSyntaxError('CHECK takes no arguments');
  await s.ok('CHECK completed');
}
