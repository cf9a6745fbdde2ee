import type { ImapCommand } from '../imap-parser.js';
import type { ImapConnection } from '../imap-connection.js';
import { namedMailboxes, notifyStatusItems, eventsFor, parseNotify, statusLine } from '../imap-notify.js';
import { wireMailbox } from './args.js';

/**
 * NOTIFY (RFC 5465 §3): `NOTIFY NONE` stops notifications; `NOTIFY SET [STATUS] (filter (events)) …` replaces the
 * selection. With STATUS, each named mailbox (other than the selected one) gets a first `* STATUS` at once
 * (RFC 5465 §3.1). Names that do not exist are skipped.
 */
export async function notify(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const spec = parseNotify(cmd.args);
  s.setNotify(spec);
  if (spec?.status) {
    for (const name of namedMailboxes(spec)) {
      const info = await s.mailboxes.info(name).catch(() => undefined);
      if (!info || info.name === s.selectedOrUndefined?.name) continue;
      const items = notifyStatusItems(eventsFor(spec, info.name), info);
      if (items.length > 0) s.send(statusLine(wireMailbox(info.name, s.utf8), items));
    }
  }
  await s.ok('NOTIFY completed');
}
