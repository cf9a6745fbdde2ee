import { randomBytes } from 'node:crypto';
import { lockMaildrop } from './pop3-maildrop-lock.js';
import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator, AuthRequest } from '../contracts/authenticator.js';
import { isMailStoreError, isStreamable, type MailStore, type UserMailboxes } from '../contracts/mail-store.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import { dispatch, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { TextSession } from '../protocol/text-session.js';
import { admitSession, runHooks } from '../protocol/session-hooks.js';
import { availableMechanisms, saslSessionInfo, type SaslSessionInfo } from '../protocol/sasl/sasl-mechanism.js';
import type { FaultStage } from '../protocol/faults.js';
import { pop3Capabilities } from './pop3-capabilities.js';
import type { Pop3Hooks } from './pop3-hooks.js';
import { POP3_COMMANDS } from './pop3-commands.js';
import { Maildrop, POP3_MAILBOX, type MaildropEntry } from './pop3-maildrop.js';
import { wireChunks, wireChunksOf } from './pop3-message.js';
import type { Pop3Settings } from './pop3-options.js';
import { END_OF_MULTILINE, errLine, okLine, Pop3Error } from './pop3-replies.js';
import type { Pop3State } from './pop3-state.js';

/** RETR streams messages from this size on (when the store can): below it one read of the whole file is cheaper. */
const STREAM_FROM_OCTETS = 256 * 1024;

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

/** Verbs whose arguments are secrets: logged as `[redacted]`. */
const SECRET_VERBS = new Set(['PASS', 'APOP', 'AUTH']);

/**
 * One POP3 session (RFC 1939), on the STLS port or the implicit-TLS port alike.
 *
 * Created by `Pop3Server.handle()`, which awaits {@link run}. The maildrop lock and the user view are taken at
 * login and released in {@link release} (called once the session is over, whatever ended it). Deletions are
 * applied only by QUIT in the TRANSACTION state.
 */
export class Pop3Connection extends TextSession implements DispatchTarget<Pop3State> {
  private current: Pop3State = 'authorization';
  /** Login given by USER, waiting for PASS (RFC 1939 §7). */
  pendingUser?: string;
  /** RFC 1939 §7 APOP timestamp from the greeting; undefined when APOP is not offered. */
  readonly apopTimestamp?: string;
  private drop?: Maildrop;
  private view?: UserMailboxes;
  private unlock?: () => void;
  private closeAfterReply = false;
  private streaming = false;
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

  protected async onLine(line: Buffer): Promise<void> {
    const text = line.toString('utf8');
    const sp = text.indexOf(' ');
    const verb = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
    const rest = sp === -1 ? '' : text.slice(sp + 1);
    this.log.debug('C: ' + (SECRET_VERBS.has(verb) ? `${verb} [redacted]` : text.slice(0, 200)));
    // RFC 1939 §7: a password may contain spaces, so PASS keeps its argument verbatim.
    await dispatch(POP3_COMMANDS, this, verb, verb === 'PASS' ? rest : rest.trim());
  }

  /** Fault stages of POP3 commands: the login steps carry the user name for a rule's pattern. */
  protected override faultStage(verb: string, args: string): { stage: FaultStage; subjects?: string[] } | undefined {
    switch (verb) {
      case 'STLS':
        return { stage: 'starttls' };
      case 'USER':
      case 'APOP':
        return { stage: 'login', subjects: [args.split(' ')[0] ?? ''] };
      case 'PASS':
        return { stage: 'login', subjects: this.pendingUser ? [this.pendingUser] : [] };
      case 'AUTH':
        return { stage: 'login' };
      case 'RETR':
      case 'TOP':
        return { stage: 'fetch' };
      default:
        return undefined;
    }
  }

