import type { Readable } from 'node:stream';
import { isMailStoreError, type DeliveryEnvelope, type MailStore } from '../contracts/mail-store.js';
import type { Envelope, LmtpDataSession, MailParams, RcptParams, RecipientStatus, SmtpBackend, SmtpContext, SmtpSession } from './smtp-backend.js';
import { domainOf } from './smtp-address.js';
import type { SmtpSettings } from './smtp-options.js';
import { SmtpReplyError } from './smtp-replies.js';

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
 */
export class MailStoreSmtpBackend implements SmtpBackend {
  constructor(
    private readonly store: MailStore,
    private readonly settings: SmtpSettings,
  ) {}

  async openSession(context: SmtpContext): Promise<SmtpSession> {
    return new MailStoreSmtpSession(this.store, this.settings, context);
  }
}

class MailStoreSmtpSession implements SmtpSession, LmtpDataSession {
  /** Recipients delivered to a user other than the address's owner (postmaster), lower-cased → username. */
  private aliases?: Map<string, string>; // made by the first alias: most sessions have none (issue 15)

  constructor(
    private readonly store: MailStore,
    private readonly settings: SmtpSettings,
    private readonly context: SmtpContext,
  ) {}

  async mailFrom(_from: string, _params: MailParams): Promise<void> {}

  async rcptTo(to: string, _params: RcptParams): Promise<void> {
    const domain = domainOf(to);
    const accepted = this.settings.acceptedDomains;
    if (domain !== '' && accepted.length > 0 && !accepted.includes(domain) && this.context.user === undefined) {
      throw new SmtpReplyError(550, '5.7.1', 'Relaying denied');
    }
    if (this.settings.authDisabled) return;
    if ((await this.store.users.findByAddress(to)) !== undefined) return;
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
    await this.deliverAll(body, envelope, (_rcpt, err) => {
      if (err !== undefined) throw err;
    });
  }

  /** LMTP (RFC 2033 §4.2): the same delivery, with one outcome per recipient (a full mailbox fails only its own). */
  async lmtpData(body: Readable, envelope: Envelope, status: RecipientStatus): Promise<void> {
    await this.deliverAll(body, envelope, (rcpt, err) => status.set(rcpt, err));
  }

  /**
   * Collects the body, then delivers one copy per distinct mailbox and reports each recipient's outcome to `report`
   * (which may throw to stop: SMTP's all-or-nothing `data`).
   */
  private async deliverAll(body: Readable, envelope: Envelope, report: (rcpt: string, err?: SmtpReplyError) => void): Promise<void> {
    const parts: Buffer[] = [Buffer.from(`Return-Path: <${envelope.mailFrom}>\r\n`, 'utf8')];
    for await (const chunk of body) parts.push(chunk as Buffer);
    const raw = Buffer.concat(parts);
    const facts = deliveryEnvelope(envelope, new Date());
    // One copy per recipient address, and one per alias target (`<Postmaster>` and `postmaster@x` are one mailbox).
    const done = new Map<string, SmtpReplyError | undefined>();
    for (const rcpt of envelope.rcptTo) {
      const alias = this.aliases?.get(rcpt.toLowerCase());
      const key = alias !== undefined ? `\0${alias}` : rcpt.toLowerCase();
      if (!done.has(key)) {
        let outcome: SmtpReplyError | undefined;
        try {
          if (alias !== undefined) await deliverToUser(this.store, alias, raw, facts);
          else await this.store.deliver(rcpt, raw, { envelope: facts });
        } catch (err) {
          // The recipient was checked at RCPT; it vanished meanwhile (or the store is full).
          if (isMailStoreError(err, 'NO_SUCH_USER')) outcome = new SmtpReplyError(550, '5.1.1', `No such user here: ${rcpt}`);
          else if (isMailStoreError(err, 'OVER_QUOTA')) outcome = new SmtpReplyError(552, '5.2.2', 'Mailbox full');
          else throw err;
        }
        done.set(key, outcome);
      }
      report(rcpt, done.get(key));
    }
  }

  reset(): void {
    this.aliases?.clear();
  }

  async close(): Promise<void> {}
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

/**
 * The store's record of an SMTP transaction: the envelope plus the session facts a test or the web inbox shows (no
 * other mail test tool keeps the TLS facts). `receivedAt` is when the body was complete.
 */
export function deliveryEnvelope(envelope: Envelope, receivedAt: Date): DeliveryEnvelope {
  const security = envelope.peer.security;
  const subject = security.peerCertificate?.subject;
  return {
    mailFrom: envelope.mailFrom,
    rcptTo: [...envelope.rcptTo],
    helo: envelope.helo,
    ...(envelope.user !== undefined ? { authUser: envelope.user } : {}),
    clientAddress: envelope.peer.remoteAddress,
    clientPort: envelope.peer.remotePort,
    ...(security.tls
      ? {
          tls: subject
            ? // X509Certificate.subject is one RDN per line; RFC 4514 text joins them with commas.
              { protocol: security.protocol ?? '', cipher: security.cipher ?? '', clientCertSubject: subject.split('\n').join(', ') }
            : tlsRecord(security.protocol ?? '', security.cipher ?? ''),
        }
      : {}),
    protocol: /^(UTF8)?LMTP/.test(envelope.protocol) ? 'lmtp' : 'smtp',
    receivedAt: receivedAt.toISOString(),
  };
}

/** Shared, frozen `tls` records of envelopes without a client certificate: a handful of protocol/cipher pairs. */
const TLS_RECORDS = new Map<string, NonNullable<DeliveryEnvelope['tls']>>();

/**
 * The `tls` record for `protocol` and `cipher`, one frozen object per pair, so that a store keeping every envelope
 * (the memory store) holds one object less per message. Bounded: past 64 pairs a fresh object is returned.
 */
function tlsRecord(protocol: string, cipher: string): NonNullable<DeliveryEnvelope['tls']> {
  const key = `${protocol} ${cipher}`;
  let record = TLS_RECORDS.get(key);
  if (record === undefined) {
    record = Object.freeze({ protocol, cipher });
    if (TLS_RECORDS.size < 64) TLS_RECORDS.set(key, record);
  }
  return record;
}
