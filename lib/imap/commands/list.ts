import type { MailboxInfo } from '../../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import type { ImapConnection } from '../imap-connection.js';
import { isAtomNamed, type ImapValue, type ImapCommand } from '../imap-parser.js';
import { serializeImapItems } from '../imap-format.js';
import { DELIMITER, listPatternArg, storeCall, wireMailbox } from './args.js';
import { messageTotals, parseStatusItems, statusValues } from './status.js';

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

/** RFC 5258 §3 options as given. */
interface ListOptions {
  /** Selection SUBSCRIBED: list subscriptions (existing or not). */
  subscribedOnly: boolean;
  /** Selection SPECIAL-USE (RFC 6154 §3): only mailboxes with a special use. */
  specialUseOnly: boolean;
  /** Selection RECURSIVEMATCH (RFC 5258 §3.1): also names whose non-matching descendants are selected (CHILDINFO). */
  recursive: boolean;
  /** RETURN SUBSCRIBED (or implied by the selection). */
  returnSubscribed: boolean;
  /** RETURN CHILDREN (always on for a plain LIST). */
  returnChildren: boolean;
  /** RETURN STATUS (items) (RFC 5819). */
  status?: ImapValue;
}

function readOptions(value: ImapValue | undefined, allowed: readonly string[]): Array<{ name: string; arg?: ImapValue }> {
  if (value?.type !== 'list') throw new ProtocolSyntaxError('Option list expected');
  const out: Array<{ name: string; arg?: ImapValue }> = [];
  for (let i = 0; i < value.items.length; i++) {
    const item = value.items[i];
    const name = item.type === 'atom' ? item.value.toUpperCase() : '';
    if (!allowed.includes(name)) throw new ProtocolSyntaxError('Unsupported LIST option');
    if (name === 'STATUS') {
      const arg = value.items[++i];
      if (arg?.type !== 'list') throw new ProtocolSyntaxError('STATUS (items) expected');
      out.push({ name, arg });
    } else out.push({ name });
  }
  return out;
}

/** Parses selection options, patterns and RETURN options (RFC 5258 §3). @throws ProtocolSyntaxError */
function parseList(all: readonly ImapValue[]): { options: ListOptions; reference: ImapValue; patterns: ImapValue[] } {
  const args = [...all];
  const extended = args[0]?.type === 'list' || isAtomNamed(args[args.length - 2], 'RETURN');
  const options: ListOptions = { subscribedOnly: false, specialUseOnly: false, recursive: false, returnSubscribed: false, returnChildren: !extended };
  if (args[0]?.type === 'list') {
    const selection = readOptions(args.shift(), ['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']).map((o) => o.name);
    options.subscribedOnly = options.returnSubscribed = selection.includes('SUBSCRIBED');
    options.specialUseOnly = selection.includes('SPECIAL-USE');
    options.recursive = selection.includes('RECURSIVEMATCH');
    // RFC 5258 §3.1: RECURSIVEMATCH needs another selection option that is not only REMOTE.
    if (options.recursive && !options.subscribedOnly && !options.specialUseOnly) throw new ProtocolSyntaxError('RECURSIVEMATCH needs a selection option');
  }
  if (args.length === 4 && isAtomNamed(args[2], 'RETURN')) {
    for (const o of readOptions(args[3], ['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE', 'STATUS'])) {
      if (o.name === 'SUBSCRIBED') options.returnSubscribed = true;
      if (o.name === 'CHILDREN') options.returnChildren = true;
      if (o.name === 'STATUS') options.status = o.arg;
    }
    args.length = 2;
  }
  if (args.length !== 2) throw new ProtocolSyntaxError('LIST reference mailbox');
  const patterns = args[1].type === 'list' ? [...args[1].items] : [args[1]];
  if (patterns.length === 0) throw new ProtocolSyntaxError('Pattern expected');
  return { options, reference: args[0], patterns };
}

/**
 * LIST (RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258): selection options SUBSCRIBED, REMOTE (no remote mailboxes
 * here), RECURSIVEMATCH (CHILDINFO), SPECIAL-USE (RFC 6154 §3); several patterns; RETURN (SUBSCRIBED CHILDREN
 * SPECIAL-USE STATUS (…)), the last from LIST-STATUS (RFC 5819: a `* STATUS` after each selectable mailbox).
 * A plain LIST sends `\HasChildren`/`\HasNoChildren` (RFC 3348); an extended one only with RETURN (CHILDREN).
 * `\Noselect` for hierarchy-only levels, `\NonExistent` for subscribed names that do not exist, special-use
 * attributes from the store or, failing that, from the conventional top-level names ({@link specialUseOf}).
 */
