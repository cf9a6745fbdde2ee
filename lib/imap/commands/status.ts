import type { MailboxInfo } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { atom, serializeImapItems, type ImapResponseValue } from '../imap-format.js';
import type { ImapConnection } from '../imap-connection.js';
import type { ImapValue, ImapCommand } from '../imap-parser.js';
import { mailboxName, storeCall, wireMailbox } from './args.js';

/**
 * STATUS items we answer (RFC 3501 §6.3.10; RFC 7162 §3.1.9 HIGHESTMODSEQ; RFC 8438 SIZE, the octets of all
 * messages; RFC 9208 §4.1.4–5 DELETED and DELETED-STORAGE, messages with `\Deleted` and their octets in KiB).
 */
const STATUS_ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE', 'DELETED', 'DELETED-STORAGE'] as const;
/** Items that need the message list, not just the mailbox info. */
const COUNTED: readonly StatusItem[] = ['SIZE', 'DELETED', 'DELETED-STORAGE'];
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

/** What SIZE, DELETED and DELETED-STORAGE count. */
export interface MessageTotals {
  readonly size: number;
  readonly deleted: number;
  readonly deletedSize: number;
}

/** The totals when `wanted` needs them (one read of the message list), else undefined. */
export async function messageTotals(s: ImapConnection, wanted: readonly StatusItem[], mailbox: string): Promise<MessageTotals | undefined> {
  if (!wanted.some((w) => COUNTED.includes(w))) return undefined;
  const totals = { size: 0, deleted: 0, deletedSize: 0 };
  for (const m of await storeCall(() => s.mailboxes.messages(mailbox, { peek: true }))) {
    totals.size += m.size;
    if (m.flags.has('\\Deleted')) {
      totals.deleted++;
      totals.deletedSize += m.size;
    }
  }
  return totals;
}

/** `(NAME value …)` for the wanted items of one mailbox. */
export function statusValues(wanted: readonly StatusItem[], info: MailboxInfo, totals?: MessageTotals): ImapResponseValue[] {
  const values: Record<StatusItem, number> = {
    SIZE: totals?.size ?? 0,
    DELETED: totals?.deleted ?? 0,
    'DELETED-STORAGE': Math.ceil((totals?.deletedSize ?? 0) / 1024),
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
export async function status(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const [box, list, ...rest] = cmd.args;
  if (rest.length > 0) throw new ProtocolSyntaxError('STATUS mailbox (items)');
  const wanted = parseStatusItems(list);
  const info = await storeCall(() => s.mailboxes.info(mailboxName(box, s.utf8)));
  if (wanted.includes('HIGHESTMODSEQ')) s.enableExtension('CONDSTORE');
  const totals = await messageTotals(s, wanted, info.name);
  s.send(`* STATUS ${wireMailbox(info.name, s.utf8)} ${serializeImapItems([statusValues(wanted, info, totals)])}\r\n`);
  await s.ok('STATUS completed');
}
