import type { Readable } from 'node:stream';
import { isMailStoreError, type DeliveryEnvelope, type MailStore } from '../contracts/mail-store.js';
import type { Envelope, LmtpDataSession, MailParams, RcptParams, RecipientStatus, SmtpBackend, SmtpContext, SmtpSession } from './smtp-backend.js';
import { domainOf } from './smtp-address.js';
import type { SmtpSettings } from './smtp-options.js';
import { deliveryEnvelope } from './delivery-envelope.js';
import { SmtpReplyError } from './smtp-replies.js';
import { ARENA_MESSAGE_MAX, ARENA_SIZE, MessageSlabs } from './message-slabs.js';
import { deliveredNotice, successNoticeRecipients, type DsnNoticeSender } from './dsn-notices.js';
import type { Logger } from '../log/logger.js';

/**
 * The default {@link SmtpBackend}: final delivery into the {@link MailStore} (a message for a local user lands in
 * that user's INBOX, where POP3 and IMAP see it).
 *
 * Recipient policy, in order:
 * 1. a domain outside `acceptedDomains` (when configured) from an unauthenticated client: `550 5.7.1` relaying denied;
 * 2. an address no local user owns: `550 5.1.1`, unless `authDisabled` (the store then creates the user) — except
 *    `postmaster` (bare, or at an accepted domain), which RFC 5321 §4.5.1 says MUST be accepted: it goes to the
 *    `postmaster` setting's user, else to the first user in name order.
 * Postern has no outbound transport, so an authenticated client passes step 1 but still needs a local (or
 * auto-created) recipient.
 *
 * The body is collected and handed to `MailStore.deliver` once per distinct recipient, with a `Return-Path:` header
 * (RFC 5321 §4.4: added at final delivery) before the server's `Received:` header, and with the transaction's
 * {@link DeliveryEnvelope} (every RCPT TO, so Bcc recipients stay visible; HELO, user, client, TLS facts, time).
 *
 * With DSN (`smtp.dsn`), the recipients stored whose RCPT said `NOTIFY=SUCCESS` are reported to the sender in one
 * "delivered" notice (RFC 3461 §5.2.2, see `dsn-notices.ts`), handed to `notices` before the client hears `250`.
 */
export class MailStoreSmtpBackend implements SmtpBackend {
  /** Where this store's messages are copied to (with their `Return-Path:`). */
  private readonly slabs: MessageSlabs;

  /**
   * @param notices sends the "delivered" notices DSN asks for (none: not sent).
   * @param log where a failed notice is reported.
   */
  constructor(
    private readonly store: MailStore,
    private readonly settings: SmtpSettings,
    private readonly notices?: DsnNoticeSender,
    private readonly log?: Logger,
  ) {
    this.slabs = poolFor(store);
  }

  async openSession(context: SmtpContext): Promise<SmtpSession> {
    return new MailStoreSmtpSession(this.store, this.settings, context, this.slabs, this.notices, this.log);
  }
}

class MailStoreSmtpSession implements SmtpSession, LmtpDataSession {
  /** Recipients delivered to a user other than the address's owner (postmaster), lower-cased → username. */
  private aliases?: Map<string, string>; // made by the transaction's first alias: most have none (issue 15)

  constructor(
    private readonly store: MailStore,
    private readonly settings: SmtpSettings,
    private readonly context: SmtpContext,
    private readonly slabs: MessageSlabs,
    private readonly notices: DsnNoticeSender | undefined,
    private readonly log: Logger | undefined,
  ) {}

  /** Any sender: decided at once, no promise (issue 15). */
  mailFrom(_from: string, _params: MailParams): void {}

  /** Relaying is decided at once; a local recipient costs the directory's one lookup and no async frame (issue 15). */
  rcptTo(to: string, _params: RcptParams): void | Promise<void> {
    const domain = domainOf(to);
    const accepted = this.settings.acceptedDomains;
    if (domain !== '' && accepted.length > 0 && !accepted.includes(domain) && this.context.user === undefined) {
      throw new SmtpReplyError(550, '5.7.1', 'Relaying denied');
    }
    if (this.settings.authDisabled) return;
    return this.store.users.findByAddress(to).then((owner) => (owner === undefined ? this.postmasterAlias(to) : undefined));
  }

