import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { parseFlags, resolveSet, storeCall } from './args.js';

/**
 * STORE and UID STORE (RFC 3501 §6.4.6): `FLAGS`, `+FLAGS`, `-FLAGS`, each optionally `.SILENT`. Without
 * `.SILENT` each message's new flags are returned in an untagged FETCH (with its UID, as UID STORE needs).
 * Refused in a mailbox opened with EXAMINE.
 */
export async function store(s: ImapConnection): Promise<void> {
  const uid = s.command.command === 'UID STORE';
  const [setArg, itemArg, ...flagArgs] = s.command.args;
  const item = itemArg?.type === 'atom' ? /^([+-]?)FLAGS(\.SILENT)?$/i.exec(itemArg.value) : null;
  // STORE modifiers (RFC 4466 §2.5, e.g. UNCHANGEDSINCE) are not supported.
  if (!item || flagArgs.length === 0) throw new ProtocolSyntaxError('STORE sequence-set [+|-]FLAGS[.SILENT] flags');
  const mailbox = s.selected;
  const seqs = resolveSet(setArg, mailbox, uid);
  const flags = parseFlags(flagArgs);
  if (mailbox.readOnly) throw new ImapError('NO', 'CANNOT', 'Mailbox is read-only');
  const mode = item[1] === '+' ? 'add' : item[1] === '-' ? 'remove' : 'set';
  const uids = seqs.map((n) => mailbox.at(n).uid);
  if (uids.length > 0) {
    const updated = await storeCall(() => s.mailboxes.setFlags(mailbox.name, uids, flags, mode));
    mailbox.applyFlags(updated);
  }
  if (!item[2]) for (const seq of seqs) s.send(mailbox.flagsLine(seq, mailbox.at(seq)));
  await s.ok(`${s.command.command} completed`);
}
