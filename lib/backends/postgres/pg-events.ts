import type { MailboxEvent } from '../../contracts/mail-store.js';

/** The LISTEN/NOTIFY channel every node of one database shares. */
export const EVENT_CHANNEL = 'postern_events';

/**
 * NOTIFY payloads must stay under 8000 octets (PostgreSQL's limit); UID lists are split so that one payload holds
 * at most this many UIDs (10 digits and a comma each, plus names well under 2000 octets).
 */
const UIDS_PER_PAYLOAD = 500;

/** One NOTIFY payload: the sending node (so it ignores its own echo) and one event, `exists` carrying many UIDs. */
interface Wire {
  readonly n: string;
  readonly e: MailboxEvent | { type: 'exists'; username: string; mailbox: string; uids: number[] };
}

function chunks(uids: number[]): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < uids.length; i += UIDS_PER_PAYLOAD) out.push(uids.slice(i, i + UIDS_PER_PAYLOAD));
  return out;
}

/**
 * The NOTIFY payloads that announce `events` to the other nodes. Consecutive `exists` events of one mailbox are
 * folded into one payload (a COPY of 1,000 messages is a handful of notifications, not 1,000).
 */
export function encodeEvents(node: string, events: readonly MailboxEvent[]): string[] {
  const payloads: string[] = [];
  let pending: { username: string; mailbox: string; uids: number[] } | undefined;
  const flush = (): void => {
    if (pending === undefined) return;
    for (const part of chunks(pending.uids)) payloads.push(JSON.stringify({ n: node, e: { type: 'exists', username: pending.username, mailbox: pending.mailbox, uids: part } } satisfies Wire));
    pending = undefined;
  };
  for (const event of events) {
    if (event.type === 'exists') {
      if (pending?.username !== event.username || pending.mailbox !== event.mailbox) flush();
      pending ??= { username: event.username, mailbox: event.mailbox, uids: [] };
      pending.uids.push(event.uid);
      continue;
    }
    flush();
    if (event.type === 'expunge' || event.type === 'flags') {
      for (const part of chunks(event.uids)) payloads.push(JSON.stringify({ n: node, e: { ...event, uids: part } } satisfies Wire));
    } else {
      payloads.push(JSON.stringify({ n: node, e: event } satisfies Wire));
    }
  }
  flush();
  return payloads;
}

function isText(v: unknown): v is string {
  return typeof v === 'string';
}

function isUids(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((uid) => Number.isSafeInteger(uid));
}

/**
 * Decodes one payload into the sender and its events; undefined for anything malformed (another program may
 * NOTIFY on the channel: it is ignored, never trusted).
 */
export function decodeEvents(payload: string): { node: string; events: MailboxEvent[] } | undefined {
  let wire: unknown;
  try {
    wire = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const { n, e } = (wire ?? {}) as { n?: unknown; e?: Record<string, unknown> };
  if (!isText(n) || e === undefined || e === null || !isText(e.username) || !isText(e.mailbox)) return undefined;
  const base = { username: e.username, mailbox: e.mailbox };
  switch (e.type) {
    case 'exists':
      return isUids(e.uids) ? { node: n, events: e.uids.map((uid) => ({ type: 'exists', ...base, uid })) } : undefined;
    case 'expunge':
    case 'flags':
      return isUids(e.uids) ? { node: n, events: [{ type: e.type, ...base, uids: e.uids }] } : undefined;
    case 'mailbox': {
      const change = e.change;
      if (change !== 'created' && change !== 'deleted' && change !== 'renamed') return undefined;
      if (change === 'renamed') return isText(e.newName) ? { node: n, events: [{ type: 'mailbox', ...base, change, newName: e.newName }] } : undefined;
      return { node: n, events: [{ type: 'mailbox', ...base, change }] };
    }
    default:
      return undefined;
  }
}
