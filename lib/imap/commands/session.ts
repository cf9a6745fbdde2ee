import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { serializeImapItems } from '../imap-format.js';
import type { EnableableExtension, ImapConnection } from '../imap-connection.js';
import { valueText, type ImapCommand } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { DELIMITER } from './args.js';

/** CAPABILITY (RFC 3501 §6.1.1): the list for the current state and security. */
export async function capability(s: ImapConnection): Promise<void> {
  s.send(`* CAPABILITY ${s.capabilities().join(' ')}\r\n`);
  await s.ok('CAPABILITY completed');
}

/** NOOP (RFC 3501 §6.1.2) and CHECK (§6.4.1): nothing to do but report pending updates. */
export async function noop(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  await s.ok(`${cmd.command} completed`);
}

/** LOGOUT (RFC 3501 §6.1.3). */
export async function logout(s: ImapConnection): Promise<void> {
  await s.logout();
}

/** STARTTLS (RFC 3501 §6.2.1). */
export async function starttls(s: ImapConnection): Promise<void> {
  await s.upgradeTls();
}

/** Our RFC 2971 §3.3 identification. */
const SERVER_ID = ['name', 'Postern', 'vendor', 'Postern', 'support-url', 'https://github.com/postern'];

/**
 * ID (RFC 2971): `ID NIL` or `ID ("key" "value" …)`; answers `* ID (…)`. The client's fields are logged at debug
 * (RFC 2971 §3.1: at most 30 pairs, keys ≤ 30 octets, values ≤ 1024 octets).
 */
export async function id(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const [arg, ...rest] = cmd.args;
  if (rest.length > 0 || !arg || (arg.type !== 'nil' && arg.type !== 'list')) throw new ProtocolSyntaxError('ID takes NIL or a list');
  if (arg.type === 'list') {
    if (arg.items.length % 2 !== 0 || arg.items.length > 60) throw new ProtocolSyntaxError('Invalid ID list');
    const fields: Record<string, string> = {};
    for (let i = 0; i < arg.items.length; i += 2) {
      const key = valueText(arg.items[i]);
      const value = arg.items[i + 1].type === 'nil' ? '' : valueText(arg.items[i + 1]);
      if (key === undefined || value === undefined || key.length > 30 || value.length > 1024) throw new ProtocolSyntaxError('Invalid ID field');
      fields[key.toLowerCase()] = value;
    }
    s.log.debug('client id', fields);
  }
  s.send(`* ID ${serializeImapItems([SERVER_ID])}\r\n`);
  await s.ok('ID completed');
}

/** What ENABLE can turn on (RFC 5161 §4: only extensions that say they may be enabled). */
const ENABLEABLE: readonly EnableableExtension[] = ['CONDSTORE', 'QRESYNC', 'UTF8=ACCEPT'];

/**
 * ENABLE (RFC 5161): turns on CONDSTORE and QRESYNC (RFC 7162 §3.2.3; QRESYNC implies CONDSTORE) and UTF8=ACCEPT
 * (RFC 6855 §3: UTF-8 mailbox names and quoted strings from then on), and answers
 * `* ENABLED` with the names newly enabled; unknown names are ignored (RFC 5161 §3.1).
 */
export async function enable(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const enabled: string[] = [];
  for (const a of cmd.args) {
    if (a.type !== 'atom') throw new ProtocolSyntaxError('Capability names expected');
    const name = ENABLEABLE.find((e) => e === a.value.toUpperCase());
    if (name) enabled.push(...s.enableExtension(name));
  }
  s.send(`* ENABLED${enabled.map((e) => ` ${e}`).join('')}\r\n`);
  await s.ok('ENABLE completed');
}

/** NAMESPACE (RFC 2342 §5): one personal namespace with the `/` delimiter, no other users' or shared ones. */
export async function namespace(s: ImapConnection): Promise<void> {
  s.send(`* NAMESPACE ${serializeImapItems([[['', DELIMITER]], null, null])}\r\n`);
  await s.ok('NAMESPACE completed');
}

/** IDLE (RFC 2177). */
export async function idle(s: ImapConnection): Promise<void> {
  await s.idle();
}

/**
 * COMPRESS DEFLATE (RFC 4978): `OK` in the clear, then both directions are raw DEFLATE. A second COMPRESS gets
 * `NO [COMPRESSIONACTIVE]` (RFC 4978 §3); another mechanism is a syntax error.
 */
export async function compress(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const [mechanism, ...rest] = cmd.args;
  if (rest.length > 0 || mechanism?.type !== 'atom' || mechanism.value.toUpperCase() !== 'DEFLATE') throw new ProtocolSyntaxError('COMPRESS DEFLATE');
  if (s.isCompressed) throw new ImapError('NO', 'COMPRESSIONACTIVE', 'Compression is already active');
  await s.ok('DEFLATE active');
  s.startCompression();
}
