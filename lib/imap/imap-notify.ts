/**
 * NOTIFY (RFC 5465): which mailboxes and events a session asked to hear about, and the unsolicited responses for
 * mailboxes other than the selected one: `* STATUS` after message events, `* LIST` after mailbox name events.
 * (The selected mailbox keeps its usual EXISTS/EXPUNGE/FETCH updates.)
 */
import type { MailboxEvent, MailboxInfo } from '../contracts/mail-store.js';
import { ProtocolSyntaxError } from '../protocol/reply-error.js';
import { atom, serializeImapItems, type ImapResponseValue } from './imap-format.js';
import { isAtomNamed, valueText, type ImapValue } from './imap-parser.js';
import { decodeMailboxName } from './imap-utf7.js';

/** RFC 5465 §5 events we act on (others are accepted and never occur here). */
const EVENTS = ['MESSAGENEW', 'MESSAGEEXPUNGE', 'FLAGCHANGE', 'ANNOTATIONCHANGE', 'MAILBOXNAME', 'SUBSCRIPTIONCHANGE', 'MAILBOXMETADATACHANGE', 'SERVERMETADATACHANGE', 'NONE'] as const;
/** One RFC 5465 event name, upper-cased. */
export type NotifyEvent = (typeof EVENTS)[number];

/** One `(filter (events))` group (RFC 5465 §6.1). */
interface NotifyGroup {
  readonly filter: 'SELECTED' | 'SELECTED-DELAYED' | 'INBOXES' | 'PERSONAL' | 'SUBSCRIBED' | 'SUBTREE' | 'MAILBOXES';
  readonly mailboxes: readonly string[];
  readonly events: ReadonlySet<NotifyEvent>;
}

/** A parsed `NOTIFY SET [STATUS] …`. */
export interface NotifySpec {
  readonly status: boolean;
  readonly groups: readonly NotifyGroup[];
}

function names(value: ImapValue | undefined): string[] {
  const items = value?.type === 'list' ? value.items : value ? [value] : [];
  if (items.length === 0) throw new ProtocolSyntaxError('Mailbox names expected');
  return items.map((v) => {
    const text = valueText(v);
    if (text === undefined) throw new ProtocolSyntaxError('Mailbox name expected');
    try {
      return decodeMailboxName(text);
    } catch {
      return text;
    }
  });
}

/**
 * Parses the arguments of NOTIFY: `NONE` (undefined) or `SET [STATUS] 1*(filter (events))`.
 * @throws ProtocolSyntaxError for anything else (RFC 5465 §3.1: BAD).
 */
export function parseNotify(args: readonly ImapValue[]): NotifySpec | undefined {
  if (args.length === 1 && isAtomNamed(args[0], 'NONE')) return undefined;
  if (!isAtomNamed(args[0], 'SET')) throw new ProtocolSyntaxError('NOTIFY NONE or NOTIFY SET …');
  let i = 1;
  const status = isAtomNamed(args[i], 'STATUS');
  if (status) i++;
  const groups: NotifyGroup[] = [];
  for (; i < args.length; i++) {
    const g = args[i];
    if (g.type !== 'list' || g.items.length < 2) throw new ProtocolSyntaxError('(filter (events)) expected');
    const kind = g.items[0].type === 'atom' ? g.items[0].value.toUpperCase() : '';
    const withNames = kind === 'SUBTREE' || kind === 'MAILBOXES';
    if (!['SELECTED', 'SELECTED-DELAYED', 'INBOXES', 'PERSONAL', 'SUBSCRIBED', 'SUBTREE', 'MAILBOXES'].includes(kind)) throw new ProtocolSyntaxError('Unknown NOTIFY filter');
    const eventList = g.items[withNames ? 2 : 1];
    if (eventList?.type !== 'list' || g.items.length !== (withNames ? 3 : 2)) throw new ProtocolSyntaxError('(filter (events)) expected');
    const events = new Set<NotifyEvent>();
    for (const e of eventList.items) {
      const name = e.type === 'atom' ? EVENTS.find((n) => n === e.value.toUpperCase()) : undefined;
      // MessageNew may carry fetch attributes (RFC 5465 §5.2); we send STATUS for other mailboxes, so they are not used.
      if (e.type === 'list') continue;
      if (!name) throw new ProtocolSyntaxError('Unknown NOTIFY event');
      events.add(name);
    }
    groups.push({ filter: kind as NotifyGroup['filter'], mailboxes: withNames ? names(g.items[1]) : [], events });
  }
  if (groups.length === 0) throw new ProtocolSyntaxError('NOTIFY SET needs a filter');
  return { status, groups };
}

function matches(group: NotifyGroup, mailbox: string): boolean {
  switch (group.filter) {
    case 'INBOXES':
      return mailbox === 'INBOX';
    case 'PERSONAL':
    case 'SUBSCRIBED':
      return true;
    case 'MAILBOXES':
      return group.mailboxes.includes(mailbox);
    case 'SUBTREE':
      return group.mailboxes.some((m) => mailbox === m || mailbox.startsWith(`${m}/`));
    default:
      return false;
  }
}

/** The events asked for `mailbox` (not the selected one), merged over every matching group. */
export function eventsFor(spec: NotifySpec, mailbox: string): Set<NotifyEvent> {
  const out = new Set<NotifyEvent>();
  for (const g of spec.groups) if (matches(g, mailbox)) for (const e of g.events) out.add(e);
  return out;
}

/** True when `event` is something `events` asked for. */
export function wants(events: ReadonlySet<NotifyEvent>, event: MailboxEvent): boolean {
  switch (event.type) {
    case 'exists':
      return events.has('MESSAGENEW');
    case 'expunge':
      return events.has('MESSAGEEXPUNGE');
    case 'flags':
      // No UIDs: "changes may have been missed" (the store's resync hint), which may hide any message event.
      if (event.uids.length === 0) return events.has('FLAGCHANGE') || events.has('MESSAGENEW') || events.has('MESSAGEEXPUNGE');
      return events.has('FLAGCHANGE');
    case 'mailbox':
      return events.has('MAILBOXNAME');
  }
}

/** Mailboxes named by MAILBOXES/SUBTREE/INBOXES groups (for NOTIFY SET STATUS's first STATUS, RFC 5465 §3.1). */
export function namedMailboxes(spec: NotifySpec): string[] {
  return [...new Set(spec.groups.flatMap((g) => (g.filter === 'INBOXES' ? ['INBOX'] : g.mailboxes)))];
}

/** `(ITEM value …)` of a notification STATUS: what the events let the client keep current (as Dovecot sends). */
export function notifyStatusItems(events: ReadonlySet<NotifyEvent>, info: MailboxInfo): ImapResponseValue[] {
  const items: ImapResponseValue[] = [];
  const add = (name: string, value: number): void => void items.push(atom(name), value);
  if (events.has('MESSAGENEW') || events.has('MESSAGEEXPUNGE')) add('MESSAGES', info.messages);
  if (events.has('MESSAGENEW')) add('UIDNEXT', info.uidNext);
  if (events.has('MESSAGENEW') || events.has('FLAGCHANGE')) add('UIDVALIDITY', info.uidValidity);
  // Every mailbox here has modseqs, so HIGHESTMODSEQ tells of flag changes (RFC 5465 §5.3 with CONDSTORE).
  if (events.has('FLAGCHANGE')) add('HIGHESTMODSEQ', info.highestModseq);
  return items;
}

/** `* STATUS name (…)` with CRLF. */
export function statusLine(wireName: string, items: ImapResponseValue[]): string {
  return `* STATUS ${wireName} ${serializeImapItems([items])}\r\n`;
}
