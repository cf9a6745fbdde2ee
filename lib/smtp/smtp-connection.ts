import type { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import { dispatch, type CommandTable, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { TextSession } from '../protocol/text-session.js';
import { debugEnabled } from '../log/logger.js';
import { saslSessionInfo, type SaslCredentials, type SaslSessionInfo } from '../protocol/sasl/sasl-mechanism.js';
import type { FaultStage } from '../protocol/faults.js';
import type { MessageHeader } from './message-header.js';
import { BodyDelivery } from './smtp-body.js';
import type { BodyConsumer, WholeBodyConsumer } from './smtp-body.js';
import type { HeaderHook } from './message-editor.js';
import type { Envelope, MailParams, RcptParams, SmtpBackend, SmtpContext, SmtpHooks, SmtpSession } from './smtp-backend.js';
import { SMTP_COMMANDS } from './smtp-commands.js';
import type { SmtpSettings } from './smtp-options.js';
import { receivedHeader, withKeyword } from './smtp-received.js';
import { REPLIES, reply, SmtpReplyError } from './smtp-replies.js';
import type { SmtpState } from './smtp-state.js';

/** Everything a session needs from the server, handed over by `SmtpServer`. */
export interface SmtpConnectionDeps {
  readonly settings: SmtpSettings;
  /** The shared server security (STARTTLS uses it; implicit TLS is done by the listener). */
  readonly security: ServerSecurity;
  readonly backend: SmtpBackend;
  readonly hooks: readonly SmtpHooks[];
  readonly authenticator: Authenticator;
  readonly listener: ListenerInfo;
}

/** A BDAT transfer in progress (RFC 3030): its delivery stays open across BDAT commands. */
export interface BdatTransfer {
  readonly delivery: BodyDelivery;
  size: number;
}

/** The current mail transaction (RFC 5321 §3.3): from MAIL to the end of DATA/BDAT LAST, or RSET. */
export interface Transaction {
  readonly from: string;
  readonly params: MailParams;
  readonly rcptTo: string[];
  /** Each recipient's parameters beside `rcptTo`, once some recipient gave any (DSN); absent otherwise. */
  rcptParams?: RcptParams[];
  bdat?: BdatTransfer;
}

const STATE_HINTS: Readonly<Record<string, string>> = {
  MAIL: 'Send EHLO or HELO first',
  RCPT: 'Need MAIL before RCPT',
  DATA: 'Need RCPT before DATA',
  AUTH: 'AUTH needs EHLO first and is not allowed during a transaction',
  STARTTLS: 'Send EHLO first',
};

/** Hints for a command refused because a mail transaction is open (RFC 5321 §4.1.4: no nested MAIL). */
const TRANSACTION_HINTS: Readonly<Record<string, string>> = {
  MAIL: 'Nested MAIL command',
  STARTTLS: 'STARTTLS is not allowed during a mail transaction',
};

/** RFC 3030 §3: DATA and BDAT do not mix in one transaction. */
const BDAT_HINTS: Readonly<Record<string, string>> = {
  DATA: 'DATA not allowed after BDAT',
};

/** The text after "Bad sequence of commands" for `verb` refused in `state`. */
function stateHint(verb: string, state: SmtpState, hello: string): string | undefined {
  const inTransaction = state === 'mail' || state === 'rcpt' || state === 'bdat';
  const hint = (state === 'bdat' ? BDAT_HINTS[verb] : undefined) ?? (inTransaction ? TRANSACTION_HINTS[verb] : undefined) ?? STATE_HINTS[verb];
  return hello === 'EHLO or HELO' ? hint : hint?.replace(/EHLO( or HELO)?/, hello);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The body readers and header editors of a message when no hook is bound (shared, never changed). */
const NO_READERS: readonly BodyConsumer[] = [];
const NO_EDITS: readonly HeaderHook[] = [];
/** An octet above 0x7f in a line read as latin1 (one regex test instead of a callback per octet). */
const HIGH_BIT = /[\x80-\xff]/;

/**
 * The live {@link SmtpContext} of one session: getters on the prototype over a true private field, so a connection
 * makes one small object instead of an object with four getter closures (issue 15). Every property reads as before
 * by name; `Object.keys(context)` and spreads no longer list them (README, "Upgrading from 0.1").
 */
class LiveSmtpContext implements SmtpContext {
  readonly #session: SmtpConnection;
  constructor(session: SmtpConnection) {
    this.#session = session;
  }
  get peer(): PeerInfo {
    return this.#session.peer;
  }
  get helo(): string | undefined {
    return this.#session.helo;
  }
  get user(): string | undefined {
    return this.#session.user;
  }
  get hostname(): string {
    return this.#session.deps.settings.hostname;
  }
}

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
 */
export class SmtpConnection extends TextSession implements DispatchTarget<SmtpState> {
  /** Where the session is; changed only through {@link enter}. */
  state: SmtpState = 'connected';
  /** The EHLO/HELO argument, once given. */
  helo?: string;
  /** True when the last greeting was EHLO (extensions in use). */
  isExtended = false;
  /** The authenticated user (canonical). */
  user?: string;
  /** The mail transaction in progress. */
  tx?: Transaction;
  /** Live view given to the backend and hooks. */
  readonly context: SmtpContext;
  private backendSession?: SmtpSession;
  /** Set by the first MAIL accepted: the session is doing what an unauthenticated SMTP client may do. */
  private hadTransaction = false;
  /** Made on first use by {@link whenClosed} (a session that never delivers needs none). */
  private closedSignal?: Promise<void>;

  constructor(
    connection: Connection,
    readonly deps: SmtpConnectionDeps,
  ) {
    super(connection, {
      maxLineLength: deps.settings.maxLineLength,
      maxBadCommands: deps.settings.maxBadCommands,
      idleTimeoutMs: deps.settings.idleTimeoutMs,
      bodyTimeoutMs: deps.settings.bodyTimeoutMs,
    });
    this.context = new LiveSmtpContext(this);
  }

  /** The resolved settings. */
  get settings(): SmtpSettings {
    return this.deps.settings;
  }

  /** DispatchTarget: true once AUTH succeeded. */
  get isAuthenticated(): boolean {
    return this.user !== undefined;
  }

  /** DispatchTarget: AUTH allowed in plaintext (global `allowInsecureAuth`). */
  get allowsInsecureAuth(): boolean {
    return this.deps.settings.allowInsecureAuth;
  }

  /** A fresh snapshot of the peer for hooks and backends. */
  get peer(): PeerInfo {
    return peerInfo(this.connection, this.deps.listener.name);
  }

  /** The backend session (opened in greet, reopened after STARTTLS). */
  get backend(): SmtpSession {
    if (!this.backendSession) throw new Error('SMTP backend session is not open');
    return this.backendSession;
  }

  /** The one place where the state changes. */
  enter(state: SmtpState): void {
    this.state = state;
    if (state === 'mail') this.hadTransaction = true;
  }

  /** Past the pre-authentication deadline once authenticated or once a mail transaction began (RFC 5321 relays never log in). */
  protected override isPastPreAuth(): boolean {
    return this.isAuthenticated || this.hadTransaction;
  }

  protected override async onPreAuthTimeout(): Promise<void> {
    this.send(REPLIES.preAuthTimeout);
    await this.end('idle-timeout');
  }

  /** Resolves when the connection has closed. */
  get whenClosed(): Promise<void> {
    this.closedSignal ??= this.hasClosed ? Promise.resolve() : new Promise((resolve) => this.connection.once('close', () => resolve()));
    return this.closedSignal;
  }

  /** Runs one hook method on every current hook (bound ones, then runtime ones), in order; the first refusal wins. */
  async runHooks(call: (h: SmtpHooks) => Promise<void> | undefined): Promise<void> {
    for (const h of this.deps.hooks) await call(h);
  }

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

  /**
   * Runs connection-level hooks (connect, secure) and the backend's openSession. A refusal is sent as-is and the
   * session ends; a bug gets `421 4.3.0` and ends. Returns false when the session ended.
   */
  async admit(step: () => Promise<void>): Promise<boolean> {
    try {
      await step();
      return true;
    } catch (err) {
      if (err instanceof SmtpReplyError) {
        this.log.warn('session refused by policy', { code: err.code, enhanced: err.enhanced });
        this.send(reply(err.code, err.enhanced, err.message));
      } else {
        this.log.error('session hook failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
        this.send(reply(421, '4.3.0', 'Service not available, closing connection'));
      }
      await this.end('refused');
      return false;
    }
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

  /** Server shutdown: `421 4.3.2` and close (RFC 5321 §3.8). A transaction in progress is abandoned, nothing stored. */
  async shutdown(): Promise<void> {
    if (this.isEnding) return;
    this.send(REPLIES.shutdown);
    await this.end('server-shutdown');
  }

  protected override async closed(): Promise<void> {
    await this.endTransaction();
    const s = this.backendSession;
    this.backendSession = undefined;
    if (s) await s.close().catch((err: unknown) => this.log.error('backend close failed', { error: (err as Error)?.message }));
    if (!this.connection.isClosed) await this.end('closed');
  }

  /** What the SASL mechanisms see of this session (availability, CRAM-MD5 challenge host, client certificate). */
  get saslSession(): SaslSessionInfo {
    return saslSessionInfo(this.peer, this.deps.settings.hostname, this.deps.authenticator);
  }

  /**
   * Applies the one failed-login policy to what an AUTH exchange produced (`rejected`: the mechanism refused
   * already), then completes the login at SMTP's one completion point: the `onAuth` hooks, the session's user,
   * `235 2.7.0`.
   * @throws SmtpReplyError 454 4.7.0 when throttled or temporarily unavailable, 535 5.7.8 for bad credentials (after
   *   the failed-login delay; at the last allowed failure it sends 535 and `421 4.7.0` and closes instead).
   * `confirm` is the SASL mechanism's success-data step (SCRAM's server signature), run once the credentials are
   * accepted and before the login hooks; false means it refused and replied, and the login stops there.
   */
  async login(mechanism: string, credentials: SaslCredentials, rejected = false, confirm?: () => Promise<boolean>): Promise<void> {
    const { failedLoginDelayMs: delayMs, maxLoginFailures: maxFailures } = this.settings;
    const check = await this.checkLogin(this.deps.authenticator, { protocol: 'smtp', mechanism, peer: this.peer, ...credentials }, { delayMs, maxFailures }, rejected);
    if (!check.ok) {
      if (check.why === 'throttled') throw new SmtpReplyError(454, '4.7.0', 'Too many failed logins, try again later');
      if (check.why === 'temporary') throw new SmtpReplyError(454, '4.7.0', 'Temporary authentication failure');
      if (check.isLast) {
        this.send(reply(535, '5.7.8', 'Authentication credentials invalid'));
        this.send(reply(421, '4.7.0', 'Too many failed authentication attempts, closing connection'));
        await this.end('closed');
        return;
      }
      // Also counted against the error budget, like any refused command.
      throw new SmtpReplyError(535, '5.7.8', 'Authentication credentials invalid', true);
    }
    // The mechanism's success data (SCRAM's server signature) before anything else: the client may still refuse.
    if (confirm && !(await confirm())) return;
    await this.runHooks((h) => h.onAuth?.({ username: check.username, mechanism, peer: this.peer }));
    this.recordLoginSuccess(credentials.username, mechanism);
    this.user = check.username;
    this.log.info('auth succeeded', { user: check.username, mechanism });
    this.send(reply(235, '2.7.0', 'Authentication successful'));
  }

  /** {@link greet}'s step: connect (and, on implicit TLS, secure) hooks, then the backend session. */
  private async openOnConnect(): Promise<void> {
    // No hook bound (the common case): no closures, no hook loop (issue 15: per-connection allocation).
    if (this.deps.hooks.length > 0) {
      await this.runHooks((h) => h.onConnect?.(this.peer));
      if (this.isSecure) await this.runHooks((h) => h.onSecure?.(this.peer));
    }
    this.backendSession = await this.deps.backend.openSession(this.context);
  }

  /** STARTTLS's step (run under {@link admit}): the `onSecure` hooks, then the backend session reopened. */
  async reopenSecured(): Promise<void> {
    if (this.deps.hooks.length > 0) await this.runHooks((h) => h.onSecure?.(this.peer));
    await this.reopenBackend();
  }

  /** Opens the backend session again (after STARTTLS: it must see the TLS facts, STYLE §4). */
  async reopenBackend(): Promise<void> {
    const old = this.backendSession;
    this.backendSession = undefined;
    await old?.close();
    this.backendSession = await this.deps.backend.openSession(this.context);
  }

  /** Abandons the transaction (RSET, EHLO, end of DATA/BDAT, close): aborts a BDAT transfer and resets the backend. */
  async endTransaction(): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (tx?.bdat) await tx.bdat.delivery.abort();
    if (this.state === 'mail' || this.state === 'rcpt' || this.state === 'bdat') this.enter('ready');
    if (!tx) return;
    try {
      this.backendSession?.reset();
    } catch (err) {
      // A bug of the backend, logged as one; the transaction is over either way, and the command that ended it
      // has usually queued its reply already (250 after DATA), so a second reply would put the client out of step.
      this.log.error('backend reset failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
    }
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
