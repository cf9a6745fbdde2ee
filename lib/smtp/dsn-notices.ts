/**
 * "Delivered" notices (RFC 3461 §5.2.2): a server that offers DSN and delivers a message into a mailbox for a
 * recipient whose RCPT said `NOTIFY=SUCCESS` must report that delivery to the envelope sender. The notice is an
 * RFC 3464 `multipart/report` message (a human-readable part, `message/delivery-status`, and the original headers),
 * sent with a null reverse-path so that it never causes another notice (RFC 3461 §6.2, RFC 5321 §4.5.5).
 *
 * Postern has no outbound transport: the default {@link DsnNoticeSender} puts the notice into the store when the
 * sender is a local user (or, with `authDisabled`, into a mailbox made for the sender's address, as every other
 * message is in that mode), and logs that it could not send it otherwise. Rebind {@link DsnNoticeSender} to hand
 * notices for other senders to your MTA.
 */
import { randomBytes } from 'node:crypto';
import type { ServiceIdentifier } from 'inversify';
import type { MailStore } from '../contracts/mail-store.js';
import type { Logger } from '../log/logger.js';
import type { Envelope } from './smtp-backend.js';

/** A notice to send: a complete message, to go to {@link to} from the null reverse-path `<>`. */
export interface DsnNotice {
  /** The original message's envelope sender (its MAIL FROM), where the notice goes. */
  readonly to: string;
  /** The forward-paths it reports as delivered, as their RCPT TO gave them. */
  readonly recipients: readonly string[];
  /** The notice itself (RFC 5322, `multipart/report; report-type=delivery-status`), CRLF line ends. */
  readonly raw: Buffer;
  /** The original message required TLS (REQUIRETLS, RFC 8689): the notice must travel under REQUIRETLS too (§5). */
  readonly requireTls?: true;
}

/** Sends the "delivered" notices of the default SMTP/LMTP backend (`MailStoreSmtpBackend`, with `smtp.dsn`). */
export interface DsnNoticeSender {
  /**
   * Sends one notice. Called after the message was stored and before the client hears `250`; a rejection is logged
   * and does not fail the delivery (the message is in the store either way).
   */
  send(notice: DsnNotice): Promise<void>;
  /** Called once by the container's shutdown (`unbindAllAsync`) when present: finish or give up what is pending. */
  close?(): Promise<void>;
}
/** DI token for the {@link DsnNoticeSender} (bound by the SMTP and LMTP modules to {@link LocalDsnNoticeSender}). */
export const DsnNoticeSender = Symbol.for('postern.DsnNoticeSender') as ServiceIdentifier<DsnNoticeSender>;

/**
 * The default {@link DsnNoticeSender}: a notice for a local user goes into that user's INBOX (with `authDisabled`,
 * into the mailbox made for the address); for anyone else it is logged at warn as not sent.
 */
export class LocalDsnNoticeSender implements DsnNoticeSender {
  constructor(
    private readonly store: MailStore,
    private readonly authDisabled: boolean,
    private readonly log: Logger,
  ) {}

  /** True when a notice to `address` stays here: a local user's address, or any address with `authDisabled`. */
  async isLocal(address: string): Promise<boolean> {
    return this.authDisabled || (await this.store.users.findByAddress(address)) !== undefined;
  }

  async send(notice: DsnNotice): Promise<void> {
    if (!(await this.isLocal(notice.to))) {
      this.log.warn('delivery notice not sent: the sender is not a local user and no DsnNoticeSender is bound', { to: notice.to, recipients: notice.recipients.length });
      return;
    }
    // Final delivery adds the reverse-path (RFC 5321 §4.4): a notice's is the null path.
    await this.store.deliver(notice.to, Buffer.concat([RETURN_PATH_NULL, notice.raw]));
    this.log.info('delivery notice stored', { to: notice.to, recipients: notice.recipients.length });
  }
}

const RETURN_PATH_NULL = Buffer.from('Return-Path: <>\r\n', 'latin1');
const NON_ASCII = /[^\x00-\x7f]/;

/** The forward-paths of `envelope` whose RCPT asked for a notice on success (`NOTIFY=…SUCCESS…`), in RCPT order. */
export function successNoticeRecipients(envelope: Envelope): number[] {
  const params = envelope.rcptParams;
  if (params === undefined || envelope.mailFrom === '') return []; // never a notice to <> (RFC 3461 §6.2)
  const wanted: number[] = [];
  for (let i = 0; i < params.length; i++) if (params[i]?.notify?.includes('SUCCESS')) wanted.push(i);
  return wanted;
}

