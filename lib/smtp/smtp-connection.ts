import type { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { dispatch, type CommandTable, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { debugEnabled } from '../log/logger.js';
import type { FaultStage } from '../protocol/faults.js';
import type { MessageHeader } from './message-header.js';
import { BodyDelivery } from './smtp-body.js';
import type { BodyConsumer, WholeBodyConsumer } from './smtp-body.js';
import type { HeaderHook } from './message-editor.js';
import type { Envelope, SmtpSession } from './smtp-backend.js';
import { SMTP_COMMANDS } from './smtp-commands.js';
import { receivedHeader, withKeyword } from './smtp-received.js';
import { REPLIES, reply, SmtpReplyError } from './smtp-replies.js';
import { SmtpSessionState, type Transaction } from './smtp-session-state.js';
import { stateHint, type SmtpState } from './smtp-state.js';

export type { BdatTransfer, SmtpConnectionDeps, Transaction } from './smtp-session-state.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The body readers and header editors of a message when no hook is bound (shared, never changed). */
const NO_READERS: readonly BodyConsumer[] = [];
const NO_EDITS: readonly HeaderHook[] = [];
/** An octet above 0x7f in a line read as latin1 (one regex test instead of a callback per octet). */
const HIGH_BIT = /[\x80-\xff]/;

/**
 * One SMTP session (RFC 5321) over a {@link Connection}: state, transaction, replies. Business decisions go to the
 * {@link SmtpSession} opened from the backend and to the hooks; commands live in `smtp-commands.ts`.
 *
 * Created by `SmtpServer.handle` for every connection and run until the connection closes.
 *
 * Command-line byte rules (documented choice, issue 3):
 * - a NUL, bare CR or bare LF inside a command line → `500 5.5.2`, counted as an error;
 * - 8-bit bytes must be valid UTF-8 and are allowed only in MAIL/RCPT (where a non-ASCII address then needs the
 *   SMTPUTF8 parameter, else `553 5.6.7`, RFC 6531 §3.5); anywhere else → `500 5.5.2`, counted as an error.
 *
 * The session's state, its backend session, the session hooks' admission and the login are in the base class
 * `SmtpSessionState` (`smtp-session-state.ts`); this class is the wire side and the delivery of messages.
 */
export class SmtpConnection extends SmtpSessionState implements DispatchTarget<SmtpState> {
  protected async greet(): Promise<void> {
    // A bound method, not a closure per connection: V8 keeps a closure's optimized code only while a closure that ran
    // it is alive, so per-connection closures were recompiled after full collections (issue 15).
    const ok = await this.admit(this.openOnConnect.bind(this));
    if (!ok) return;
    // RFC 5321 §4.3.1 / §3.1: greet at once, no early-talker delay.
    this.send(this.greetingLine());
  }

  /** The `220` greeting (RFC 5321 §4.2); LMTP says `LMTP` instead of `ESMTP` (RFC 2033 §4). */
  protected greetingLine(): string {
    return `220 ${this.deps.settings.hostname} ESMTP Postern ready\r\n`;
  }

  /** The greeting verbs named in "bad sequence" hints (`Send EHLO or HELO first`); LMTP says `LHLO`. */
  protected get helloVerbs(): string {
    return 'EHLO or HELO';
  }

  /** The command table this session dispatches on: {@link SMTP_COMMANDS}; a protocol built on SMTP (LMTP) returns its own. */
  protected get commands(): CommandTable<SmtpState, SmtpConnection> {
    return SMTP_COMMANDS;
  }

  protected onLine(line: Buffer): void | Promise<void> {
    if (line.includes(0x00) || line.includes(0x0a) || line.includes(0x0d)) return this.badLine(line, 'C: [line with NUL/CR/LF]', REPLIES.nul);
    let text = line.toString('latin1');
    if (HIGH_BIT.test(text)) {
      try {
        text = utf8.decode(line);
      } catch {
        text = '';
      }
      const verb = text.slice(0, 4).toUpperCase();
      if (text === '' || (verb !== 'MAIL' && verb !== 'RCPT') || text[4] !== ' ') return this.badLine(line, 'C: [8-bit line]', REPLIES.eightBit);
    }
    const sp = text.indexOf(' ');
    const verb = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
    const args = sp === -1 ? '' : text.slice(sp + 1).trimEnd();
    // The wire trace only when it is written (issue 15: no string built per command at the default level).
    if (debugEnabled(this.log)) this.log.debug(verb === 'AUTH' ? `C: AUTH ${args.split(' ')[0]} [redacted]` : `C: ${text}`);
    // Not an async function: the command's own promise, if it has one, is the line's (issue 15).
    return dispatch(this.commands, this, verb, args);
  }

  /** A command line refused for its bytes (NUL/CR/LF inside, or 8-bit outside MAIL/RCPT): logged by size only. */
  private async badLine(line: Buffer, trace: string, refusal: string): Promise<void> {
    this.log.debug(trace, { size: line.length });
    this.send(refusal);
    await this.countError();
  }

  /** DispatchTarget: the SMTP reply for a guard failure. */
  refuse(failure: GuardFailure, verb: string, detail?: string): void {
    switch (failure) {
      case 'unknown':
        this.send(REPLIES.unknown);
        return;
      case 'state':
        const hint = stateHint(verb, this.state, this.helloVerbs);
        this.send(reply(503, '5.5.1', `Bad sequence of commands${hint ? ': ' + hint : ''}`));
        return;
      case 'syntax':
        this.send(reply(501, '5.5.4', `Syntax error${detail ? ': ' + detail : ''}`));
        return;
      case 'tls':
        this.send(REPLIES.authRequiresTls);
        return;
      case 'auth':
        this.send(REPLIES.authRequired);
        return;
      case 'bug':
        this.send(REPLIES.bug);
        return;
    }
  }

  /** An HTTP request line ends the session with 421 (Postfix closes on GET, POST and CONNECT too). */
  protected override httpRequestGoodbye(): string {
    return REPLIES.httpRequest;
  }

  /** A fault's reply (the rule's own line); `421` closes the session, like a 421 from a hook (RFC 5321 §3.8). */
  protected override async sendFaultReply(text: string, _stage?: FaultStage): Promise<void> {
    this.send(text + '\r\n');
    if (text.startsWith('421') && !this.isEnding) await this.end('refused');
  }

  /** Fault stages of SMTP commands; MAIL and RCPT carry their address for a rule's pattern. */
  protected override faultStage(verb: string, args: string): { stage: FaultStage; subjects?: string[] } | undefined {
    switch (verb) {
      case 'STARTTLS':
        return { stage: 'starttls' };
      case 'AUTH':
        return { stage: 'auth' };
      case 'MAIL':
      case 'RCPT': {
        const path = /<([^>]*)>/.exec(args);
        return { stage: verb === 'MAIL' ? 'mail' : 'rcpt', subjects: path ? [path[1]] : [] };
      }
      default:
        return undefined;
    }
  }

  /** DispatchTarget: sends a refusal as-is; client errors count against the budget. */
  async sendReplyError(err: ReplyError): Promise<void> {
    if (!(err instanceof SmtpReplyError)) {
      this.log.error('foreign ReplyError in SMTP', { error: err.message });
      this.send(REPLIES.bug);
      return;
    }
    this.send(reply(err.code, err.enhanced, err.message));
    // RFC 5321 §3.8: a 421 means the server closes the transmission channel; a hook or rule saying 421 gets that.
    if (err.code === 421) {
      this.log.warn('closing after 421', { enhanced: err.enhanced });
      await this.end('refused');
      return;
    }
    if (err.countsAsError) await this.countError();
  }

  protected async onLineTooLong(fatal: boolean): Promise<void> {
    this.send(fatal ? REPLIES.lineRunaway : REPLIES.lineTooLong);
    if (fatal) await this.end('closed');
  }

  protected override async onBareLf(): Promise<void> {
    this.send(REPLIES.nul);
  }

  protected async onTooManyErrors(): Promise<void> {
    this.send(REPLIES.tooManyErrors);
  }

  protected async onIdleTimeout(): Promise<void> {
    this.send(REPLIES.idle);
    await this.end('idle-timeout');
  }

  protected override async onPreAuthTimeout(): Promise<void> {
    this.send(REPLIES.preAuthTimeout);
    await this.end('idle-timeout');
  }

  /** Server shutdown: `421 4.3.2` and close (RFC 5321 §3.8). A transaction in progress is abandoned, nothing stored. */
  async shutdown(): Promise<void> {
    if (this.isEnding) return;
    this.send(REPLIES.shutdown);
    await this.end('server-shutdown');
  }

  /** The envelope of the current transaction. */
  envelope(tx: Transaction): Envelope {
    const envelope: Envelope = {
      mailFrom: tx.from,
      mailParams: tx.params,
      rcptTo: [...tx.rcptTo],
      helo: this.helo ?? '',
      user: this.user,
      protocol: withKeyword(this.isExtended, this.isSecure, this.isAuthenticated, tx.params.smtpUtf8),
      peer: this.peer,
    };
    // DSN's per-recipient requests, when any recipient made one (rare: the common envelope keeps its shape).
    return tx.rcptParams === undefined ? envelope : { ...envelope, rcptParams: [...tx.rcptParams] };
  }

  /**
   * Starts handing a body to the hooks and the backend, with the `Received:` header (RFC 5321 §4.4) written first.
   * The `onHeader` hooks' edits apply inside the returned delivery, so every caller (DATA, BDAT, LMTP) gets them.
   * The caller writes the body and then calls `finish()` or `abort()`.
   */
  openDelivery(tx: Transaction): Promise<BodyDelivery> {
    const envelope = this.envelope(tx);
    const session = this.backend;
    const bound = this.deps.hooks;
    // No hook bound (the common case): no arrays or closures per message (issue 15).
    const hooks = bound.length === 0 ? NO_READERS : bound.filter((h) => h.onData).map((h) => (body: Readable) => h.onData!(body, envelope));
    const edits = bound.length === 0 ? NO_EDITS : bound.filter((h) => h.onHeader).map((h) => (fields: MessageHeader) => h.onHeader!(fields, envelope));
    const header = receivedHeader({
      helo: envelope.helo,
      remoteAddress: this.connection.remoteAddress,
      hostname: this.settings.hostname,
      protocol: envelope.protocol,
      security: this.connection.security,
      id: this.connection.id,
      rcptTo: tx.rcptTo,
      date: new Date(),
    });
    const received = Buffer.from(header, 'utf8');
    // Nobody reads or edits the body and the backend takes whole messages: the body is only collected (no stream).
    const whole = hooks.length === 0 && edits.length === 0 ? this.storeWhole(session, envelope) : undefined;
    const delivery = new BodyDelivery(
      hooks,
      whole ?? this.storeBody(session, envelope),
      this.whenClosed,
      edits.length === 0 ? undefined : { hooks: edits, maxSize: this.settings.maxMessageSize, exemptOctets: received.length },
    );
    // Collected (the common case): written at once, and no async frame per message (issue 15).
    const written = delivery.write(received);
    return typeof written === 'boolean' ? Promise.resolve(delivery) : written.then(() => delivery);
  }

  /**
   * The final consumer of a whole message, when the backend session has `dataChunks` (used only when no hook reads
   * or edits the body); undefined: {@link storeBody}'s stream. LMTP returns undefined (its outcomes come per
   * recipient).
   */
  protected storeWhole(session: SmtpSession, envelope: Envelope): WholeBodyConsumer | undefined {
    if (typeof session.dataChunks !== 'function') return undefined;
    return { whole: (chunks, size) => session.dataChunks!(chunks, size, envelope) };
  }

  /**
   * The final consumer of a message body (after the hooks): the backend session's `data`. LMTP replaces it with one
   * that collects a result per recipient (RFC 2033 §4.2). Called once per message by {@link openDelivery}.
   */
  protected storeBody(session: SmtpSession, envelope: Envelope): BodyConsumer {
    return (body) => session.data(body, envelope);
  }

  /**
   * Ends a message whose body has arrived in full (after the final dot, or with BDAT LAST) and sends its reply:
   * with `refusal` (size limit, bare LF) the delivery is aborted and the refusal thrown; otherwise the delivery is
   * finished and `250` sent. A hook's or the backend's refusal is thrown as it came (dispatch sends it). LMTP
   * overrides it to answer once per accepted recipient (RFC 2033 §4.2).
   */
  async completeMessage(tx: Transaction, delivery: BodyDelivery, size: number, refusal?: SmtpReplyError): Promise<void> {
    if (refusal) {
      this.log.warn('message refused', { code: refusal.code, size });
      this.metrics?.message('refused', size);
      await delivery.abort();
      throw refusal;
    }
    try {
      await delivery.finish();
    } catch (err) {
      this.metrics?.message('refused', size);
      throw err;
    }
    this.log.info('message accepted', { size, rcpts: tx.rcptTo.length });
    this.metrics?.message('accepted', size);
    this.send(reply(250, '2.0.0', `Message accepted (${size} octets)`));
  }
}
