/**
 * The state of one POP3 session that its command handlers read and change: the RFC 1939 §3 state, the login given by
 * USER, the APOP timestamp and the maildrop snapshot, with the transitions between the states: admission by the
 * connection-level hooks (greeting, STLS), the login's one completion point (AUTHORIZATION to TRANSACTION, with the
 * maildrop lock and the user view), QUIT (TRANSACTION to UPDATE, deletions applied) and the release of the lock and
 * the view. `Pop3Connection` extends it with the wire side; `pop3-connection.ts` re-exports {@link Pop3Context} and
 * {@link Pop3Credentials}.
 */
import { randomBytes } from 'node:crypto';
import { lockMaildrop } from './pop3-maildrop-lock.js';
import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator, AuthRequest } from '../contracts/authenticator.js';
import { isMailStoreError, type MailStore, type UserMailboxes } from '../contracts/mail-store.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { TextSession } from '../protocol/text-session.js';
import { admitSession, runHooks } from '../protocol/session-hooks.js';
import { availableMechanisms, saslSessionInfo, type SaslSessionInfo } from '../protocol/sasl/sasl-mechanism.js';
import { pop3Capabilities } from './pop3-capabilities.js';
import type { Pop3Hooks } from './pop3-hooks.js';
import { Maildrop, POP3_MAILBOX } from './pop3-maildrop.js';
import type { Pop3Settings } from './pop3-options.js';
import { errLine, okLine, Pop3Error } from './pop3-replies.js';
import type { Pop3State } from './pop3-state.js';

/** What a POP3 session needs from the server that created it. */
export interface Pop3Context {
  readonly store: MailStore;
  readonly authenticator: Authenticator;
  /** Used by STLS; the implicit-TLS listener has secured the connection before the session starts. */
  readonly security: ServerSecurity;
  readonly settings: Pop3Settings;
  readonly listener: ListenerInfo;
  /** The bound `Pop3Hooks`, in binding order (none: no policy). */
  readonly hooks?: readonly Pop3Hooks[];
}

/** Credentials of one login attempt, as the command decoded them. */
export type Pop3Credentials = Pick<AuthRequest, 'username' | 'authzid' | 'password' | 'verifyWithSecret' | 'external'>;

/**
 * The base class of {@link Pop3Connection}: the session's state with the accessors and transitions its command
 * handlers use. The maildrop lock and the user view are taken at login and released in {@link release} (called once
 * the session is over, whatever ended it). Deletions are applied only by QUIT in the TRANSACTION state. A refusal
 * that a handler throws is answered here too, because the login decides when the session closes after it.
 */
export abstract class Pop3SessionState extends TextSession {
  private current: Pop3State = 'authorization';
  /** Login given by USER, waiting for PASS (RFC 1939 §7). */
  pendingUser?: string;
  /** RFC 1939 §7 APOP timestamp from the greeting; undefined when APOP is not offered. */
  readonly apopTimestamp?: string;
  private drop?: Maildrop;
  private view?: UserMailboxes;
  private unlock?: () => void;
  private closeAfterReply = false;
  private released = false;
  private readonly stop = new AbortController();

  constructor(
    connection: Connection,
    private readonly ctx: Pop3Context,
  ) {
    super(connection, {
      maxLineLength: ctx.settings.maxLineLength,
      maxBadCommands: ctx.settings.maxBadCommands,
      idleTimeoutMs: ctx.settings.idleTimeoutMs,
    });
    if (ctx.authenticator.supportsSharedSecrets) {
      this.apopTimestamp = `<${process.pid}.${randomBytes(6).toString('hex')}.${Date.now()}@${ctx.settings.hostname}>`;
    }
    connection.once('close', () => this.stop.abort());
  }

  /** RFC 1939 state. */
  get state(): Pop3State {
    return this.current;
  }

  /** True once logged in (TRANSACTION or UPDATE). */
  get isAuthenticated(): boolean {
    return this.current !== 'authorization';
  }

  /** Global `allowInsecureAuth`: USER/PASS, APOP and AUTH permitted before TLS. */
  get allowsInsecureAuth(): boolean {
    return this.ctx.settings.allowInsecureAuth;
  }

