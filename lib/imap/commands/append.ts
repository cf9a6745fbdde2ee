import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { encodeBinaryParts } from '../imap-binary.js';
import { buildFetchItems, parseFetchAttributes } from '../imap-fetch.js';
import { parseInternalDate, type ImapResponseValue } from '../imap-format.js';
import { isAtomNamed, parseCommandText, valueText, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { ImapError } from '../imap-replies.js';
import { formatSequenceSet } from '../imap-sequence.js';
import { decodeMailboxName } from '../imap-utf7.js';
import { mailboxName, parseFlags, storeCall } from './args.js';

/** One message of an APPEND: a literal, or CATENATE parts still to resolve. */
interface AppendItem {
  readonly flags: string[];
  readonly date?: Date;
  readonly parts: ReadonlyArray<{ readonly text: Buffer; readonly binary: boolean } | { readonly url: string }>;
}

/** Bound on CATENATE parts per message (RFC 4469 sets none; each URL costs a message load). */
const MAX_CATENATE_PARTS = 64;

/** RFC 3502 §6.3.11 / RFC 4469 §5: `1*(SP [flag-list] [SP date-time] SP (literal / CATENATE (parts)))`. */
function parseItems(args: readonly ImapValue[], utf8: boolean): AppendItem[] {
  const items: AppendItem[] = [];
  let i = 0;
  while (i < args.length) {
    let flags: string[] = [];
    let date: Date | undefined;
    if (args[i].type === 'list') flags = parseFlags([args[i++]]);
    const d = args[i];
    if (d?.type === 'quoted') {
      date = parseInternalDate(d.value);
      if (!date) throw new ProtocolSyntaxError('Invalid date-time');
      i++;
    }
    let data = args[i++];
    // RFC 6855 §4: `UTF8 (literal8)` carries a message with UTF-8 headers; accepted only after ENABLE UTF8=ACCEPT.
    if (utf8 && isAtomNamed(data, 'UTF8') && args[i]?.type === 'list') {
      const inner = args[i++] as Extract<ImapValue, { type: 'list' }>;
      if (inner.items.length !== 1 || inner.items[0].type !== 'literal') throw new ProtocolSyntaxError('UTF8 (literal8) expected');
      data = inner.items[0];
    }
    if (data?.type === 'literal') items.push({ flags, date, parts: [{ text: data.value, binary: data.binary }] });
    else if (isAtomNamed(data, 'CATENATE') && args[i]?.type === 'list') items.push({ flags, date, parts: catenateParts(args[i++]) });
    else throw new ProtocolSyntaxError('APPEND mailbox [(flags)] [date-time] literal …');
  }
  if (items.length === 0) throw new ProtocolSyntaxError('Message literal expected');
  return items;
}

function catenateParts(list: ImapValue): AppendItem['parts'] {
  const values = list.type === 'list' ? list.items : [];
  if (values.length === 0 || values.length % 2 !== 0 || values.length / 2 > MAX_CATENATE_PARTS) throw new ProtocolSyntaxError('CATENATE (TEXT literal / URL url …)');
  const parts: Array<AppendItem['parts'][number]> = [];
  for (let i = 0; i < values.length; i += 2) {
    const v = values[i + 1];
    if (isAtomNamed(values[i], 'TEXT') && v.type === 'literal') parts.push({ text: v.value, binary: v.binary });
    else if (isAtomNamed(values[i], 'URL') && valueText(v) !== undefined) parts.push({ url: valueText(v) as string });
    else throw new ProtocolSyntaxError('CATENATE (TEXT literal / URL url …)');
  }
  return parts;
}

/**
 * Resolves a CATENATE URL (RFC 4469 §5, RFC 5092 §6 relative to this server):
 * `[imap://user@host]/mailbox[;UIDVALIDITY=v]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]` to the octets of that message or section.
 * @throws ImapError `NO [BADURL url]` for anything it cannot resolve.
 */
async function resolveUrl(s: ImapConnection, url: string): Promise<Buffer> {
  const bad = (): ImapError => new ImapError('NO', `BADURL ${url.replace(/[\]\r\n]/g, '')}`, 'Cannot resolve URL');
  const m = /^(?:imap:\/\/[^/]*)?\/([^;/]+(?:\/[^;/]+)*?)(?:;UIDVALIDITY=(\d+))?\/;UID=(\d+)(?:\/;SECTION=([\w.]+))?(?:\/;PARTIAL=(\d+)(?:\.(\d+))?)?$/i.exec(url);
  if (!m) throw bad();
  let name: string;
  try {
    name = decodeMailboxName(decodeURIComponent(m[1]));
  } catch {
    throw bad();
  }
  const info = await s.mailboxes.info(name).catch(() => undefined);
  if (!info || (m[2] !== undefined && Number(m[2]) !== info.uidValidity)) throw bad();
  const message = (await s.mailboxes.messages(info.name, { peek: true })).find((msg) => msg.uid === Number(m[3]));
  if (!message) throw bad();
  const section = m[4] ?? '';
  // Reuse FETCH's section logic: BODY.PEEK[section] of that message.
  const request = parseFetchAttributes(parseCommandText(`x FETCH 1 BODY.PEEK[${section}]`).args[1]);
  const whole = octets((await buildFetchItems(message, request))[1]) ?? Buffer.alloc(0);
  // RFC 5092 §6: ;PARTIAL=offset[.length]; a range beyond the end is empty.
  if (m[5] === undefined) return whole;
  const offset = Number(m[5]);
  return whole.subarray(offset, m[6] === undefined ? undefined : offset + Number(m[6]));
}

function octets(value: ImapResponseValue | undefined): Buffer | undefined {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value && typeof value === 'object' && 'literal' in value) return Buffer.isBuffer(value.literal) ? value.literal : Buffer.from(value.literal, 'utf8');
  return undefined;
}

