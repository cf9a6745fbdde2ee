import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { parseSelectParams } from '../imap-condstore.js';
import { SelectedMailbox } from '../imap-selected.js';
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
export async function select(s: ImapConnection): Promise<void> {
  const args = s.command.args;
  expectCount(args, 1, 2);
  const readOnly = s.command.command === 'EXAMINE';
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
  await s.ok(`${s.command.command} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
}

/** CREATE (RFC 3501 §6.3.3): a trailing delimiter only declares the intent to create children. */
export async function create(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 1);
  const name = mailboxName(s.command.args[0], s.utf8).replace(/\/$/, '');
  if (name.toUpperCase() === 'INBOX') throw new ImapError('NO', 'ALREADYEXISTS', 'INBOX always exists');
  await storeCall(() => s.mailboxes.create(name));
  await s.ok('CREATE completed');
}

/** DELETE (RFC 3501 §6.3.4). Deleting the selected mailbox unselects it first. */
export async function deleteMailbox(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 1);
  const name = mailboxName(s.command.args[0], s.utf8);
  const info = await storeCall(() => s.mailboxes.info(name));
  if (s.selectedOrUndefined?.name === info.name) s.unselect();
  await storeCall(() => s.mailboxes.delete(info.name));
  await s.ok('DELETE completed');
}

/** RENAME (RFC 3501 §6.3.5). */
export async function rename(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 2);
  const from = mailboxName(s.command.args[0], s.utf8);
  const to = mailboxName(s.command.args[1], s.utf8).replace(/\/$/, '');
  await storeCall(() => s.mailboxes.rename(from, to));
  await s.ok('RENAME completed');
}

/** SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6–7). SUBSCRIBE needs an existing mailbox. */
export async function subscribe(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 1);
  let name = mailboxName(s.command.args[0], s.utf8);
  const on = s.command.command === 'SUBSCRIBE';
  if (on) name = (await storeCall(() => s.mailboxes.info(name))).name;
  await storeCall(() => s.mailboxes.subscribe(name, on));
  await s.ok(`${s.command.command} completed`);
}
