import { supportsQuota, type QuotaUsage } from '../../contracts/quota.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { valueText, type ImapCommand } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { expectCount, mailboxName, storeCall, wireMailbox } from './args.js';

/** The one quota root: `""`, all of the user's mailboxes (RFC 9208 §3.1). */
const ROOT = '""';

/** `* QUOTA "" (STORAGE used limit)` in units of 1024 octets (RFC 9208 §5.1), rounded up. */
function quotaLine(q: QuotaUsage): string {
  return `* QUOTA ${ROOT} (STORAGE ${Math.ceil(q.used / 1024)} ${Math.floor(q.limit / 1024)})\r\n`;
}

async function usage(s: ImapConnection): Promise<QuotaUsage | undefined> {
  const store = s.ctx.store;
  return supportsQuota(store) ? store.quota(s.mailboxes.username) : undefined;
}

/** GETQUOTAROOT mailbox (RFC 9208 §4.3): `* QUOTAROOT mailbox ""` and, when the user has a limit, its QUOTA. */
export async function getQuotaRoot(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  expectCount(cmd.args, 1);
  const info = await storeCall(() => s.mailboxes.info(mailboxName(cmd.args[0], s.utf8)));
  const q = await usage(s);
  s.send(`* QUOTAROOT ${wireMailbox(info.name, s.utf8)}${q ? ` ${ROOT}` : ''}\r\n`);
  if (q) s.send(quotaLine(q));
  await s.ok('GETQUOTAROOT completed');
}

/** GETQUOTA root (RFC 9208 §4.2): only the root `""` exists, and only for a user with a limit. */
export async function getQuota(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  expectCount(cmd.args, 1);
  const root = valueText(cmd.args[0]);
  if (root === undefined) throw new ProtocolSyntaxError('Quota root expected');
  const q = root === '' ? await usage(s) : undefined;
  if (!q) throw new ImapError('NO', 'NONEXISTENT', 'No such quota root');
  s.send(quotaLine(q));
  await s.ok('GETQUOTA completed');
}
