import { isMailStoreError } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { buildFetchItems, FetchAttributeError, parseFetchAttributes, UnknownTransferEncodingError, type FetchRequest } from '../imap-fetch.js';
import { serializeImap } from '../imap-format.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { resolveSet, storeCall } from './args.js';

/** Responses above this size are written out before the next message is loaded (bounded memory per FETCH). */
const FETCH_FLUSH_OCTETS = 64 * 1024;

/**
 * FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8). A non-PEEK body fetch in a read-write mailbox sets `\Seen`
 * first and reports the new FLAGS in the same response. Messages expunged by another session meanwhile are
 * skipped (RFC 3501 §7.4.1 lets the server omit them).
 */
export async function fetch(s: ImapConnection): Promise<void> {
  const uid = s.command.command === 'UID FETCH';
  const [setArg, attArg, ...rest] = s.command.args;
  // FETCH modifiers (RFC 4466 §2.4, e.g. CHANGEDSINCE) are not supported.
  if (rest.length > 0) throw new ProtocolSyntaxError('FETCH sequence-set attributes');
  const mailbox = s.selected;
  const seqs = resolveSet(setArg, mailbox, uid);
  let request: FetchRequest;
  try {
    request = parseFetchAttributes(attArg, { uid });
  } catch (err) {
    if (err instanceof FetchAttributeError) throw new ProtocolSyntaxError(err.message);
    throw err;
  }
  const seen = new Set<number>();
  if (request.setsSeen && !mailbox.readOnly) {
    const unseen = seqs.map((n) => mailbox.at(n)).filter((m) => !m.flags.has('\\Seen')).map((m) => m.uid);
    if (unseen.length > 0) {
      const updated = await storeCall(() => s.mailboxes.setFlags(mailbox.name, unseen, ['\\Seen'], 'add'));
      mailbox.applyFlags(updated);
      for (const m of updated) seen.add(m.uid);
    }
  }
  for (const seq of seqs) {
    const message = mailbox.at(seq);
    let items;
    try {
      items = await buildFetchItems(message, request, { flags: mailbox.flagsOf(message), includeFlags: seen.has(message.uid) });
    } catch (err) {
      if (isMailStoreError(err, 'NO_SUCH_MESSAGE')) continue;
      if (err instanceof UnknownTransferEncodingError) throw new ImapError('NO', 'UNKNOWN-CTE', 'Unknown Content-Transfer-Encoding');
      throw err;
    }
    const data = serializeImap(items);
    s.send(Buffer.concat([Buffer.from(`* ${seq} FETCH `), data, Buffer.from('\r\n')]));
    if (data.length >= FETCH_FLUSH_OCTETS) await s.flush();
    if (s.isEnding) return;
  }
  await s.ok(`${s.command.command} completed`);
}