/** What {@link deliveredNotice} reports. */
export interface DeliveredReport {
  /** The reporting server's name (`Reporting-MTA: dns; …`, the From address's domain). */
  readonly hostname: string;
  readonly envelope: Envelope;
  /** Indexes into `envelope.rcptTo` of the recipients delivered and reported. */
  readonly delivered: readonly number[];
  /** The message as stored: its header block is returned (RFC 3461 §4.3: a success notice returns only headers). */
  readonly message: Buffer;
  /** When the message arrived (`Arrival-Date`), and the notice's `Date`. */
  readonly arrivedAt: Date;
}

/**
 * An RFC 3464 delivery report saying that each of `delivered` was delivered (`Action: delivered`, `Status: 2.0.0`),
 * with the transaction's `ENVID` (`Original-Envelope-Id`) and each recipient's `ORCPT` (`Original-Recipient`).
 */
export function deliveredNotice(report: DeliveredReport): DsnNotice {
  const { hostname, envelope, arrivedAt } = report;
  const recipients = report.delivered.map((i) => envelope.rcptTo[i]!);
  const boundary = `=_postern_dsn_${randomBytes(12).toString('hex')}`;
  const date = arrivedAt.toUTCString().replace('GMT', '+0000');
  const lines = recipients.map((r) => `  <${r}>: delivered to the mailbox`);
  const human = ['This is the mail system at host ' + hostname + '.', '', 'Your message was delivered to the following recipients:', '', ...lines, ''];
  const perMessage = [`Reporting-MTA: dns; ${hostname}`, ...(envelope.mailParams.envid !== undefined ? [`Original-Envelope-Id: ${envelope.mailParams.envid}`] : []), `Arrival-Date: ${date}`];
  const perRecipient = report.delivered.map((i) => {
    const orcpt = envelope.rcptParams?.[i]?.orcpt;
    const final = envelope.rcptTo[i]!;
    return [
      ...(orcpt ? [`Original-Recipient: ${orcpt.addressType}; ${orcpt.address}`] : []),
      `Final-Recipient: ${NON_ASCII.test(final) ? 'utf-8' : 'rfc822'}; ${final}`,
      'Action: delivered',
      'Status: 2.0.0',
    ];
  });
  // RFC 6533 (SMTPUTF8): UTF-8 addresses make the report a message/global-delivery-status with `utf-8` address types,
  // and the text part UTF-8.
  const global = NON_ASCII.test(envelope.mailFrom) || recipients.some((r) => NON_ASCII.test(r));
  const headers = headerBlock(report.message);
  const eightBit = headers.some((b) => b > 0x7f);
  const text = [
    `From: Mail Delivery System <MAILER-DAEMON@${hostname}>`,
    `To: <${envelope.mailFrom}>`,
    'Subject: Successful Mail Delivery Report',
    `Date: ${date}`,
    `Message-ID: <${randomBytes(12).toString('hex')}.dsn@${hostname}>`,
    'Auto-Submitted: auto-replied', // RFC 3834 §5: notices are auto-replies
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    `Content-Type: text/plain; charset=${global ? 'utf-8' : 'us-ascii'}`,
    ...(global ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    ...human,
    `--${boundary}`,
    'Content-Description: Delivery report',
    `Content-Type: ${global ? 'message/global-delivery-status' : 'message/delivery-status'}`,
    ...(global ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    ...perMessage,
    ...perRecipient.flatMap((fields) => ['', ...fields]),
    '',
    `--${boundary}`,
    'Content-Description: Message headers',
    // RFC 6533 §3.5: headers with UTF-8 (SMTPUTF8) travel as message/global-headers.
    `Content-Type: ${eightBit ? 'message/global-headers' : 'text/rfc822-headers'}`,
    ...(eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    '',
  ].join('\r\n');
  const raw = Buffer.concat([Buffer.from(text, 'utf8'), headers, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')]);
  return { to: envelope.mailFrom, recipients, raw, ...(envelope.mailParams.requireTls ? { requireTls: true as const } : {}) };
}

/** The header block of `message` up to and including its last header line's CRLF (all of it when no blank line). */
function headerBlock(message: Buffer): Buffer {
  const end = message.indexOf('\r\n\r\n');
  return end === -1 ? message : message.subarray(0, end + 2);
}