  /**
   * SASL mechanisms offered (RFC 5034), from the registry: CRAM-MD5 only when the authenticator knows shared secrets,
   * EXTERNAL only with a validated client certificate and a certificate mapper.
   */
  get offeredMechanisms(): string[] {
    return availableMechanisms(this.saslMechanisms, this.saslSession);
  }

  /** What the SASL mechanisms see of this session. */
  get saslSession(): SaslSessionInfo {
    return saslSessionInfo(this.peer(), this.ctx.settings.hostname, this.ctx.authenticator);
  }

  /** Host name used in APOP and CRAM-MD5 challenges. */
  get hostname(): string {
    return this.ctx.settings.hostname;
  }

  /** The current CAPA list (RFC 2449). */
  capabilities(): string[] {
    return pop3Capabilities({
      state: this.current,
      isSecure: this.isSecure,
      allowInsecureAuth: this.allowsInsecureAuth,
      saslMechanisms: this.offeredMechanisms,
    });
  }

  /** The session snapshot; only valid in TRANSACTION (the command table guarantees it for its handlers). */
  get maildrop(): Maildrop {
    if (!this.drop) throw new Error('no maildrop outside the TRANSACTION state');
    return this.drop;
  }

  /** What backends may know about the peer. */
  peer(): PeerInfo {
    return peerInfo(this.connection, this.ctx.listener.name);
  }

  protected async greet(): Promise<void> {
    const admitted = await this.admit(async () => {
      await runHooks(this.ctx.hooks, (h) => h.onConnect?.(this.peer()));
      if (this.isSecure) await runHooks(this.ctx.hooks, (h) => h.onSecure?.(this.peer()));
    });
    if (admitted) this.send(okLine(`Postern POP3 server ready${this.apopTimestamp ? ' ' + this.apopTimestamp : ''}`));
  }

  /** Runs `onConnect`/`onSecure`: a refusal is `-ERR [code] text` and the session ends. */
  private admit(step: () => Promise<void>): Promise<boolean> {
    const refusal = (err: unknown): string | undefined => (err instanceof Pop3Error ? errLine(err.respCode, err.message) : undefined);
    return admitSession(this, step, refusal, errLine('SYS/TEMP', 'service not available'));
  }

  /** Sends a refusal thrown by a handler; closes afterwards when too many logins failed. */
  async sendReplyError(err: ReplyError): Promise<void> {
    this.send(err instanceof Pop3Error ? errLine(err.respCode, err.message) : errLine(undefined, err.message));
    if (this.closeAfterReply) await this.end('closed');
  }

