import type { Connection } from '../core/connection.js';
import type { CommandTable } from '../protocol/command-table.js';
import type { FaultStage } from '../protocol/faults.js';
import type { BodyConsumer, BodyDelivery } from '../smtp/smtp-body.js';
import { supportsLmtpData, type Envelope, type SmtpSession } from '../smtp/smtp-backend.js';
import { SmtpConnection, type SmtpConnectionDeps, type Transaction } from '../smtp/smtp-connection.js';
import { withKeyword } from '../smtp/smtp-received.js';
import { REPLIES, reply, SmtpReplyError } from '../smtp/smtp-replies.js';
import type { SmtpState } from '../smtp/smtp-state.js';
import { LMTP_COMMANDS } from './lmtp-commands.js';

/** Outcome per recipient of the message being delivered: lower-cased address → error (`null` = delivered). */
type Outcomes = Map<string, unknown>;

/**
 * One LMTP session (RFC 2033): SMTP's session (`SmtpConnection`: parsing, limits, STARTTLS, AUTH, BDAT, the hooks,
 * the backend, the `Received:` header with `with LMTP`) with three differences: LHLO instead of EHLO/HELO, a `220 …
 * LMTP` greeting, and, after the final dot or BDAT LAST, one reply per accepted recipient in RCPT order (§4.2), so
 * one recipient's failure (a full mailbox: `552 5.2.2`) does not bounce the message for the others. Created by
 * `LmtpServer` for every connection.
 */
export class LmtpConnection extends SmtpConnection {
  /** The current message's per-recipient outcomes, filled by the backend while {@link storeBody} runs. */
  private outcomes?: Outcomes;
  /** The backend's own outcome for recipients it left without a status (`null` = delivered). */
  private backendOutcome: unknown = null;

  constructor(connection: Connection, deps: SmtpConnectionDeps) {
    super(connection, deps);
  }

  protected override get commands(): CommandTable<SmtpState, SmtpConnection> {
    return LMTP_COMMANDS;
  }

  protected override get helloVerbs(): string {
    return 'LHLO';
  }

  /** RFC 2033 §4: the greeting names LMTP. */
  protected override greetingLine(): string {
    return `220 ${this.settings.hostname} LMTP Postern ready\r\n`;
  }

  /** The envelope, with the RFC 3848 `with` keyword `LMTP` (`LMTPS`, `LMTPA`, `LMTPSA`; `UTF8LMTP…`). */
  override envelope(tx: Transaction): Envelope {
    return { ...super.envelope(tx), protocol: withKeyword(true, this.isSecure, this.isAuthenticated, tx.params.smtpUtf8, true) };
  }

  /** Never a whole-message consumer: LMTP's outcomes come per recipient from {@link storeBody}. */
  protected override storeWhole(): undefined {
    return undefined;
  }

  /**
   * The backend's `lmtpData` when it has one (per-recipient outcomes), else its `data` (one outcome for all). Never
   * rejects for a delivery failure: those become replies in {@link completeMessage}.
   */
  protected override storeBody(session: SmtpSession, envelope: Envelope): BodyConsumer {
    const outcomes: Outcomes = new Map();
    this.outcomes = outcomes;
    this.backendOutcome = null;
    return async (body) => {
      try {
        if (supportsLmtpData(session)) await session.lmtpData(body, envelope, { set: (rcpt, error) => outcomes.set(rcpt.toLowerCase(), error ?? null) });
        else await session.data(body, envelope);
      } catch (err) {
        // A destroyed stream (client gone, size, hook refusal) is the delivery's business; it is never stored.
        if (body.destroyed && !body.readableEnded) throw err;
        this.backendOutcome = err;
      }
    };
  }

  /**
   * RFC 2033 §4.2: after the body, one reply per successful RCPT, in order. A refusal of the whole message (size,
   * bare LF, an `onData` hook) is repeated for every recipient; otherwise each gets its own outcome.
   */
  override async completeMessage(tx: Transaction, delivery: BodyDelivery, size: number, refusal?: SmtpReplyError): Promise<void> {
    let whole: unknown = refusal;
    if (refusal) await delivery.abort();
    else {
      try {
        await delivery.finish();
      } catch (err) {
        whole = err;
      }
    }
    const outcomes = this.outcomes ?? new Map<string, unknown>();
    this.outcomes = undefined;
    let delivered = 0;
    let closing = false;
    for (const rcpt of tx.rcptTo) {
      const error = whole ?? (outcomes.has(rcpt.toLowerCase()) ? outcomes.get(rcpt.toLowerCase()) : this.backendOutcome);
      if (error === null || error === undefined) {
        delivered++;
        this.send(reply(250, '2.0.0', `<${rcpt}> Message accepted (${size} octets)`));
      } else if (error instanceof SmtpReplyError) {
        closing ||= error.code === 421;
        this.send(reply(error.code, error.enhanced, `<${rcpt}> ${error.message}`));
      } else {
        this.log.error('delivery failed', { error: (error as Error)?.message, stack: (error as Error)?.stack });
        this.send(REPLIES.bug);
      }
    }
    this.log.info(delivered > 0 ? 'message accepted' : 'message refused', { size, rcpts: tx.rcptTo.length, delivered });
    this.metrics?.message(delivered > 0 ? 'accepted' : 'refused', size);
    // RFC 5321 §3.8: a 421 (from a hook) closes the channel, after every recipient has had its reply.
    if (closing) await this.end('refused');
  }

  /** A `data` fault's reply stands for every recipient (RFC 2033 §4.2 wants one line each); other stages as SMTP. */
  protected override async sendFaultReply(text: string, stage?: FaultStage): Promise<void> {
    const count = stage === 'data' ? Math.max(1, this.tx?.rcptTo.length ?? 1) : 1;
    for (let i = 1; i < count; i++) this.send(text + '\r\n');
    await super.sendFaultReply(text);
  }
}