export async function list(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const { options, reference: refArg, patterns: patternArgs } = parseList(cmd.args);
  const statusItems = options.status ? parseStatusItems(options.status) : undefined;
  const reference = listPatternArg(refArg, s.utf8);
  const patterns = patternArgs.map((v) => listPatternArg(v, s.utf8));
  if (patterns.length === 1 && patterns[0] === '' && options.returnChildren && !options.subscribedOnly) {
    // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root of the reference.
    const root = reference.includes(DELIMITER) ? reference.slice(0, reference.indexOf(DELIMITER) + 1) : '';
    s.send(`* LIST (\\Noselect) "${DELIMITER}" ${wireMailbox(root, s.utf8)}\r\n`);
    return s.ok('LIST completed');
  }
  const regexes = patterns.map((p) => listPattern(reference + p));
  const matches = (name: string): boolean => regexes.some((r) => r.test(name));
  const boxes = await storeCall(() => s.mailboxes.list());
  const subscriptions = new Set(options.returnSubscribed || options.subscribedOnly ? await storeCall(() => s.mailboxes.subscriptions()) : []);
  const byName = new Map(boxes.map((b) => [b.name, b]));
  const selected = (name: string): boolean =>
    (!options.subscribedOnly || subscriptions.has(name)) && (!options.specialUseOnly || specialUseOf(byName.get(name)) !== undefined);
  const candidates = options.subscribedOnly ? [...new Set([...subscriptions, ...boxes.map((b) => b.name)])].sort() : boxes.map((b) => b.name);
  for (const name of candidates) {
    if (!matches(name)) continue;
    const info = byName.get(name);
    const isSelected = selected(name);
    // RFC 5258 §3.5: with RECURSIVEMATCH, a name whose selected descendants do not match the pattern themselves.
    const childInfo = options.recursive && candidates.some((c) => c.startsWith(`${name}${DELIMITER}`) && selected(c) && !matches(c));
    if (!isSelected && !childInfo) continue;
    if (!info && !isSelected) continue;
    const attrs = attributes(info, options.returnChildren);
    if (options.returnSubscribed && subscriptions.has(name)) attrs.push('\\Subscribed');
    const extra = childInfo ? ` (CHILDINFO (${options.subscribedOnly ? '"SUBSCRIBED"' : '"SPECIAL-USE"'}))` : '';
    s.send(`* LIST (${attrs.join(' ')}) "${DELIMITER}" ${wireMailbox(name, s.utf8)}${extra}\r\n`);
    if (statusItems && info && !info.noselect && isSelected) {
      const totals = await messageTotals(s, statusItems, info.name);
      s.send(`* STATUS ${wireMailbox(info.name, s.utf8)} ${serializeImapItems([statusValues(statusItems, info, totals)])}\r\n`);
    }
  }
  await s.ok('LIST completed');
}

/** RFC 6154 §2 attributes for the conventional top-level names, when the store records none itself. */
const CONVENTIONAL_SPECIAL_USE: Readonly<Record<string, string>> = {
  Drafts: '\\Drafts',
  Sent: '\\Sent',
  Junk: '\\Junk',
  Trash: '\\Trash',
  Archive: '\\Archive',
};

/** The conventional special use of a top-level name (`Sent` → `\\Sent`), or undefined. */
export function conventionalUse(name: string): string | undefined {
  return Object.hasOwn(CONVENTIONAL_SPECIAL_USE, name) ? CONVENTIONAL_SPECIAL_USE[name] : undefined;
}

/** The special-use attribute of a mailbox (RFC 6154 §2): the store's, else the conventional one for its name. */
export function specialUseOf(info: MailboxInfo | undefined): string | undefined {
  if (!info || info.noselect) return undefined;
  return info.specialUse ?? conventionalUse(info.name);
}

function attributes(info: MailboxInfo | undefined, children: boolean): string[] {
  // RFC 5258 §3.4: a subscribed name that does not exist is \NonExistent (which implies \Noselect).
  if (!info) return ['\\NonExistent'];
  const attrs: string[] = [];
  if (info.noselect) attrs.push('\\Noselect');
  if (children) attrs.push(info.hasChildren ? '\\HasChildren' : '\\HasNoChildren');
  const use = specialUseOf(info);
  if (use) attrs.push(use);
  return attrs;
}

/**
 * LSUB reference pattern (RFC 3501 §6.3.9): the subscriptions that match, `\Noselect` for names that do not exist.
 * When the pattern ends in `%`, a level above a subscribed name is returned too, flagged `\Noselect`, if it
 * matches and is not subscribed itself (RFC 3501 §6.3.9: `foo/bar` subscribed, `LSUB "" %` returns `foo`).
 */
export async function lsub(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  if (args.length !== 2) throw new ProtocolSyntaxError('LSUB reference mailbox');
  const pattern = listPatternArg(args[0], s.utf8) + listPatternArg(args[1], s.utf8);
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
        s.send(`* LSUB (\\Noselect) "${DELIMITER}" ${wireMailbox(level, s.utf8)}\r\n`);
      }
    }
    if (!regex.test(name) || sent.has(name)) continue;
    sent.add(name);
    const info = boxes.get(name);
    const attrs = !info || info.noselect ? '\\Noselect' : '';
    s.send(`* LSUB (${attrs}) "${DELIMITER}" ${wireMailbox(name, s.utf8)}\r\n`);
  }
  await s.ok('LSUB completed');
}
