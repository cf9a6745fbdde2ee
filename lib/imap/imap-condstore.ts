/**
 * Parsing for CONDSTORE and QRESYNC (RFC 7162): the SELECT/EXAMINE parameters, the FETCH modifiers and the STORE
 * modifier. The session state they switch on lives in `ImapConnection` (enabled extensions) and
 * `SelectedMailbox` (MODSEQ in FETCH responses, VANISHED instead of EXPUNGE).
 */
import { ProtocolSyntaxError } from '../protocol/reply-error.js';
import { isAtomNamed, valueText, type ImapValue } from './imap-parser.js';
import { parseSequenceSet, SequenceSetError, type SequenceSet } from './imap-sequence.js';

/** RFC 7162 §7 `mod-sequence-value`: 1*DIGIT, at most 2^63-1; we keep JavaScript's exact integers. */
export function modseqArg(value: ImapValue | undefined, allowZero = true): number {
  const n = value?.type === 'number' ? value.value : NaN;
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1)) throw new ProtocolSyntaxError('Invalid mod-sequence value');
  return n;
}

function setArg(value: ImapValue | undefined): SequenceSet {
  const text = value?.type === 'number' || value?.type === 'sequence' ? valueText(value) : undefined;
  try {
    const set = parseSequenceSet(text ?? '');
    if (set.ranges.some((r) => r.start === '*' || r.end === '*')) throw new SequenceSetError('* not allowed here');
    return set;
  } catch (err) {
    if (err instanceof SequenceSetError) throw new ProtocolSyntaxError('Invalid known-uids');
    throw err;
  }
}

/** `QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])` (RFC 7162 §3.2.5). */
export interface QresyncParams {
  readonly uidValidity: number;
  readonly modseq: number;
  /** UIDs the client knows; absent means every UID up to the highest. */
  readonly knownUids?: SequenceSet;
}

/** SELECT/EXAMINE parameters (RFC 4466 §2.1 `select-params`): CONDSTORE (RFC 7162 §3.1.8) and QRESYNC (§3.2.5). */
export interface SelectParams {
  readonly condstore: boolean;
  readonly qresync?: QresyncParams;
}

/**
 * Parses the optional parameter list after the mailbox name.
 * @throws ProtocolSyntaxError for an unknown parameter or a malformed QRESYNC list.
 */
export function parseSelectParams(value: ImapValue | undefined): SelectParams {
  if (value === undefined) return { condstore: false };
  if (value.type !== 'list') throw new ProtocolSyntaxError('SELECT mailbox [(parameters)]');
  let condstore = false;
  let qresync: QresyncParams | undefined;
  const items = value.items;
  for (let i = 0; i < items.length; i++) {
    if (isAtomNamed(items[i], 'CONDSTORE')) condstore = true;
    else if (isAtomNamed(items[i], 'QRESYNC') && items[i + 1]?.type === 'list') {
      const list = (items[++i] as Extract<ImapValue, { type: 'list' }>).items;
      if (list.length < 2 || list.length > 4) throw new ProtocolSyntaxError('QRESYNC (uidvalidity modseq [known-uids [seq-match]])');
      const uidValidity = modseqArg(list[0], false);
      const modseq = modseqArg(list[1], false);
      // The optional seq-match-data only narrows what the server must report; we report from the full known range.
      if (list[3] !== undefined && list[3].type !== 'list') throw new ProtocolSyntaxError('Invalid seq-match-data');
      qresync = list[2] === undefined ? { uidValidity, modseq } : { uidValidity, modseq, knownUids: setArg(list[2]) };
    } else throw new ProtocolSyntaxError('Unknown SELECT parameter');
  }
  return qresync ? { condstore, qresync } : { condstore };
}

/** FETCH modifiers (RFC 7162 §3.1.4.1 CHANGEDSINCE, §3.2.6 VANISHED). */
export interface FetchModifiers {
  readonly changedSince?: number;
  readonly vanished: boolean;
}

/** Parses `(CHANGEDSINCE n [VANISHED])`. @throws ProtocolSyntaxError */
export function parseFetchModifiers(value: ImapValue | undefined): FetchModifiers {
  if (value === undefined) return { vanished: false };
  if (value.type !== 'list' || value.items.length === 0) throw new ProtocolSyntaxError('FETCH modifiers must be a list');
  let changedSince: number | undefined;
  let vanished = false;
  const items = value.items;
  for (let i = 0; i < items.length; i++) {
    if (isAtomNamed(items[i], 'CHANGEDSINCE')) changedSince = modseqArg(items[++i]);
    else if (isAtomNamed(items[i], 'VANISHED')) vanished = true;
    else throw new ProtocolSyntaxError('Unknown FETCH modifier');
  }
  // RFC 7162 §3.2.6: VANISHED only together with CHANGEDSINCE.
  if (vanished && changedSince === undefined) throw new ProtocolSyntaxError('VANISHED needs CHANGEDSINCE');
  return changedSince === undefined ? { vanished } : { changedSince, vanished };
}

/** Parses the STORE modifier list `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3). @throws ProtocolSyntaxError */
export function parseStoreModifiers(value: ImapValue): number {
  if (value.type !== 'list' || value.items.length !== 2 || !isAtomNamed(value.items[0], 'UNCHANGEDSINCE')) {
    throw new ProtocolSyntaxError('Unknown STORE modifier');
  }
  return modseqArg(value.items[1]);
}
