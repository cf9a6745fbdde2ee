import type { MailboxInfo } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { atom, serializeImapItems, type ImapResponseValue } from '../imap-format.js';
import type { ImapConnection } from '../imap-connection.js';
import type { ImapValue } from '../imap-parser.js';
import { mailboxName, storeCall, wireMailbox } from './args.js';

/** STATUS items we answer (RFC 3501 §6.3.10, RFC 7162 §3.1.9 HIGHESTMODSEQ). */
const STATUS_ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ'] as const;
/** One STATUS item name. */
export type StatusItem = (typeof STATUS_ITEMS)[number];

/** Parses `(item …)`. @throws ProtocolSyntaxError for an empty list or an unknown item. */
export function parseStatusItems(list: ImapValue | undefined): StatusItem[] {
  if (!list || list.type !== 'list' || list.items.length === 0) throw new ProtocolSyntaxError('STATUS mailbox (items)');
  return list.items.map((item) => {
    const name = item.type === 'atom' ? STATUS_ITEMS.find((i) => i === item.value.toUpperCase()) : undefined;
    if (!name) throw new ProtocolSyntaxError('Unknown status item');
    return name;
  });
}

/** `(NAME value …)` for the wanted items of one mailbox. */
export function statusValues(wanted: readonly StatusItem[], info: MailboxInfo): ImapResponseValue[] {
  const values: Record<StatusItem, number> = {
    MESSAGES: info.messages,
    RECENT: info.recent,
    UIDNEXT: info.uidNext,
    UIDVALIDITY: info.uidValidity,
    UNSEEN: info.unseen,
    HIGHESTMODSEQ: info.highestModseq,
  };
  return wanted.flatMap((w) => [atom(w), values[w]]);
}

/** STATUS mailbox (items) (RFC 3501 §6.3.10); HIGHESTMODSEQ also turns CONDSTORE on (RFC 7162 §3.1). */
export async function status(s: ImapConnection): Promise<void> {
  const [box, list, ...rest] = s.command.args;
  if (rest.length > 0) throw new ProtocolSyntaxError('STATUS mailbox (items)');
  const wanted = parseStatusItems(list);
  const info = await storeCall(() => s.mailboxes.info(mailboxName(box)));
  if (wanted.includes('HIGHESTMODSEQ')) s.enableExtension('CONDSTORE');
  s.send(`* STATUS ${wireMailbox(info.name)} ${serializeImapItems([statusValues(wanted, info)])}\r\n`);
  await s.ok('STATUS completed');
}
