import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { parseSelectParams } from '../imap-condstore.js';
import { isAtomNamed, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { SelectedMailbox } from '../imap-selected.js';
import { conventionalUse } from './list.js';
import { missingFromSet } from '../imap-sequence.js';
import { expectCount, mailboxName, storeCall } from './args.js';

/**
 * SELECT and EXAMINE (RFC 3501 §6.3.1–2): any selected mailbox is closed first (`* OK [CLOSED]`, RFC 9051
 * §7.1); a failed SELECT leaves none selected. Sends FLAGS, EXISTS, RECENT, UNSEEN, PERMANENTFLAGS,
 * UIDVALIDITY and UIDNEXT, then `OK [READ-WRITE]` or `OK [READ-ONLY]`. With CONDSTORE on (or the CONDSTORE
 * parameter, which turns it on: RFC 7162 §3.1.8) also `OK [HIGHESTMODSEQ n]`; the QRESYNC parameter (§3.2.5,
 * only after ENABLE QRESYNC) adds `* VANISHED (EARLIER)` for known UIDs that are gone and a FETCH for every
 * message changed since the client's modseq.
 */
export async function select(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  expectCount(args, 1, 2);
  const readOnly = cmd.command === 'EXAMINE';
  const name = mailboxName(args[0], s.utf8);
  const params = parseSelectParams(args[1]);
  if (params.qresync && !s.isEnabled('QRESYNC')) throw new ProtocolSyntaxError('QRESYNC is not enabled');
  if (s.state === 'selected') {
    s.unselect();
    s.send('* OK [CLOSED] Previous mailbox closed\r\n');
  }
  if (params.condstore) s.enableExtension('CONDSTORE');
  const mailbox = await storeCall(() => SelectedMailbox.open(s.mailboxes, name, readOnly, s.ctx.recent));
  s.enterSelected(mailbox);
  for (const line of mailbox.flagsResponses()) s.send(line);
  s.send(`* ${mailbox.count} EXISTS\r\n* ${mailbox.recentCount} RECENT\r\n`);
  const unseen = mailbox.firstUnseen();
  if (unseen !== undefined) s.send(`* OK [UNSEEN ${unseen}] First unseen message\r\n`);
  s.send(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid\r\n`);
  s.send(`* OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID\r\n`);
  if (mailbox.condstore) s.send(`* OK [HIGHESTMODSEQ ${mailbox.highestModseq}] Highest\r\n`);
  const q = params.qresync;
  if (q && q.uidValidity === mailbox.uidValidity) {
    // RFC 7162 §3.2.5.1: VANISHED may name UIDs expunged long ago; we compute it from the client's known range.
    const known = q.knownUids ?? { ranges: [{ start: 1, end: Math.max(1, mailbox.uidNext - 1) }], searchResult: false };
    const gone = missingFromSet(known, mailbox.maxUid, mailbox.uids, mailbox.uidNext - 1);
    if (gone) s.send(`* VANISHED (EARLIER) ${gone}\r\n`);
    for (const seq of mailbox.changedSince(q.modseq)) s.send(mailbox.flagsLine(seq, mailbox.at(seq)));
  }
  await s.ok(`${cmd.command} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
}

/**
 * CREATE (RFC 3501 §6.3.3): a trailing delimiter only declares the intent to create children. CREATE-SPECIAL-USE
 * (RFC 6154 §3): `CREATE name (USE (\\Sent))` is honoured when the use is the one the name carries here (the
 * conventional top-level names, see `specialUseOf`); any other use gets `NO [USEATTR]` and nothing is created, as
 * §3 requires of a server that cannot give a mailbox that use.
 */
export async function create(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  expectCount(cmd.args, 1, 2);
  const name = mailboxName(cmd.args[0], s.utf8).replace(/\/$/, '');
  if (name.toUpperCase() === 'INBOX') throw new ImapError('NO', 'ALREADYEXISTS', 'INBOX always exists');
  const uses = createUses(cmd.args[1]);
  const granted = conventionalUse(name);
  if (uses.some((u) => u.toLowerCase() !== granted?.toLowerCase())) throw new ImapError('NO', 'USEATTR', 'This name cannot have that special use');
  await storeCall(() => s.mailboxes.create(name));
  await s.ok('CREATE completed');
}

/** The special-use attributes of `(USE (…))` (RFC 6154 §3, RFC 4466 create-param). @throws ProtocolSyntaxError */
function createUses(value: ImapValue | undefined): string[] {
  if (value === undefined) return [];
  const [key, list, ...rest] = value.type === 'list' ? value.items : [];
  if (!isAtomNamed(key, 'USE') || list?.type !== 'list' || rest.length > 0) throw new ProtocolSyntaxError('CREATE name [(USE (attributes))]');
  return list.items.map((i) => {
    if (i.type !== 'atom' || !i.value.startsWith('\\')) throw new ProtocolSyntaxError('Special-use attribute expected');
    return i.value;
  });
}

/** DELETE (RFC 3501 §6.3.4). Deleting the selected mailbox unselects it first. */
export async function deleteMailbox(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  expectCount(cmd.args, 1);
  const name = mailboxName(cmd.args[0], s.utf8);
  const info = await storeCall(() => s.mailboxes.info(name));
  if (s.selectedOrUndefined?.name === info.name) s.unselect();
  await storeCall(() => s.mailboxes.delete(info.name));
  await s.ok('DELETE completed');
}

/** RENAME (RFC 3501 §6.3.5). */
export async function rename(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  expectCount(cmd.args, 2);
  const from = mailboxName(cmd.args[0], s.utf8);
  const to = mailboxName(cmd.args[1], s.utf8).replace(/\/$/, '');
  await storeCall(() => s.mailboxes.rename(from, to));
  await s.ok('RENAME completed');
}

/** SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6–7). SUBSCRIBE needs an existing mailbox. */
export async function subscribe(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  expectCount(cmd.args, 1);
  let name = mailboxName(cmd.args[0], s.utf8);
  const on = cmd.command === 'SUBSCRIBE';
  if (on) name = (await storeCall(() => s.mailboxes.info(name))).name;
  await storeCall(() => s.mailboxes.subscribe(name, on));
  await s.ok(`${cmd.command} completed`);
}