  /** A recipient no user owns: accepted only as postmaster (RFC 5321 §4.5.1), delivered to the postmaster user. */
  private async postmasterAlias(to: string): Promise<void> {
    const postmaster = isPostmaster(to) ? await this.postmaster() : undefined;
    if (postmaster === undefined) throw new SmtpReplyError(550, '5.1.1', 'No such user here');
    (this.aliases ??= new Map()).set(to.toLowerCase(), postmaster);
  }

  /** The user who reads postmaster mail, if any user exists. */
  private async postmaster(): Promise<string | undefined> {
    const configured = this.settings.postmaster;
    if (configured !== undefined) return this.store.users.find(configured);
    return (await this.store.users.list())[0];
  }

  async data(body: Readable, envelope: Envelope): Promise<void> {
    await this.deliverAll(await collect(this.slabs, body, envelope), envelope, throwRefusal);
  }

  /**
   * The whole message at once (no stream): one copy, with the `Return-Path:` header in front. One recipient without
   * an alias (the common case) is the store's one promise, with no async frame around it (issue 15).
   */
  dataChunks(chunks: readonly Buffer[], size: number, envelope: Envelope): Promise<void> {
    const raw = withReturnPath(this.slabs, envelope, chunks, size);
    const rcpts = envelope.rcptTo;
    if (rcpts.length === 1 && this.aliases === undefined && envelope.rcptParams === undefined) {
      return this.deliverOne(rcpts[0], undefined, raw, deliveryEnvelope(envelope, new Date())).then(throwIfRefused);
    }
    return this.deliverAll(raw, envelope, throwRefusal);
  }

  /** LMTP (RFC 2033 §4.2): the same delivery, with one outcome per recipient (a full mailbox fails only its own). */
  async lmtpData(body: Readable, envelope: Envelope, status: RecipientStatus): Promise<void> {
    await this.deliverAll(await collect(this.slabs, body, envelope), envelope, (rcpt, err) => status.set(rcpt, err));
  }

  /**
   * Delivers one copy of `raw` per distinct mailbox and reports each recipient's outcome to `report` (which may
   * throw to stop: SMTP's all-or-nothing `data`).
   */
  private async deliverAll(raw: Buffer, envelope: Envelope, report: (rcpt: string, err?: SmtpReplyError) => void): Promise<void> {
    const arrivedAt = new Date();
    const facts = deliveryEnvelope(envelope, arrivedAt);
    const rcpts = envelope.rcptTo;
    // One copy per recipient address, and one per alias target (`<Postmaster>` and `postmaster@x` are one mailbox).
    const done = new Map<string, SmtpReplyError | undefined>();
    // Each recipient's outcome, in RCPT order (for DSN's reports), when a RCPT gave DSN parameters.
    const outcomes: Array<SmtpReplyError | undefined> | undefined = envelope.rcptParams !== undefined ? [] : undefined;
    for (const rcpt of rcpts) {
      const lower = rcpt.toLowerCase();
      const alias = this.aliases?.get(lower);
      const key = alias !== undefined ? `\0${alias}` : lower;
      if (!done.has(key)) done.set(key, await this.deliverOne(rcpt, alias, raw, facts));
      const outcome = done.get(key);
      outcomes?.push(outcome);
      report(rcpt, outcome);
    }
    if (outcomes !== undefined) {
      const delivered = successNoticeRecipients(envelope).filter((i) => outcomes[i] === undefined);
      if (delivered.length > 0) await this.notify(raw, envelope, delivered, arrivedAt);
    }
  }

  /** Sends the "delivered" notice for `delivered` (RFC 3461 §5.2.2); a failure is logged, the delivery stands. */
  private async notify(message: Buffer, envelope: Envelope, delivered: number[], arrivedAt: Date): Promise<void> {
    if (this.notices === undefined) return;
    const notice = deliveredNotice({ hostname: this.context.hostname, envelope, delivered, message, arrivedAt });
    try {
      await this.notices.send(notice);
    } catch (err) {
      this.log?.warn('delivery notice failed', { to: notice.to, reason: (err as Error).message });
    }
  }

  /** Stores one copy for `rcpt` (or its alias target); resolves the recipient's refusal, if any. */
  private deliverOne(rcpt: string, alias: string | undefined, raw: Buffer, facts: DeliveryEnvelope): Promise<SmtpReplyError | undefined> {
    const storing = alias !== undefined ? deliverToUser(this.store, alias, raw, facts) : this.store.deliver(rcpt, raw, { envelope: facts });
    return storing.then(stored, (err: unknown) => recipientRefusal(rcpt, err));
  }

