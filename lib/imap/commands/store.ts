import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapCommand } from '../imap-parser.js';
import type { ImapConnection } from '../imap-connection.js';
import { parseStoreModifiers } from '../imap-condstore.js';
import { ImapError } from '../imap-replies.js';
import { formatSequenceSet } from '../imap-sequence.js';
import { parseFlags, resolveSet, storeCall } from './args.js';

/**
 * STORE and UID STORE (RFC 3501 §6.4.6): `FLAGS`, `+FLAGS`, `-FLAGS`, each optionally `.SILENT`. Without
 * `.SILENT` each message's new flags are returned in an untagged FETCH (with its UID, as UID STORE needs).
 * Refused in a mailbox opened with EXAMINE.
 *
 * `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3) turns CONDSTORE on and leaves alone every message whose modseq in the
 * store is above n; those are named in `OK [MODIFIED set]`. Under CONDSTORE even a `.SILENT` STORE reports the new
 * MODSEQ of each changed message (`* n FETCH (UID u MODSEQ (m))`).
 */
export async function store(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID STORE';
  const args = [...cmd.args];
  const unchangedSince = args[1]?.type === 'list' ? parseStoreModifiers(args.splice(1, 1)[0]) : undefined;
  const [setArg, itemArg, ...flagArgs] = args;
  const item = itemArg?.type === 'atom' ? /^([+-]?)FLAGS(\.SILENT)?$/i.exec(itemArg.value) : null;
  if (!item || flagArgs.length === 0) throw new ProtocolSyntaxError('STORE sequence-set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags');
  const mailbox = s.selected;
  let seqs = resolveSet(setArg, mailbox, uid);
  const flags = parseFlags(flagArgs);
  if (mailbox.readOnly) throw new ImapError('NO', 'CANNOT', 'Mailbox is read-only');
  if (unchangedSince !== undefined) s.enableExtension('CONDSTORE');
  const mode = item[1] === '+' ? 'add' : item[1] === '-' ? 'remove' : 'set';
  const silent = item[2] !== undefined;
  const modified: number[] = [];
  if (unchangedSince !== undefined && seqs.length > 0) {
    // Compare with the store's modseq now, not the session's snapshot: another session may have changed it.
    const now = new Map((await storeCall(() => s.mailboxes.messages(mailbox.name, { peek: true }))).map((m) => [m.uid, m.modseq]));
    seqs = seqs.filter((n) => {
      const m = mailbox.at(n);
      const ok = (now.get(m.uid) ?? m.modseq) <= unchangedSince;
      if (!ok) modified.push(uid ? m.uid : n);
      return ok;
    });
  }
  const expected = new Map(seqs.map((n) => [mailbox.at(n).uid, applyChange(mailbox.at(n).flags, flags, mode)]));
  const changed = new Set<number>();
  const touched = new Set<number>();
  if (expected.size > 0) {
    const before = new Map(seqs.map((n) => [mailbox.at(n).uid, mailbox.at(n).modseq]));
    const updated = await storeCall(() => s.mailboxes.setFlags(mailbox.name, [...expected.keys()], flags, mode));
    for (const m of updated) if (m.modseq !== before.get(m.uid)) touched.add(m.uid);
    mailbox.applyFlags(updated);
    // RFC 3501 §7.2.6: a keyword new to the client is announced in FLAGS before a FETCH shows it.
    for (const line of mailbox.announceKeywords(updated)) s.send(line);
    for (const m of updated) if (!sameFlags(m.flags, expected.get(m.uid) ?? m.flags)) changed.add(m.uid);
  }
  for (const seq of seqs) {
    const m = mailbox.at(seq);
    if (!silent || changed.has(m.uid)) s.send(mailbox.flagsLine(seq, m));
    else if (mailbox.condstore && touched.has(m.uid)) s.send(mailbox.flagsLine(seq, m, false));
  }
  await s.ok(`${cmd.command} completed`, modified.length > 0 ? `MODIFIED ${formatSequenceSet(modified)}` : undefined);
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
