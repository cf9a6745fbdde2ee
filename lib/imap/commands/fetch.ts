import type { Readable } from 'node:stream';
import { isMailStoreError } from '../../contracts/mail-store.js';
import { OBJECT_FETCH_ITEMS, objectFetchValues, type ObjectFetchItem } from '../imap-objectid.js';
import { previewModifiers } from '../imap-preview.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { buildFetchItems, FetchAttributeError, parseFetchAttributes, UnknownTransferEncodingError, type FetchRequest } from '../imap-fetch.js';
import { parseFetchModifiers } from '../imap-condstore.js';
import { pumpLiteral, shouldStream, streamedFetch } from '../imap-fetch-stream.js';
import { atom, ImapWireBuilder, type ImapResponseValue } from '../imap-format.js';
import { isAtomNamed, valueText, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { missingFromSet, parseSequenceSet } from '../imap-sequence.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { resolveSet, storeCall } from './args.js';

/** Responses above this size are written out before the next message is loaded (bounded memory per FETCH). */
const FETCH_FLUSH_OCTETS = 64 * 1024;
/** Messages loaded ahead while one FETCH response is written (a bound on concurrent reads and on memory). */
const FETCH_WINDOW = 8;

/** Attributes the FETCH command answers itself, outside `imap-fetch.ts`: MODSEQ, PREVIEW and, with OBJECTID, the object ones. */
interface SplitAttributes {
  /** The RFC 3501 attributes left for `imap-fetch.ts` (undefined when none). */
  readonly rest: ImapValue | undefined;
  /** MODSEQ was asked for (RFC 7162 §3.1.5). */
  readonly modseq: boolean;
  /** PREVIEW was asked for (RFC 8970), with or without `(LAZY)`. */
  readonly preview: boolean;
  /** EMAILID, THREADID, SAVEDATE in request order (RFC 8474 §5, RFC 8514 §3). */
  readonly objects: ObjectFetchItem[];
}

/**
 * Takes MODSEQ, PREVIEW with its modifier list, and the object items when `objectIds`, out of the attribute list;
 * unknown names stay for imap-fetch to refuse.
 * @throws ProtocolSyntaxError for a PREVIEW modifier other than LAZY.
 */
function splitAttributes(arg: ImapValue | undefined, objectIds: boolean): SplitAttributes {
  const objectOf = (v: ImapValue): ObjectFetchItem | undefined =>
    objectIds && v.type === 'atom' ? OBJECT_FETCH_ITEMS.find((name) => name === v.value.toUpperCase()) : undefined;
  const isOwn = (v: ImapValue): boolean => isAtomNamed(v, 'MODSEQ') || isAtomNamed(v, 'PREVIEW') || objectOf(v) !== undefined;
  const single = arg !== undefined && arg.type !== 'list' ? [arg] : undefined;
  const items = single ?? (arg?.type === 'list' ? arg.items : []);
  if (!items.some(isOwn)) return { rest: arg, modseq: false, preview: false, objects: [] };
  const rest: ImapValue[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (isAtomNamed(item, 'PREVIEW')) {
      const modifiers = previewModifiers(items[i + 1]);
      if (modifiers === 'other') throw new ProtocolSyntaxError('PREVIEW takes only the LAZY modifier');
      if (modifiers === 'lazy') i++;
    } else if (!isOwn(item)) rest.push(item);
  }
  return {
    rest: rest.length > 0 ? { type: 'list', items: rest } : undefined,
    modseq: items.some((i) => isAtomNamed(i, 'MODSEQ')),
    preview: items.some((i) => isAtomNamed(i, 'PREVIEW')),
    objects: items.map(objectOf).filter((o): o is ObjectFetchItem => o !== undefined),
  };
}

/**
 * FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8). A non-PEEK body fetch in a read-write mailbox sets `\Seen`
 * first and reports the new FLAGS in the same response. Messages expunged by another session meanwhile are
 * skipped (RFC 3501 §7.4.1 lets the server omit them).
 *
 * CONDSTORE (RFC 7162 §3.1.4–5): the MODSEQ attribute and the CHANGEDSINCE modifier turn CONDSTORE on; once on,
 * every FETCH response that carries FLAGS carries MODSEQ too. QRESYNC (§3.2.6): `UID FETCH … (CHANGEDSINCE n
 * VANISHED)` first reports the UIDs of the set that no longer exist in `* VANISHED (EARLIER)`. With OBJECTID and
 * SAVEDATE (the store has object identity), EMAILID, THREADID and SAVEDATE are answered after the other items.
 */
export async function fetch(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const uid = cmd.command === 'UID FETCH';
  const [setArg, attArg, given, ...rest] = cmd.args;
  if (rest.length > 0) throw new ProtocolSyntaxError('FETCH sequence-set attributes [(modifiers)]');
  // `FETCH 1 PREVIEW (LAZY)`: without the attribute list's parentheses, PREVIEW's modifier list comes where FETCH's
  // own modifiers would (RFC 8970 §5 grammar): a list of LAZY alone is PREVIEW's.
  const previewOwnsList = attArg !== undefined && isAtomNamed(attArg, 'PREVIEW') && previewModifiers(given) === 'lazy';
  const modifierArg = previewOwnsList ? undefined : given;
  const mailbox = s.selected;
  let seqs = resolveSet(setArg, mailbox, uid);
  const modifiers = parseFetchModifiers(modifierArg);
  if (modifiers.vanished && (!uid || !s.isEnabled('QRESYNC'))) throw new ProtocolSyntaxError('VANISHED needs UID FETCH and QRESYNC');
  const split = splitAttributes(attArg, s.hasObjectIds);
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
  // A large whole message (BODY[], RFC822) is streamed as its literal is written; the rest is built as usual.
  const streamed = streamedFetch(request);
  const build = (seq: number): Promise<{ items?: ImapResponseValue[]; err?: unknown; stream?: boolean }> => {
    const m = mailbox.at(seq);
    const stream = streamed !== undefined && shouldStream(m);
    // PREVIEW (RFC 8970) comes after the other items; it reads the message but never sets \Seen.
    const built = buildFetchItems(m, stream ? streamed.rest : request, { flags: mailbox.flagsOf(m), includeFlags: seen.has(m.uid), preview: split.preview });
    return built.then(
      (items) => ({ items, stream }),
      (err: unknown) => ({ err }),
    );
  };
  const ahead = seqs.slice(0, FETCH_WINDOW).map(build);
  // Responses accumulate in one builder (text as one string, literals uncopied) and leave in chunks of about
  // FETCH_FLUSH_OCTETS: few allocations per message, bounded memory per FETCH.
  const wire = new ImapWireBuilder();
  const sendWire = (): void => {
    for (const chunk of wire.take()) s.send(chunk);
  };
  for (const [index, seq] of seqs.entries()) {
    const message = mailbox.at(seq);
    const next = seqs[index + FETCH_WINDOW];
    if (next !== undefined) ahead.push(build(next));
    const built = await ahead.shift()!;
    const items = built.items;
    if (items === undefined) {
      if (isMailStoreError(built.err, 'NO_SUCH_MESSAGE')) continue;
      sendWire(); // the responses before the failing message still leave, in order
      if (built.err instanceof UnknownTransferEncodingError) throw new ImapError('NO', 'UNKNOWN-CTE', 'Unknown Content-Transfer-Encoding');
      throw built.err;
    }
    if (split.objects.length > 0) items.push(...objectFetchValues(message, split.objects));
    if (withModseq || (mailbox.condstore && items.some((i) => isAtomOut(i, 'FLAGS')))) items.push(atom('MODSEQ'), [message.modseq]);
    if (built.stream && streamed !== undefined && shouldStream(message)) {
      let file: Readable;
      try {
        file = await message.openStream(); // before `{size}` goes out: a vanished message is skipped cleanly
      } catch (err) {
        if (isMailStoreError(err, 'NO_SUCH_MESSAGE')) continue;
        sendWire();
        throw err;
      }
      const before = items.slice(0, streamed.itemIndex);
      const after = items.slice(streamed.itemIndex);
      wire.ascii(`* ${seq} FETCH (`).items(before).ascii(`${before.length > 0 ? ' ' : ''}${streamed.name} {${message.size}}\r\n`);
      sendWire();
      await s.flush();
      if (!(await pumpLiteral(file, message.size, s))) {
        // The file does not hold the size announced: the literal cannot be completed in step with the client.
        s.log.warn('message size changed while streamed', { uid: message.uid });
        await s.end('error');
        return;
      }
      wire.ascii(after.length > 0 ? ' ' : '').items(after).ascii(')\r\n');
    } else {
      wire.ascii(`* ${seq} FETCH `).value(items).ascii('\r\n');
    }
    if (wire.size >= FETCH_FLUSH_OCTETS) {
      sendWire();
      await s.flush();
    }
    if (s.isEnding) return;
  }
  sendWire();
  await s.ok(`${cmd.command} completed`);
}

function isAtomOut(value: ImapResponseValue, name: string): boolean {
  return typeof value === 'object' && value !== null && 'atom' in value && value.atom === name;
}
