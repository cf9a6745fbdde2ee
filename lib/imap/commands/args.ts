import { isMailStoreError, SYSTEM_FLAGS } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { serializeString } from '../imap-format.js';
import { valueText, type ImapValue } from '../imap-parser.js';
import { exceedsMessageCount, parseSequenceSet, resolveSequenceNumbers, resolveUidSet, SequenceSetError } from '../imap-sequence.js';
import { ImapError } from '../imap-replies.js';
import type { SelectedMailbox } from '../imap-selected.js';
import { decodeMailboxName, encodeMailboxName, MailboxNameError } from '../imap-utf7.js';

/** The hierarchy delimiter on the wire: the store's own `/` (RFC 3501 §5.1.1). */
export const DELIMITER = '/';

/**
 * Decodes a mailbox argument (astring, modified UTF-7, RFC 3501 §5.1.3) to the store's Unicode name.
 * `INBOX` in any case stays for the store to canonicalize (RFC 3501 §5.1).
 * @throws ProtocolSyntaxError (BAD) when no string is there; ImapError `NO [CANNOT]` for a string that is not valid
 *   modified UTF-7: the syntax is right, the name cannot exist (Dovecot answers NO too).
 */
export function mailboxName(value: ImapValue | undefined, utf8 = false): string {
  return decodedName(value, utf8, () => {
    throw new ImapError('NO', 'CANNOT', 'Invalid mailbox name encoding');
  });
}

/**
 * A LIST/LSUB reference or pattern: decoded like {@link mailboxName}, but a string that is not valid modified
 * UTF-7 is kept as it is (it then matches no mailbox, and LIST answers OK, RFC 3501 §6.3.8).
 * @throws ProtocolSyntaxError when no string is there.
 */
export function listPatternArg(value: ImapValue | undefined, utf8 = false): string {
  return decodedName(value, utf8, (text) => text);
}

/**
 * The Unicode name of a mailbox argument: UTF-8 as it is after ENABLE UTF8=ACCEPT (RFC 6855 §3), else decoded from
 * modified UTF-7; `onBadEncoding` decides about a string that is not valid modified UTF-7.
 * @throws ProtocolSyntaxError when no string is there.
 */
function decodedName(value: ImapValue | undefined, utf8: boolean, onBadEncoding: (text: string) => string): string {
  const text = valueText(value);
  if (text === undefined) throw new ProtocolSyntaxError('Mailbox name expected');
  if (utf8) return text;
  try {
    return decodeMailboxName(text);
  } catch (err) {
    if (err instanceof MailboxNameError) return onBadEncoding(text);
    throw err;
  }
}

/** A mailbox name as wire text: modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT (RFC 6855 §3); quoted or literal. */
export function wireMailbox(name: string, utf8 = false): string {
  return utf8 ? serializeString(name, { utf8 }).toString('utf8') : serializeString(encodeMailboxName(name)).toString('latin1');
}

/** The text of a string argument. @throws ProtocolSyntaxError when it is missing or not a string. */
export function stringArg(value: ImapValue | undefined, what: string): string {
  const text = valueText(value);
  if (text === undefined) throw new ProtocolSyntaxError(`${what} expected`);
  return text;
}

/** Checks the number of arguments. @throws ProtocolSyntaxError */
export function expectCount(args: readonly ImapValue[], min: number, max = min): void {
  if (args.length < min || args.length > max) throw new ProtocolSyntaxError('Wrong number of arguments');
}

/**
 * Resolves a sequence set (or UID set for UID commands) to sequence numbers of the selected mailbox.
 * RFC 9051 §9 `seq-number`: a message number beyond the mailbox (or `*` on an empty one) is a client error (BAD);
 * UIDs beyond the highest one are simply not there (RFC 3501 §6.4.8), and `N:*` still matches the last message.
 * @throws ProtocolSyntaxError for a malformed set or a number beyond the mailbox.
 */
export function resolveSet(value: ImapValue | undefined, mailbox: SelectedMailbox, uid: boolean): number[] {
  if (value?.type !== 'number' && value?.type !== 'sequence') throw new ProtocolSyntaxError('Invalid sequence set');
  let set;
  try {
    set = parseSequenceSet(valueText(value) ?? '');
  } catch (err) {
    if (err instanceof SequenceSetError) throw new ProtocolSyntaxError('Invalid sequence set');
    throw err;
  }
  if (uid) return resolveUidSet(set, mailbox.uids);
  if (exceedsMessageCount(set, mailbox.count)) throw new ProtocolSyntaxError('Invalid message sequence number');
  return resolveSequenceNumbers(set, mailbox.count);
}

/**
 * Parses a flag list for STORE/APPEND (RFC 3501 §9 `flag-list`, or a single flag / flags separated by spaces
 * for STORE). System flags are canonicalized; `\Recent` and unknown `\` flags are refused (BAD).
 * @throws ProtocolSyntaxError
 */
export function parseFlags(values: readonly ImapValue[]): string[] {
  const items = values.length === 1 && values[0].type === 'list' ? values[0].items : values;
  return items.map((item) => {
    // RFC 3501 §9: a keyword is an atom, and NIL is an atom where the grammar has no nil (`STORE 1 +FLAGS NIL`).
    if (item.type !== 'atom' && item.type !== 'nil') throw new ProtocolSyntaxError('Invalid flag');
    const name = item.type === 'nil' ? 'NIL' : item.value;
    if (name.startsWith('\\')) {
      const system = SYSTEM_FLAGS.find((f) => f.toLowerCase() === name.toLowerCase());
      if (!system) throw new ProtocolSyntaxError('Invalid system flag');
      return system;
    }
    if (/[\]%*]/.test(name)) throw new ProtocolSyntaxError('Invalid keyword');
    return name;
  });
}

/**
 * Maps a store refusal to an IMAP `NO` with an RFC 5530 code (`TRYCREATE` for a missing target of APPEND, COPY
 * and MOVE: RFC 3501 §6.3.11, §6.4.7). Anything that is not a MailStoreError is returned unchanged (a bug).
 */
export function mapStoreError(err: unknown, missingIsTryCreate = false): unknown {
  if (!isMailStoreError(err)) return err;
  switch (err.code) {
    case 'NO_SUCH_MAILBOX':
      return missingIsTryCreate
        ? new ImapError('NO', 'TRYCREATE', 'Mailbox does not exist')
        : new ImapError('NO', 'NONEXISTENT', 'Mailbox does not exist');
    case 'NO_SUCH_USER':
      return new ImapError('NO', 'UNAVAILABLE', 'No mailboxes for this user');
    case 'NO_SUCH_MESSAGE':
      return new ImapError('NO', 'EXPUNGEISSUED', 'Message was expunged');
    case 'ALREADY_EXISTS':
      return new ImapError('NO', 'ALREADYEXISTS', 'Mailbox already exists');
    case 'CANNOT':
      return new ImapError('NO', 'CANNOT', 'Operation not permitted on this mailbox');
    case 'IN_USE':
      return new ImapError('NO', 'INUSE', 'Mailbox is in use');
    case 'OVER_QUOTA':
      return new ImapError('NO', 'OVERQUOTA', 'Quota exceeded');
  }
}

/** Runs a store call and maps its refusals with {@link mapStoreError}. */
export async function storeCall<T>(call: () => Promise<T>, missingIsTryCreate = false): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw mapStoreError(err, missingIsTryCreate);
  }
}
