/**
 * The state of one SMTP session that its command handlers read and change: the RFC 5321 §4.1.4 state, the greeting,
 * the authenticated user and the mail transaction, with the live {@link SmtpContext} given to the backend and hooks;
 * the backend session and the connection-level hooks that admit the session (connect, secure); and the login's one
 * completion point. `SmtpConnection` extends it with the wire side; `smtp-connection.ts` re-exports
 * {@link SmtpConnectionDeps}, {@link BdatTransfer} and {@link Transaction}.
 */
import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import { TextSession } from '../protocol/text-session.js';
import { saslSessionInfo, type SaslCredentials, type SaslSessionInfo } from '../protocol/sasl/sasl-mechanism.js';
import type { BodyDelivery } from './smtp-body.js';
import type { MailParams, RcptParams, SmtpBackend, SmtpContext, SmtpHooks, SmtpSession } from './smtp-backend.js';
import type { SmtpSettings } from './smtp-options.js';
import { reply, SmtpReplyError } from './smtp-replies.js';
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

/**
 * The live {@link SmtpContext} of one session: getters on the prototype over a true private field, so a connection
 * makes one small object instead of an object with four getter closures (issue 15). Every property reads as before
 * by name; `Object.keys(context)` and spreads no longer list them (README, "Upgrading from 0.1").
 */
class LiveSmtpContext implements SmtpContext {
  readonly #session: SmtpSessionState;
  constructor(session: SmtpSessionState) {
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
 * The base class of {@link SmtpConnection}: the session's state with the accessors and transitions its command
 * handlers use, the backend session (opened at the greeting, reopened after STARTTLS, closed with the session), the
 * session hooks' admission and the login. SmtpConnection runs the session on the wire and delivers the messages.
 */
export abstract class SmtpSessionState extends TextSession {
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

  /** Resolves when the connection has closed. */
  get whenClosed(): Promise<void> {
    this.closedSignal ??= this.hasClosed ? Promise.resolve() : new Promise((resolve) => this.connection.once('close', () => resolve()));
    return this.closedSignal;
  }

  /** Runs one hook method on every current hook (bound ones, then runtime ones), in order; the first refusal wins. */
  async runHooks(call: (h: SmtpHooks) => Promise<void> | undefined): Promise<void> {
    for (const h of this.deps.hooks) await call(h);
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
  protected async openOnConnect(): Promise<void> {
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
}