  /**
   * Checks credentials with the Authenticator, then locks and snapshots the maildrop and enters TRANSACTION,
   * replying `+OK`. A failed login is answered after the configured delay (a timer: other sessions keep running).
   * The one failed-login policy ({@link TextSession.checkLogin}) runs first (`rejected`: the SASL mechanism refused
   * already); USER/PASS, APOP and every AUTH mechanism end here, POP3's one completion point.
   * @throws Pop3Error `[AUTH]` for wrong credentials, `[IN-USE]` when the maildrop is locked, `[SYS/TEMP]` or
   *   `[SYS/PERM]` for store problems. The state stays AUTHORIZATION then.
   * `confirm` is the SASL mechanism's success-data step (SCRAM's server signature), run once the credentials are
   * accepted and before the login hooks; false means it refused and replied, and the login stops there.
   */
  async login(mechanism: string, credentials: Pop3Credentials, rejected = false, confirm?: () => Promise<boolean>): Promise<void> {
    this.pendingUser = undefined;
    const { failedLoginDelayMs: delayMs, maxLoginFailures: maxFailures } = this.ctx.settings;
    const check = await this.checkLogin(this.ctx.authenticator, { protocol: 'pop3', mechanism, ...credentials, peer: this.peer() }, { delayMs, maxFailures }, rejected);
    if (!check.ok) {
      if (check.why === 'throttled') throw new Pop3Error('AUTH', 'too many failed logins, try again later');
      if (check.why === 'temporary') throw new Pop3Error('SYS/TEMP', 'authentication temporarily unavailable');
      if (check.isLast) {
        this.closeAfterReply = true;
        throw new Pop3Error('AUTH', 'authentication failed, closing');
      }
      throw new Pop3Error('AUTH', 'authentication failed');
    }
    const username = check.username;
    // The mechanism's success data (SCRAM's server signature) before anything else: the client may still refuse.
    if (confirm && !(await confirm())) return;
    await runHooks(this.ctx.hooks, (h) => h.onLogin?.({ username, mechanism, peer: this.peer() }));
    this.recordLoginSuccess(credentials.username, mechanism);
    await runHooks(this.ctx.hooks, (h) => h.onMaildrop?.({ username, mailbox: 'INBOX', peer: this.peer() }));
    const unlock = await lockMaildrop(this.ctx.store, username, `pop3 ${this.connection.id}`).catch((err: unknown) => {
      // RFC 2449 §8.1.1: [IN-USE] when another session holds the maildrop (RFC 1939 §8).
      if (isMailStoreError(err, 'IN_USE')) throw new Pop3Error('IN-USE', 'maildrop already locked by another session');
      throw mapStoreError(err);
    });
    let view: UserMailboxes | undefined;
    try {
      view = await this.ctx.store.openUser(username);
      this.drop = await Maildrop.snapshot(view);
    } catch (err) {
      unlock();
      await view?.release().catch(() => undefined);
      throw mapStoreError(err);
    }
    if (this.isEnding) {
      unlock();
      await view.release().catch(() => undefined);
      return;
    }
    this.view = view;
    this.unlock = unlock;
    this.current = 'transaction';
    const { count, octets } = this.drop.stat();
    this.log.info('auth succeeded', { user: username, mechanism, messages: count });
    this.send(okLine(`maildrop locked and ready, ${count} messages (${octets} octets)`));
  }

  /** STLS (RFC 2595 §4): go-ahead, then the engine's one TLS path; a fresh AUTHORIZATION state afterwards. */
  async upgradeTls(): Promise<void> {
    if (this.isSecure) throw new Pop3Error(undefined, 'command not permitted when TLS active');
    this.send(okLine('begin TLS negotiation'));
    if (await this.startTls(this.ctx.security)) {
      // Nothing learnt in plaintext survives the upgrade; CAPA is computed from the new security state.
      this.pendingUser = undefined;
      await this.admit(() => runHooks(this.ctx.hooks, (h) => h.onSecure?.(this.peer())));
    }
  }

  /**
   * QUIT (RFC 1939 §6): in TRANSACTION enters UPDATE and applies the deletions through `expunge`, then says
   * goodbye and closes. In AUTHORIZATION it just closes.
   */
  async quit(): Promise<void> {
    if (this.current === 'transaction' && this.drop && this.view) {
      this.current = 'update';
      const uids = this.drop.deletedUids();
      try {
        if (uids.length > 0) await this.view.expunge(POP3_MAILBOX, uids);
        this.log.info('maildrop updated', { deleted: uids.length });
        this.send(okLine(`Postern POP3 server signing off (${uids.length} messages deleted)`));
      } catch (err) {
        if (isMailStoreError(err)) this.log.warn('deletions failed', { code: err.code });
        else this.log.error('deletions failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
        this.send(errLine('SYS/TEMP', 'some deleted messages not removed'));
      }
    } else {
      this.send(okLine('Postern POP3 server signing off'));
    }
    await this.end('closed');
  }

  /** Releases the maildrop lock and the user view. Idempotent; called when the session is over. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stop.abort();
    this.unlock?.();
    await this.view?.release().catch((err: unknown) => this.log.warn('view release failed', { error: (err as Error)?.message }));
  }
}

/** Maps a store failure during login to a POP3 refusal (RFC 3206 §5); anything else is rethrown as a bug. */
function mapStoreError(err: unknown): unknown {
  if (err instanceof Pop3Error) return err;
  if (isMailStoreError(err, 'NO_SUCH_USER') || isMailStoreError(err, 'NO_SUCH_MAILBOX')) return new Pop3Error('SYS/PERM', 'no maildrop for this user');
  if (isMailStoreError(err)) return new Pop3Error('SYS/TEMP', 'maildrop unavailable');
  return err;
}
