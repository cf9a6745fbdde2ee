import type { MailboxInfo } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { isAtomNamed, type ImapValue } from '../imap-parser.js';
import { DELIMITER, listPatternArg, storeCall, wireMailbox } from './args.js';

/**
 * Turns a LIST pattern into a RegExp (RFC 3501 §6.3.8): `*` matches anything, `%` anything but the delimiter.
 * Names match case-sensitively, except that `INBOX` matches in any case (RFC 3501 §5.1), also when the pattern
 * reaches it through a wildcard (`inbox%`, `In*`): the pattern's leading letters that spell INBOX in some
 * case are compared with the canonical `INBOX` (as Dovecot does).
 */
export function listPattern(pattern: string): RegExp {
  const exact = patternSource(pattern);
  const inbox = patternSource(inboxCase(pattern));
  return new RegExp(`^(?:${exact}|(?=INBOX(?:/|$))${inbox})$`, 's');
}

function patternSource(pattern: string): string {
  return [...pattern].map((c) => (c === '*' ? '.*' : c === '%' ? '[^/]*' : c.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('');
}

/** The pattern with its leading letters that spell a prefix of INBOX (in any case) upper-cased. */
function inboxCase(pattern: string): string {
  let i = 0;
  while (i < 5 && i < pattern.length && pattern[i].toUpperCase() === 'INBOX'[i]) i++;
  return 'INBOX'.slice(0, i) + pattern.slice(i);
}

/** RFC 5258 §3 options this server understands. */
interface ListOptions {
  /** Selection SUBSCRIBED: list subscriptions (existing or not). */
  subscribedOnly: boolean;
  /** Selection SPECIAL-USE (RFC 6154 §3): only mailboxes with a special use. */
  specialUseOnly: boolean;
  /** RETURN SUBSCRIBED (or implied by the selection). */
  returnSubscribed: boolean;
}

function readOptions(value: ImapValue | undefined, allowed: readonly string[]): string[] {
  if (value?.type !== 'list') throw new ProtocolSyntaxError('Option list expected');
  return value.items.map((item) => {
    const name = item.type === 'atom' ? item.value.toUpperCase() : '';
    if (!allowed.includes(name)) throw new ProtocolSyntaxError('Unsupported LIST option');
    return name;
  });
}

/**
 * LIST (RFC 3501 §6.3.8) with the RFC 5258 basics: selection options SUBSCRIBED, REMOTE (no remote mailboxes
 * here), SPECIAL-USE; several patterns; RETURN (SUBSCRIBED CHILDREN SPECIAL-USE). `\HasChildren`/`\HasNoChildren`
 * (RFC 3348) are always sent, `\Noselect` for hierarchy-only levels, special-use attributes when the store has them.
 */
export async function list(s: ImapConnection): Promise<void> {
  const args = [...s.command.args];
  const options: ListOptions = { subscribedOnly: false, specialUseOnly: false, returnSubscribed: false };
  if (args[0]?.type === 'list') {
    for (const o of readOptions(args.shift(), ['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE'])) {
      if (o === 'SUBSCRIBED') options.subscribedOnly = options.returnSubscribed = true;
      if (o === 'SPECIAL-USE') options.specialUseOnly = true;
    }
  }
  if (args.length === 4 && isAtomNamed(args[2], 'RETURN')) {
    for (const o of readOptions(args[3], ['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE'])) if (o === 'SUBSCRIBED') options.returnSubscribed = true;
    args.length = 2;
  }
  if (args.length !== 2) throw new ProtocolSyntaxError('LIST reference mailbox');
  const reference = listPatternArg(args[0]);
  const patterns = args[1].type === 'list' ? args[1].items.map(listPatternArg) : [listPatternArg(args[1])];
  if (patterns.length === 0) throw new ProtocolSyntaxError('Pattern expected');
  if (patterns.length === 1 && patterns[0] === '') {
    // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root of the reference.
    const root = reference.includes(DELIMITER) ? reference.slice(0, reference.indexOf(DELIMITER) + 1) : '';
    s.send(`* LIST (\\Noselect) "${DELIMITER}" ${wireMailbox(root)}\r\n`);
    return s.ok('LIST completed');
  }
  const regexes = patterns.map((p) => listPattern(reference + p));
  const matches = (name: string): boolean => regexes.some((r) => r.test(name));
  const boxes = await storeCall(() => s.mailboxes.list());
  const subscriptions = new Set(options.returnSubscribed || options.subscribedOnly ? await storeCall(() => s.mailboxes.subscriptions()) : []);
  const byName = new Map(boxes.map((b) => [b.name, b]));
  const names = options.subscribedOnly ? [...subscriptions] : boxes.map((b) => b.name);
  for (const name of names) {
    if (!matches(name)) continue;
    const info = byName.get(name);
    if (options.specialUseOnly && !info?.specialUse) continue;
    const attrs = attributes(info);
    if (options.returnSubscribed && subscriptions.has(name)) attrs.push('\\Subscribed');
    s.send(`* LIST (${attrs.join(' ')}) "${DELIMITER}" ${wireMailbox(name)}\r\n`);
  }
  await s.ok('LIST completed');
}

function attributes(info: MailboxInfo | undefined): string[] {
  // RFC 5258 §3.4: a subscribed name that does not exist is \NonExistent (which implies \Noselect).
  if (!info) return ['\\NonExistent', '\\Noselect'];
  const attrs: string[] = [];
  if (info.noselect) attrs.push('\\Noselect');
  attrs.push(info.hasChildren ? '\\HasChildren' : '\\HasNoChildren');
  if (info.specialUse) attrs.push(info.specialUse);
  return attrs;
}

/**
 * LSUB reference pattern (RFC 3501 §6.3.9): the subscriptions that match, `\Noselect` for names that do not exist.
 * When the pattern ends in `%`, a level above a subscribed name is returned too, flagged `\Noselect`, if it
 * matches and is not subscribed itself (RFC 3501 §6.3.9: `foo/bar` subscribed, `LSUB "" %` returns `foo`).
 */
export async function lsub(s: ImapConnection): Promise<void> {
  const args = s.command.args;
  if (args.length !== 2) throw new ProtocolSyntaxError('LSUB reference mailbox');
  const pattern = listPatternArg(args[0]) + listPatternArg(args[1]);
  const regex = listPattern(pattern);
  const boxes = new Map((await storeCall(() => s.mailboxes.list())).map((b) => [b.name, b]));
  const subscribed = await storeCall(() => s.mailboxes.subscriptions());
  const subscribedSet = new Set(subscribed);
  const sent = new Set<string>();
  for (const name of subscribed) {
    if (pattern.endsWith('%')) {
      for (let i = name.indexOf(DELIMITER); i > 0; i = name.indexOf(DELIMITER, i + 1)) {
        const level = name.slice(0, i);
        if (subscribedSet.has(level) || sent.has(level) || !regex.test(level)) continue;
        sent.add(level);
        s.send(`* LSUB (\\Noselect) "${DELIMITER}" ${wireMailbox(level)}\r\n`);
      }
    }
    if (!regex.test(name) || sent.has(name)) continue;
    sent.add(name);
    const info = boxes.get(name);
    const attrs = !info || info.noselect ? '\\Noselect' : '';
    s.send(`* LSUB (${attrs}) "${DELIMITER}" ${wireMailbox(name)}\r\n`);
  }
  await s.ok('LSUB completed');
}
