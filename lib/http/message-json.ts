import type { DeliveryEnvelope } from '../contracts/mail-store.js';
import type { MailAddress, ReceivedMessage } from '../test-double/received-message.js';

/** One message in `GET /api/v1/messages` (and in the `message` event of `/api/v1/events`). */
export interface MessageSummaryJson {
  readonly id: string;
  readonly subject: string | null;
  readonly from: MailAddress | null;
  readonly to: readonly MailAddress[];
  readonly cc: readonly MailAddress[];
  /** The `Date:` header (ISO 8601), or null. */
  readonly date: string | null;
  /** When the store received it (ISO 8601). */
  readonly receivedAt: string;
  readonly size: number;
  readonly user: string;
  readonly mailbox: string;
  readonly uid: number;
  readonly flags: readonly string[];
  readonly messageId: string | null;
  readonly attachments: number;
  readonly envelope: DeliveryEnvelope | null;
}

/** `GET /api/v1/messages/{id}`: the summary plus the parsed content. */
export interface MessageDetailJson extends Omit<MessageSummaryJson, 'attachments'> {
  readonly bcc: readonly MailAddress[];
  readonly replyTo: readonly MailAddress[];
  readonly text: string | null;
  readonly html: string | null;
  /** Header lines as written, in order. */
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  readonly attachments: ReadonlyArray<{ index: number; filename: string | null; contentType: string; size: number; contentId: string | null; disposition: string | null }>;
  /** The TLS facts of the session that delivered it (from the envelope), or null. */
  readonly tls: DeliveryEnvelope['tls'] | null;
}

/** The list shape. */
export function summaryJson(m: ReceivedMessage): MessageSummaryJson {
  return {
    id: m.id,
    subject: m.subject ?? null,
    from: m.from ?? null,
    to: m.to,
    cc: m.cc,
    date: m.date && !Number.isNaN(m.date.getTime()) ? m.date.toISOString() : null,
    receivedAt: m.internalDate.toISOString(),
    size: m.size,
    user: m.username,
    mailbox: m.mailbox,
    uid: m.uid,
    flags: m.flags,
    messageId: m.messageId ?? null,
    attachments: m.attachments.length,
    envelope: m.envelope ?? null,
  };
}

/** The detail shape. */
export function detailJson(m: ReceivedMessage): MessageDetailJson {
  return {
    ...summaryJson(m),
    bcc: m.bcc,
    replyTo: m.replyTo,
    text: m.text ?? null,
    html: m.html ?? null,
    headers: m.headerLines.map((h) => {
      const colon = h.line.indexOf(':');
      return { name: colon === -1 ? h.key : h.line.slice(0, colon), value: colon === -1 ? '' : h.line.slice(colon + 1).trim() };
    }),
    attachments: m.attachments.map((a, index) => ({
      index,
      filename: a.filename ?? null,
      contentType: a.contentType,
      size: a.size,
      contentId: a.contentId ?? null,
      disposition: a.disposition ?? null,
    })),
    tls: m.envelope?.tls ?? null,
  };
}

/** Filters of `GET /api/v1/messages`; every one is optional, text matches are case-insensitive substrings. */
export interface MessageFilter {
  /** A `To:`/`Cc:` address or an envelope recipient (so Bcc recipients are found too). */
  to?: string;
  from?: string;
  subject?: string;
  /** Text search in subject, addresses, text and HTML bodies. */
  q?: string;
  /** Mailbox owner, exact. */
  user?: string;
  /** Mailbox name, exact (`INBOX` in any case). */
  mailbox?: string;
}

/** True when `m` passes every filter given. */
export function matchesFilter(m: ReceivedMessage, f: MessageFilter): boolean {
  const has = (hay: string | undefined, needle: string): boolean => (hay ?? '').toLowerCase().includes(needle.toLowerCase());
  const addr = (list: readonly MailAddress[], needle: string): boolean => list.some((a) => has(a.address, needle) || has(a.name, needle));
  if (f.user !== undefined && m.username !== f.user) return false;
  if (f.mailbox !== undefined && !(m.mailbox === f.mailbox || (f.mailbox.toUpperCase() === 'INBOX' && m.mailbox === 'INBOX'))) return false;
  if (f.to !== undefined && !addr(m.to, f.to) && !addr(m.cc, f.to) && !(m.envelope?.rcptTo ?? []).some((r) => has(r, f.to!))) return false;
  if (f.from !== undefined && !(m.from && addr([m.from], f.from)) && !has(m.envelope?.mailFrom, f.from)) return false;
  if (f.subject !== undefined && !has(m.subject, f.subject)) return false;
  if (f.q !== undefined) {
    const q = f.q;
    const hit = has(m.subject, q) || has(m.text, q) || has(m.html, q) || (m.from !== undefined && addr([m.from], q)) || addr(m.to, q) || addr(m.cc, q);
    if (!hit) return false;
  }
  return true;
}