/**
 * APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502: several messages, all or none), CATENATE (RFC 4469: a
 * message built from TEXT literals and URLs of messages or sections on this server) and BINARY (RFC 3516
 * `literal8`: binary parts are stored base64-encoded, see `encodeBinaryParts`) and, after ENABLE UTF8=ACCEPT, the
 * `UTF8 (literal8)` form of RFC 6855 §4. Answers `OK [APPENDUID v uids]`
 * (RFC 4315 §3). A missing mailbox gives `NO [TRYCREATE]` (checked before the first `+` continuation when
 * possible). The assembled message is bounded by the literal size limit.
 */
export async function append(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  if (args.length < 2) throw new ProtocolSyntaxError('APPEND mailbox [(flags)] [date-time] literal');
  const name = mailboxName(args[0], s.utf8);
  const items = parseItems(args.slice(1), s.utf8);
  const target = await storeCall(() => s.mailboxes.info(name), true);
  const messages: Buffer[] = [];
  for (const item of items) {
    const pieces: Buffer[] = [];
    let binary = false;
    for (const part of item.parts) {
      if ('url' in part) pieces.push(await resolveUrl(s, part.url));
      else {
        pieces.push(part.text);
        binary ||= part.binary;
      }
    }
    const raw = Buffer.concat(pieces);
    if (raw.length > s.ctx.settings.maxLiteralSize) throw new ImapError('NO', 'TOOBIG', 'Message too big');
    if (raw.length === 0) throw new ImapError('NO', undefined, 'Empty message');
    // RFC 3516 §4.1: content not valid as 8-bit text is stored in a transfer encoding.
    messages.push(binary ? encodeBinaryParts(raw) : raw);
  }
  const uids: number[] = [];
  try {
    for (const [i, raw] of messages.entries()) {
      const stored = await storeCall(() => s.mailboxes.append(target.name, raw, items[i].flags, items[i].date), true);
      uids.push(stored.uid);
      s.log.info('message appended', { mailbox: target.name, size: stored.size, uid: stored.uid });
    }
  } catch (err) {
    // RFC 3502 §6.3.11: all or none.
    if (uids.length > 0) await s.mailboxes.expunge(target.name, uids).catch(() => undefined);
    throw err;
  }
  await s.ok('APPEND completed', `APPENDUID ${target.uidValidity} ${formatSequenceSet(uids)}`);
}
