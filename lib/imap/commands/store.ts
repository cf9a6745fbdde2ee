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
  const silent = item[2] !== undefined;
  const expected = new Map(seqs.map((n) => [mailbox.at(n).uid, applyChange(mailbox.at(n).flags, flags, mode)]));
  const changed = new Set<number>();
  if (expected.size > 0) {
    const updated = await storeCall(() => s.mailboxes.setFlags(mailbox.name, [...expected.keys()], flags, mode));
    mailbox.applyFlags(updated);
    // RFC 3501 §7.2.6: a keyword new to the client is announced in FLAGS before a FETCH shows it.
    for (const line of mailbox.announceKeywords(updated)) s.send(line);
    for (const m of updated) if (!sameFlags(m.flags, expected.get(m.uid) ?? m.flags)) changed.add(m.uid);
  }
  for (const seq of seqs) {
    const m = mailbox.at(seq);
    if (!silent || changed.has(m.uid)) s.send(mailbox.flagsLine(seq, m));
  }
  await s.ok(`${s.command.command} completed`);
}

/** The flags a client expects after its STORE: what it last knew, with the change applied. */
function applyChange(known: ReadonlySet<string>, flags: readonly string[], mode: 'set' | 'add' | 'remove'): Set<string> {
  if (mode === 'set') return new Set(flags);
  const next = new Set(known);
  for (const f of flags) {
    if (mode === 'add') next.add(f);
    else next.delete(f);
  }
  return next;
}

function sameFlags(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((f) => b.has(f));
}