  /** Replies to a guard failure of `dispatch()`. */
  refuse(failure: GuardFailure, _verb: string, detail?: string): void {
    switch (failure) {
      case 'unknown':
        return this.send(errLine(undefined, 'unknown command'));
      case 'state':
        return this.send(errLine(undefined, 'command not valid in this state'));
      case 'syntax':
        return this.send(errLine(undefined, detail ?? 'syntax error'));
      case 'tls':
        // RFC 2595 §4 / RFC 8314: no plaintext credentials; RFC 3206 §4 [AUTH].
        return this.send(errLine('AUTH', 'TLS required: use STLS first'));
      case 'auth':
        return this.send(errLine('AUTH', 'not authenticated'));
      case 'bug':
        return this.send(errLine('SYS/TEMP', 'internal server error'));
    }
  }

  /** Sends a refusal thrown by a handler; closes afterwards when too many logins failed. */
  async sendReplyError(err: ReplyError): Promise<void> {
    this.send(err instanceof Pop3Error ? errLine(err.respCode, err.message) : errLine(undefined, err.message));
    if (this.closeAfterReply) await this.end('closed');
  }

  protected async onLineTooLong(fatal: boolean): Promise<void> {
    this.send(errLine(undefined, fatal ? 'line too long, closing' : 'line too long'));
  }

  protected override async onBareLf(): Promise<void> {
    // RFC 1939 §3: commands are terminated by CRLF.
    this.send(errLine(undefined, 'bare LF not allowed, lines end with CRLF'));
  }

  protected override isPastPreAuth(): boolean {
    return this.isAuthenticated;
  }

  protected override async onPreAuthTimeout(): Promise<void> {
    this.send(errLine(undefined, 'autologout: not logged in in time'));
    await this.end('idle-timeout');
  }

  /** An HTTP request line ends the session (no UPDATE state: nothing marked deleted is removed). */
  protected override httpRequestGoodbye(): string {
    return errLine(undefined, 'HTTP request refused, closing');
  }

  protected async onTooManyErrors(): Promise<void> {
    this.send(errLine(undefined, 'too many errors, closing'));
  }

  protected async onIdleTimeout(): Promise<void> {
    // RFC 1939 §3: the autologout timer closes the connection without entering the UPDATE state.
    this.send(errLine(undefined, 'autologout: idle for too long'));
    await this.end('idle-timeout');
  }

  protected override async closed(): Promise<void> {
    await this.release();
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

  /**
   * Sends `+OK`, the message (or its header plus `bodyLines` lines for TOP) byte-stuffed in chunks, each
   * written before the next is built (waiting for drain), then the terminator (RFC 1939 §7 RETR/TOP).
   * @throws Pop3Error when the message vanished from the store meanwhile (nothing sent then).
   */
  async sendMessage(entry: MaildropEntry, bodyLines?: number): Promise<void> {
    const removed = (err: unknown): never => {
      if (isMailStoreError(err, 'NO_SUCH_MESSAGE')) throw new Pop3Error(undefined, 'message was removed by another session');
      throw err;
    };
    // RETR of a large message from a store that can stream: it is never held whole in memory. Small messages are
    // read whole, which costs fewer system calls than a stream.
    const message = entry.message;
    const stream = bodyLines === undefined && entry.size >= STREAM_FROM_OCTETS && isStreamable(message) ? await message.openStream().catch(removed) : undefined;
    const chunks = stream !== undefined ? wireChunksOf(stream) : wireChunks(await message.raw().catch(removed), bodyLines);
    this.send(okLine(bodyLines === undefined ? `${entry.size} octets` : 'top of message follows'));
    this.streaming = true;
    try {
      // Each chunk is flushed before the next is queued (bounded memory); the last leaves with the terminator.
      let queued = false;
      for await (const chunk of chunks) {
        if (queued) {
          await this.flush();
          if (this.isEnding) return;
        }
        this.send(chunk);
        queued = true;
      }
    } finally {
      this.streaming = false;
      stream?.destroy();
    }
    this.send(END_OF_MULTILINE);
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

  /**
   * Server shutdown: `-ERR [SYS/TEMP]` and close, no deletions applied. A message being streamed is cut
   * (the missing terminator tells the client the reply is incomplete) rather than interleaved with the notice.
   */
  async shutdown(): Promise<void> {
    if (!this.streaming && !this.isEnding) this.send(errLine('SYS/TEMP', 'server shutting down'));
    await this.end('server-shutdown');
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
