import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { atom, parseInternalDate, serializeImapItems, type ImapResponseValue } from '../imap-format.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { SelectedMailbox } from '../imap-selected.js';
import { expectCount, mailboxName, parseFlags, storeCall, wireMailbox } from './args.js';

/**
 * SELECT and EXAMINE (RFC 3501 §6.3.1–2): any selected mailbox is closed first (`* OK [CLOSED]`, RFC 9051
 * §7.1); a failed SELECT leaves none selected. Sends FLAGS, EXISTS, RECENT, UNSEEN, PERMANENTFLAGS,
 * UIDVALIDITY and UIDNEXT, then `OK [READ-WRITE]` or `OK [READ-ONLY]`.
 */
export async function select(s: ImapConnection): Promise<void> {
  const args = s.command.args;
  // Select parameters (RFC 4466 §2.4, e.g. CONDSTORE) are not supported.
  expectCount(args, 1);
  const readOnly = s.command.command === 'EXAMINE';
  const name = mailboxName(args[0]);
  if (s.state === 'selected') {
    s.unselect();
    s.send('* OK [CLOSED] Previous mailbox closed\r\n');
  }
  const mailbox = await storeCall(() => SelectedMailbox.open(s.mailboxes, name, readOnly, s.ctx.recent));
  s.enterSelected(mailbox);
  for (const line of mailbox.flagsResponses()) s.send(line);
  s.send(`* ${mailbox.count} EXISTS\r\n* ${mailbox.recentCount} RECENT\r\n`);
  const unseen = mailbox.firstUnseen();
  if (unseen !== undefined) s.send(`* OK [UNSEEN ${unseen}] First unseen message\r\n`);
  s.send(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid\r\n`);
  s.send(`* OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID\r\n`);
  await s.ok(`${s.command.command} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
}

/** CREATE (RFC 3501 §6.3.3): a trailing delimiter only declares the intent to create children. */
export async function create(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 1);
  const name = mailboxName(s.command.args[0]).replace(/\/$/, '');
  if (name.toUpperCase() === 'INBOX') throw new ImapError('NO', 'ALREADYEXISTS', 'INBOX always exists');
  await storeCall(() => s.mailboxes.create(name));
  await s.ok('CREATE completed');
}

/** DELETE (RFC 3501 §6.3.4). Deleting the selected mailbox unselects it first. */
export async function deleteMailbox(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 1);
  const name = mailboxName(s.command.args[0]);
  const info = await storeCall(() => s.mailboxes.info(name));
  if (s.selectedOrUndefined?.name === info.name) s.unselect();
  await storeCall(() => s.mailboxes.delete(info.name));
  await s.ok('DELETE completed');
}

/** RENAME (RFC 3501 §6.3.5). */
export async function rename(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 2);
  const from = mailboxName(s.command.args[0]);
  const to = mailboxName(s.command.args[1]).replace(/\/$/, '');
  await storeCall(() => s.mailboxes.rename(from, to));
  await s.ok('RENAME completed');
}

/** SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6–7). SUBSCRIBE needs an existing mailbox. */
export async function subscribe(s: ImapConnection): Promise<void> {
  expectCount(s.command.args, 1);
  let name = mailboxName(s.command.args[0]);
  const on = s.command.command === 'SUBSCRIBE';
  if (on) name = (await storeCall(() => s.mailboxes.info(name))).name;
  await storeCall(() => s.mailboxes.subscribe(name, on));
  await s.ok(`${s.command.command} completed`);
}

/** STATUS items we answer (RFC 3501 §6.3.10). */
const STATUS_ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN'] as const;

/** STATUS mailbox (items) (RFC 3501 §6.3.10). SIZE (RFC 8438) is not offered. */
export async function status(s: ImapConnection): Promise<void> {
  const [box, list, ...rest] = s.command.args;
  if (!list || list.type !== 'list' || list.items.length === 0 || rest.length > 0) throw new ProtocolSyntaxError('STATUS mailbox (items)');
  const wanted = list.items.map((item) => {
    const name = item.type === 'atom' ? STATUS_ITEMS.find((i) => i === item.value.toUpperCase()) : undefined;
    if (!name) throw new ProtocolSyntaxError('Unknown status item');
    return name;
  });
  const info = await storeCall(() => s.mailboxes.info(mailboxName(box)));
  const values: Record<(typeof STATUS_ITEMS)[number], number> = {
    MESSAGES: info.messages,
    RECENT: info.recent,
    UIDNEXT: info.uidNext,
    UIDVALIDITY: info.uidValidity,
    UNSEEN: info.unseen,
  };
  const out: ImapResponseValue[] = wanted.flatMap((w) => [atom(w), values[w]]);
  s.send(`* STATUS ${wireMailbox(info.name)} ${serializeImapItems([out])}\r\n`);
  await s.ok('STATUS completed');
}

/**
 * APPEND mailbox [(flags)] [date-time] literal (RFC 3501 §6.3.11), answered `OK [APPENDUID v uid]` (RFC 4315 §3).
 * A missing mailbox gives `NO [TRYCREATE]` (checked before the `+` continuation when possible).
 */
export async function append(s: ImapConnection): Promise<void> {
  const args = [...s.command.args];
  if (args.length < 2 || args.length > 4) throw new ProtocolSyntaxError('APPEND mailbox [(flags)] [date-time] literal');
  const message = args.pop();
  if (message?.type !== 'literal') throw new ProtocolSyntaxError('Message literal expected');
  const name = mailboxName(args[0]);
  let flags: string[] = [];
  let date: Date | undefined;
  for (const extra of args.slice(1)) {
    if (extra.type === 'list' && flags.length === 0 && date === undefined) flags = parseFlags([extra]);
    else if (extra.type === 'quoted' && date === undefined) {
      date = parseInternalDate(extra.value);
      if (!date) throw new ProtocolSyntaxError('Invalid date-time');
    } else throw new ProtocolSyntaxError('APPEND mailbox [(flags)] [date-time] literal');
  }
  const stored = await storeCall(() => s.mailboxes.append(name, message.value, flags, date), true);
  const info = await storeCall(() => s.mailboxes.info(name));
  s.log.info('message appended', { mailbox: info.name, size: stored.size, uid: stored.uid });
  await s.ok('APPEND completed', `APPENDUID ${info.uidValidity} ${stored.uid}`);
}
