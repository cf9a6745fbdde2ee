import { isMailStoreError } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { buildFetchItems, FetchAttributeError, parseFetchAttributes, UnknownTransferEncodingError, type FetchRequest } from '../imap-fetch.js';
import { parseFetchModifiers } from '../imap-condstore.js';
import { atom, serializeImap, type ImapResponseValue } from '../imap-format.js';
import { isAtomNamed, valueText, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { missingFromSet, parseSequenceSet } from '../imap-sequence.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { resolveSet, storeCall } from './args.js';

/** Responses above this size are written out before the next message is loaded (bounded memory per FETCH). */
const FETCH_FLUSH_OCTETS = 64 * 1024;
/** Messages loaded ahead while one FETCH response is written (a bound on concurrent reads and on memory). */
const FETCH_WINDOW = 8;

/** Takes the MODSEQ attribute (RFC 7162 §3.1.5) out of the list; imap-fetch knows the RFC 3501 ones. */
function splitModseq(arg: ImapValue | undefined): { rest: ImapValue | undefined; modseq: boolean } {
  if (isAtomNamed(arg, 'MODSEQ')) return { rest: undefined, modseq: true };
  if (arg?.type !== 'list' || !arg.items.some((i) => isAtomNamed(i, 'MODSEQ'))) return { rest: arg, modseq: false };
  const items = arg.items.filter((i) => !isAtomNamed(i, 'MODSEQ'));
  return { rest: items.length > 0 ? { type: 'list', items } : undefined, modseq: true };
}

/**
 * FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8). A non-PEEK body fetch in a read-write mailbox sets `\Seen`
 * first and reports the new FLAGS in the same response. Messages expunged by another session meanwhile are
 * skipped (RFC 3501 §7.4.1 lets the server omit them).
 *
 * CONDSTORE (RFC 7162 §3.1.4–5): the MODSEQ attribute and the CHANGEDSINCE modifier turn CONDSTORE on; once on,
 * every FETCH response that carries FLAGS carries MODSEQ too. QRESYNC (§3.2.6): `UID FETCH … (CHANGEDSINCE n
 * VANISHED)` first reports the UIDs of the set that no longer exist in `* VANISHED (EARLIER)`.
 */
export async function fetch(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID FETCH';
  const [setArg, attArg, modifierArg, ...rest] = cmd.args;
  if (rest.length > 0) throw new ProtocolSyntaxError('FETCH sequence-set attributes [(modifiers)]');
  const mailbox = s.selected;
  let seqs = resolveSet(setArg, mailbox, uid);
  const modifiers = parseFetchModifiers(modifierArg);
  if (modifiers.vanished && (!uid || !s.isEnabled('QRESYNC'))) throw new ProtocolSyntaxError('VANISHED needs UID FETCH and QRESYNC');
  const split = splitModseq(attArg);
  if (attArg === undefined) throw new ProtocolSyntaxError('Missing fetch attributes');
  let request: FetchRequest;
  try {
    request = split.rest ? parseFetchAttributes(split.rest, { uid }) : { attributes: uid ? [{ kind: 'simple', name: 'UID' }] : [], setsSeen: false, needsContent: false };
  } catch (err) {
    if (err instanceof FetchAttributeError) throw new ProtocolSyntaxError(err.message);
    throw err;
  }
  if (split.modseq || modifiers.changedSince !== undefined) s.enableExtension('CONDSTORE');
  if (modifiers.changedSince !== undefined) {
    if (modifiers.vanished) {
      const set = parseSequenceSet(valueText(setArg) ?? '');
      const gone = missingFromSet(set, mailbox.maxUid, mailbox.uids, mailbox.maxUid);
      if (gone) s.send(`* VANISHED (EARLIER) ${gone}\r\n`);
    }
    const changed = new Set(mailbox.changedSince(modifiers.changedSince));
    seqs = seqs.filter((n) => changed.has(n));
  }
  const withModseq = split.modseq || modifiers.changedSince !== undefined;
  const seen = new Set<number>();
  if (request.setsSeen && !mailbox.readOnly) {
    const unseen = seqs.map((n) => mailbox.at(n)).filter((m) => !m.flags.has('\\Seen')).map((m) => m.uid);
    if (unseen.length > 0) {
      const updated = await storeCall(() => s.mailboxes.setFlags(mailbox.name, unseen, ['\\Seen'], 'add'));
      mailbox.applyFlags(updated);
      for (const m of updated) seen.add(m.uid);
    }
  }
  // Up to FETCH_WINDOW messages are loaded ahead of the one being written, so that file reads overlap (bounded
  // concurrency, bounded memory); responses still leave in order.
  const build = (seq: number): Promise<{ items?: ImapResponseValue[]; err?: unknown }> => {
    const m = mailbox.at(seq);
    return buildFetchItems(m, request, { flags: mailbox.flagsOf(m), includeFlags: seen.has(m.uid) }).then((items) => ({ items }), (err: unknown) => ({ err }));
  };
  const ahead = seqs.slice(0, FETCH_WINDOW).map(build);
  for (const [index, seq] of seqs.entries()) {
    const message = mailbox.at(seq);
    const next = seqs[index + FETCH_WINDOW];
    if (next !== undefined) ahead.push(build(next));
    const built = await ahead.shift()!;
    const items = built.items;
    if (items === undefined) {
      if (isMailStoreError(built.err, 'NO_SUCH_MESSAGE')) continue;
      if (built.err instanceof UnknownTransferEncodingError) throw new ImapError('NO', 'UNKNOWN-CTE', 'Unknown Content-Transfer-Encoding');
      throw built.err;
    }
    if (withModseq || (mailbox.condstore && items.some((i) => isAtomOut(i, 'FLAGS')))) items.push(atom('MODSEQ'), [message.modseq]);
    const data = serializeImap(items);
    s.send(Buffer.concat([Buffer.from(`* ${seq} FETCH `), data, Buffer.from('\r\n')]));
    if (data.length >= FETCH_FLUSH_OCTETS) await s.flush();
    if (s.isEnding) return;
  }
  await s.ok(`${cmd.command} completed`);
}

function isAtomOut(value: ImapResponseValue, name: string): boolean {
  return typeof value === 'object' && value !== null && 'atom' in value && value.atom === name;
}