  /** The transaction is over: its aliases go (a later one-recipient message takes the fast path of {@link dataChunks} again). */
  reset(): void {
    this.aliases = undefined;
  }

  async close(): Promise<void> {}
}

/** SMTP's all-or-nothing outcome: the first recipient refused refuses the message. */
function throwRefusal(_rcpt: string, err?: SmtpReplyError): void {
  throwIfRefused(err);
}

/** Throws a recipient's refusal (the one-recipient path of {@link MailStoreSmtpSession.dataChunks}). */
function throwIfRefused(err: SmtpReplyError | undefined): void {
  if (err !== undefined) throw err;
}

/** A copy stored: no refusal. */
function stored(): undefined {
  return undefined;
}

/**
 * Why a copy for `rcpt` was not stored, as its reply: the recipient was checked at RCPT and vanished meanwhile
 * (`550 5.1.1`), or the mailbox is full (`552 5.2.2`). Anything else is rethrown (the message fails as a whole).
 */
function recipientRefusal(rcpt: string, err: unknown): SmtpReplyError {
  if (isMailStoreError(err, 'NO_SUCH_USER')) return new SmtpReplyError(550, '5.1.1', `No such user here: ${rcpt}`);
  if (isMailStoreError(err, 'OVER_QUOTA')) return new SmtpReplyError(552, '5.2.2', 'Mailbox full');
  throw err;
}

/** The `Return-Path:` header (RFC 5321 §4.4: added at final delivery). */
function returnPath(envelope: Envelope): string {
  return `Return-Path: <${envelope.mailFrom}>\r\n`;
}

/** The stored message: `Return-Path:`, then `chunks` (the message as received, `Received:` first), in one Buffer. */
function withReturnPath(slabs: MessageSlabs, envelope: Envelope, chunks: readonly Buffer[], size: number): Buffer {
  const head = returnPath(envelope);
  const headLength = Buffer.byteLength(head, 'utf8');
  const raw = slabs.take(headLength + size);
  let at = raw.write(head, 0, 'utf8');
  for (const chunk of chunks) at += chunk.copy(raw, at);
  return at === raw.length ? raw : raw.subarray(0, at);
}

/** Where stored messages' Buffers come from, one pool per process for each kind of store. */
const POOLS = {
  /** For a store that keeps the Buffer (`MailStore.keepsMessageBuffers`): 64 MB arenas, counted once by V8. */
  kept: new MessageSlabs(ARENA_SIZE, ARENA_MESSAGE_MAX),
  /** For a store that writes the message out and drops it: 256 KB slabs, freed soon after. */
  passing: new MessageSlabs(),
};

/** The pool for `store`'s messages. */
function poolFor(store: MailStore): MessageSlabs {
  return store.keepsMessageBuffers === true ? POOLS.kept : POOLS.passing;
}

/** Reads a body stream to its end: the stored message with its `Return-Path:`. */
async function collect(slabs: MessageSlabs, body: Readable, envelope: Envelope): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    parts.push(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return withReturnPath(slabs, envelope, parts, size);
}

/** `postmaster` with no domain, or at any domain (the relay check already ran). Case-insensitive (RFC 5321 §4.5.1). */
function isPostmaster(address: string): boolean {
  const at = address.lastIndexOf('@');
  return (at === -1 ? address : address.slice(0, at)).toLowerCase() === 'postmaster';
}

/**
 * Final delivery into a user's INBOX by username (for aliases such as postmaster, whose target may have no address
 * of its own). Every built-in store's `deliver` also takes a canonical username, which keeps the envelope with the
 * message; a store that resolves addresses only (NO_SUCH_USER) gets a plain append instead.
 */
async function deliverToUser(store: MailStore, username: string, raw: Buffer, envelope: DeliveryEnvelope): Promise<void> {
  try {
    await store.deliver(username, raw, { envelope });
    return;
  } catch (err) {
    if (!isMailStoreError(err, 'NO_SUCH_USER')) throw err;
  }
  const view = await store.openUser(username);
  try {
    await view.append('INBOX', raw);
  } finally {
    await view.release();
  }
}

export { deliveryEnvelope } from './delivery-envelope.js';
