import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator, AuthRequest } from '../contracts/authenticator.js';
import { supportsObjectIdentity, supportsWatch, type MailStore, type UserMailboxes } from '../contracts/mail-store.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import { supportsQuota } from '../contracts/quota.js';
import { dispatch, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { TextSession } from '../protocol/text-session.js';
import { admitSession, runHooks } from '../protocol/session-hooks.js';
import { availableMechanisms, saslSessionInfo, type SaslSessionInfo } from '../protocol/sasl/sasl-mechanism.js';
import type { FaultStage } from '../protocol/faults.js';
import { mailboxName, mapStoreError } from './commands/args.js';
import { imapCapabilities } from './imap-capabilities.js';
import { IMAP_COMMANDS } from './imap-commands.js';
import { earlyGuardFailure, guardReply } from './imap-guards.js';
import { hookMailboxName, type ImapHooks, type ImapMailboxAccessKind } from './imap-hooks.js';
import type { ImapSettings } from './imap-options.js';
import { ImapCommandReader, type LiteralRequest } from './imap-command-reader.js';
import type { NotifySpec } from './imap-notify.js';
import type { ImapCommand } from './imap-parser.js';
import type { RecentTracker } from './imap-recent.js';
import { ImapError, taggedLine, untaggedLine } from './imap-replies.js';
import type { SelectedMailbox } from './imap-selected.js';
import type { ImapState } from './imap-state.js';
import { ImapUpdates } from './imap-updates.js';

/** What an IMAP session needs from the server that created it. */
export interface ImapContext {
  readonly store: MailStore;
  readonly authenticator: Authenticator;
  /** Used by STARTTLS; the implicit-TLS listener has secured the connection before the session starts. */
  readonly security: ServerSecurity;
  readonly settings: ImapSettings;
  readonly listener: ListenerInfo;
  /** Who has seen which message first: `\Recent` across this server's sessions (RFC 3501 §2.3.2). */
  readonly recent: RecentTracker;
  /** The bound `ImapHooks`, in binding order (none: no policy). */
  readonly hooks?: readonly ImapHooks[];
}

/**
 * Extensions a client turns on for its session (RFC 5161 ENABLE, RFC 7162 §3.1 CONDSTORE-enabling commands), and
 * IMAP4rev2 itself (RFC 9051 §6.3.1: a server offering both revisions acts as IMAP4rev1 until `ENABLE IMAP4rev2`).
 */
export type EnableableExtension = 'CONDSTORE' | 'QRESYNC' | 'UTF8=ACCEPT' | 'IMAP4rev2';

/** Credentials of one login attempt, as LOGIN or AUTHENTICATE decoded them. */
export type ImapCredentials = Pick<AuthRequest, 'username' | 'authzid' | 'password' | 'verifyWithSecret' | 'external'>;

/**
 * Commands that use message sequence numbers: while they run, EXPUNGE responses are held back
 * (RFC 3501 §7.4.1; COPY added because its numbers must stay valid too).
 */
const SEQUENCE_COMMANDS = new Set(['FETCH', 'STORE', 'SEARCH', 'COPY', 'SORT', 'THREAD']);

/**
 * One IMAP4rev1 session (RFC 3501), on the STARTTLS port or the implicit-TLS port alike.
 *
 * Created by `ImapServer.handle()`, which awaits {@link run}. Lines are assembled into commands (with literals,
 * their limits and `+` continuations) by {@link ImapCommandReader}; each complete command goes through
 * `dispatch()` and the command table. Handlers get the parsed command as their argument and finish with
 * {@link ok}, which first sends the untagged updates that are due (RFC 3501 §5.2, §7; kept by
 * {@link ImapUpdates}, which also runs IDLE) and then the tagged OK.
 *
 * The user view and the store watch are released in {@link closed}, whatever ended the session.
 */
export class ImapConnection extends TextSession implements DispatchTarget<ImapState> {
  private current: ImapState = 'not-authenticated';
  private readonly commands: ImapCommandReader;
  private readonly updates = new ImapUpdates(this);
  private running?: ImapCommand;
  private view?: UserMailboxes;
  private user?: string;
  private mailbox?: SelectedMailbox;
  private unwatch?: () => void;
  private closeAfterReply = false;
  private readonly enabledExtensions = new Set<EnableableExtension>();
  private released = false;
  private readonly stop = new AbortController();
  /** The APPEND whose target `onMailbox` already allowed before its literal (tag and mailbox). */
  private appendAllowed?: string;

  constructor(
    connection: Connection,
    readonly ctx: ImapContext,
  ) {
    super(connection, {
      maxLineLength: ctx.settings.maxLineLength,
      maxBadCommands: ctx.settings.maxBadCommands,
      idleTimeoutMs: ctx.settings.idleTimeoutMs,
      bodyTimeoutMs: ctx.settings.bodyTimeoutMs,
    });
    this.commands = new ImapCommandReader(this, ctx.settings);
    connection.once('close', () => this.stop.abort());
  }

  /** RFC 3501 §3 state. */
  get state(): ImapState {
    return this.current;
  }

  /** True once logged in. */
  get isAuthenticated(): boolean {
    return this.current === 'authenticated' || this.current === 'selected';
  }

  /** Global `allowInsecureAuth`: LOGIN and AUTHENTICATE permitted before TLS. */
  get allowsInsecureAuth(): boolean {
    return this.ctx.settings.allowInsecureAuth;
  }

  /** The command being run, for the tagged replies this session sends (handlers get it as their argument). */
  private get command(): ImapCommand {
    if (!this.running) throw new Error('no command is running');
    return this.running;
  }

  /** The user's mailboxes; only valid after login (the command table guarantees it for its handlers). */
  get mailboxes(): UserMailboxes {
    if (!this.view) throw new Error('not authenticated');
    return this.view;
  }

  /** The selected mailbox; only valid in the selected state. */
  get selected(): SelectedMailbox {
    if (!this.mailbox) throw new Error('no mailbox selected');
    return this.mailbox;
  }

  /** The selected mailbox if any (for DELETE/RENAME/STATUS of the selected name). */
  get selectedOrUndefined(): SelectedMailbox | undefined {
    return this.mailbox;
  }

  /** The store offers MAILBOXID/EMAILID/save dates: OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) are on. */
  get hasObjectIds(): boolean {
    return supportsObjectIdentity(this.ctx.store);
  }

  /** The current CAPABILITY list (RFC 3501 §7.2.1). */
  capabilities(): string[] {
    return imapCapabilities({
      state: this.current,
      isSecure: this.isSecure,
      allowInsecureAuth: this.allowsInsecureAuth,
      maxLiteralSize: this.ctx.settings.maxLiteralSize,
      literalPlus: this.ctx.settings.literalPlus,
      hasQuota: supportsQuota(this.ctx.store),
      hasObjectIds: this.hasObjectIds,
      isCompressed: this.connection.isCompressed,
      saslMechanisms: this.current === 'not-authenticated' ? availableMechanisms(this.saslMechanisms, this.saslSession) : [],
    });
  }

  /** What the SASL mechanisms see of this session (`hostname` from the `imap` section: CRAM-MD5 challenges carry it). */
  get saslSession(): SaslSessionInfo {
    return saslSessionInfo(this.peer(), this.ctx.settings.hostname, this.ctx.authenticator);
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
    if (admitted) this.send(untaggedLine('OK', `CAPABILITY ${this.capabilities().join(' ')}`, 'Postern IMAP ready'));
  }

  /** Runs `onConnect`/`onSecure`: a refusal is `* BYE [code] text` and the session ends (RFC 3501 §7.1.5). */
  private admit(step: () => Promise<void>): Promise<boolean> {
    const bye = (err: unknown): string | undefined => (err instanceof ImapError ? untaggedLine('BYE', err.code, err.message) : undefined);
    return admitSession(this, step, bye, untaggedLine('BYE', 'UNAVAILABLE', 'Service not available'));
  }

  /**
   * `onMailbox` for a `* STATUS` the client did not ask for by name (LIST-STATUS, NOTIFY): false when a hook refused,
   * and then the line is left out. A hook bug is logged and also leaves it out (there is no reply to put it in).
   */
  async statusAllowed(mailbox: string): Promise<boolean> {
    try {
      await this.checkMailbox('status', mailbox);
      return true;
    } catch (err) {
      if (!(err instanceof ImapError)) this.log.error('mailbox hook failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      return false;
    }
  }

  /**
   * Asks the `onMailbox` hooks whether the logged-in user may use `mailbox` this way (see `ImapHooks`).
   * @throws the hook's refusal (an `ImapError` is sent as it is).
   */
  async checkMailbox(access: ImapMailboxAccessKind, mailbox: string): Promise<void> {
    const name = hookMailboxName(mailbox);
    if (access === 'append' && this.appendAllowed !== undefined && this.appendAllowed === `${this.running?.tag} ${name}`) {
      this.appendAllowed = undefined;
      return;
    }
    const username = this.user ?? '';
    await runHooks(this.ctx.hooks, (h) => h.onMailbox?.({ username, mailbox: name, access, peer: this.peer() }));
  }

  /** Reads the whole command this line starts (literals included) and runs it. */
  protected async onLine(line: Buffer): Promise<void> {
    const command = await this.commands.read(line);
    if (command) await this.execute(command);
  }

  /**
   * Called by {@link ImapCommandReader} before the `+` of a synchronizing literal: refuses a command that would
   * be refused anyway (unknown, wrong state, LOGIN before TLS) and an APPEND into a missing mailbox
   * (RFC 3501 §6.3.11), so the client does not send the literal (RFC 3501 §7.5). True when a refusal was sent.
   */
  async refuseBeforeLiteral(lit: LiteralRequest): Promise<boolean> {
    const failure = earlyGuardFailure(lit.command, this.current, this.isSecure, this.allowsInsecureAuth);
    if (failure) {
      this.send(guardReply(failure, lit.tag, this.current, lit.command));
      if (failure !== 'tls') await this.countError();
      return true;
    }
    if (lit.command === 'APPEND' && lit.args.length === 1 && this.view) {
      const refusal = (await this.appendHookRefusal(lit)) ?? (await this.appendTargetRefusal(lit));
      if (refusal) {
        this.send(taggedLine(lit.tag, refusal.status, refusal.code, refusal.message));
        return true;
      }
    }
    return false;
  }

  /** Called by {@link ImapCommandReader} when a continuation line never ends: BYE and close. */
  async onRunawayLine(): Promise<void> {
    await this.onLineTooLong(true);
  }

  /** `onMailbox` for an APPEND target before its literal; a bug is logged and answered `NO [SERVERBUG]`. */
  private async appendHookRefusal(lit: LiteralRequest): Promise<ImapError | undefined> {
    if (!this.ctx.hooks?.length) return undefined;
    let name: string;
    try {
      name = hookMailboxName(mailboxName(lit.args[0], this.utf8));
    } catch {
      return undefined; // the command's own parsing reports it
    }
    try {
      await this.checkMailbox('append', name);
      this.appendAllowed = `${lit.tag} ${name}`;
      return undefined;
    } catch (err) {
      if (err instanceof ImapError) return err;
      this.log.error('mailbox hook failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      return new ImapError('NO', 'SERVERBUG', 'Internal server error');
    }
  }

  private async appendTargetRefusal(lit: LiteralRequest): Promise<ImapError | undefined> {
    if (!this.isAuthenticated) return undefined;
    try {
      await this.mailboxes.info(mailboxName(lit.args[0], this.utf8));
      return undefined;
    } catch (err) {
      const mapped = mapStoreError(err, true);
      return mapped instanceof ImapError ? mapped : undefined;
    }
  }

  private async execute(command: ImapCommand): Promise<void> {
    this.running = command;
    try {
      await dispatch(IMAP_COMMANDS, this, command.command, command.args.length > 0 ? '…' : '', command);
    } finally {
      this.running = undefined;
      this.appendAllowed = undefined;
    }
  }

  /** Fault stages of IMAP commands; LOGIN carries its user name for a rule's pattern. */
  protected override faultStage(verb: string): { stage: FaultStage; subjects?: string[] } | undefined {
    switch (verb) {
      case 'STARTTLS':
        return { stage: 'starttls' };
      case 'LOGIN': {
        const user = this.running?.args[0];
        const name = user?.type === 'atom' || user?.type === 'quoted' ? user.value : user?.type === 'literal' ? user.value.toString('utf8') : undefined;
        return { stage: 'login', subjects: name !== undefined ? [name] : [] };
      }
      case 'AUTHENTICATE':
        return { stage: 'login' };
      case 'FETCH':
      case 'UID FETCH':
        return { stage: 'fetch' };
      default:
        return undefined;
    }
  }

  /** A fault's reply: tagged for a command (`a1 NO …`), untagged before the greeting (`* BYE …`). */
  protected override async sendFaultReply(text: string, stage: FaultStage): Promise<void> {
    const tag = stage === 'connect' || stage === 'greeting' ? '*' : (this.running?.tag ?? '*');
    this.send(`${tag} ${text}\r\n`);
  }

  /** Replies to a guard failure of `dispatch()`. */
  refuse(failure: GuardFailure, _verb: string, detail?: string): void {
    this.send(guardReply(failure, this.running?.tag ?? '*', this.current, this.running?.command, detail));
  }

  /** Sends a refusal thrown by a handler (BAD ones count against the budget); closes after too many failed logins. */
  async sendReplyError(err: ReplyError): Promise<void> {
    const tag = this.running?.tag ?? '*';
    if (err instanceof ImapError) {
      if (err.status === 'NO') await this.sendUpdates();
      this.send(taggedLine(tag, err.status, err.code, err.message));
      if (err.status === 'BAD') await this.countError();
    } else {
      this.send(taggedLine(tag, 'NO', undefined, err.message));
    }
    if (this.closeAfterReply) {
      this.send(untaggedLine('BYE', undefined, 'Too many failed logins'));
      await this.end('closed');
    }
  }

  /**
   * Ends a successful command: sends the untagged updates that are due, then `tag OK [code] text`.
   * Handlers call it last.
   */
  async ok(text: string, code?: string): Promise<void> {
    await this.sendUpdates();
    this.send(taggedLine(this.command.tag, 'OK', code, text));
  }

  protected async onLineTooLong(fatal: boolean): Promise<void> {
    this.send(untaggedLine(fatal ? 'BYE' : 'BAD', undefined, 'Line too long'));
    // The engine stops reading after a fatal line but leaves the connection open: close it here.
    if (fatal) await this.end('closed');
  }

  /** A `{N+}` literal announced at the end of a dropped line is dropped too (see ImapCommandReader). */
  protected override octetsAfterDroppedLine(tail: Buffer): number | 'end' | undefined {
    return this.commands.octetsAfterDroppedLine(tail);
  }

  protected override async onBareLf(): Promise<void> {
    // RFC 9051 §2.2: lines end with CRLF. The tag is not known without parsing a line that is not run: untagged.
    this.send(untaggedLine('BAD', undefined, 'Bare LF not allowed, lines end with CRLF'));
  }

  protected override isPastPreAuth(): boolean {
    return this.isAuthenticated;
  }

  protected override async onPreAuthTimeout(): Promise<void> {
    this.send(untaggedLine('BYE', undefined, 'Autologout; not logged in in time'));
    await this.end('idle-timeout');
  }

  protected async onTooManyErrors(): Promise<void> {
    this.send(untaggedLine('BYE', undefined, 'Too many errors'));
  }

  protected async onIdleTimeout(): Promise<void> {
    // RFC 3501 §5.4: autologout after at least 30 minutes of inactivity.
    this.send(untaggedLine('BYE', undefined, 'Autologout; idle for too long'));
    await this.end('idle-timeout');
  }

  protected override async closed(): Promise<void> {
    await this.release();
  }

  /** Server shutdown: `* BYE Server shutting down` and close (RFC 3501 §7.1.5). */
  async shutdown(): Promise<void> {
    if (!this.isEnding) this.send(untaggedLine('BYE', undefined, 'Server shutting down'));
    await this.end('server-shutdown');
  }

  /**
   * Checks credentials with the Authenticator, opens the user's mailboxes, starts watching the store and
   * enters the authenticated state, replying `OK [CAPABILITY …]`. A failed login is answered after the
   * configured delay. LOGIN and every AUTHENTICATE mechanism end here, IMAP's one completion point; the one
   * failed-login policy ({@link TextSession.checkLogin}) runs first (`rejected`: the SASL mechanism refused already).
   * @throws ImapError `NO [AUTHENTICATIONFAILED]` for wrong credentials, `NO [UNAVAILABLE]` for a temporary failure.
   * `confirm` is the SASL mechanism's success-data step (SCRAM's server signature), run once the credentials are
   * accepted and before the login hooks; false means it refused and replied, and the login stops there.
   */
  async login(mechanism: string, credentials: ImapCredentials, rejected = false, confirm?: () => Promise<boolean>): Promise<void> {
    const { failedLoginDelayMs: delayMs, maxLoginFailures: maxFailures } = this.ctx.settings;
    const check = await this.checkLogin(this.ctx.authenticator, { protocol: 'imap', mechanism, ...credentials, peer: this.peer() }, { delayMs, maxFailures }, rejected);
    if (!check.ok) {
      if (check.why === 'throttled') throw new ImapError('NO', 'UNAVAILABLE', 'Too many failed logins, try again later');
      if (check.why === 'temporary') throw new ImapError('NO', 'UNAVAILABLE', 'Authentication temporarily unavailable');
      if (check.isLast) this.closeAfterReply = true;
      throw new ImapError('NO', 'AUTHENTICATIONFAILED', 'Authentication failed');
    }
    // The mechanism's success data (SCRAM's server signature) before anything else: the client may still refuse.
    if (confirm && !(await confirm())) return;
    await runHooks(this.ctx.hooks, (h) => h.onLogin?.({ username: check.username, mechanism, peer: this.peer() }));
    this.recordLoginSuccess(credentials.username, mechanism);
    let view: UserMailboxes;
    try {
      view = await this.ctx.store.openUser(check.username);
    } catch (err) {
      throw mapStoreError(err);
    }
    if (this.isEnding) {
      await view.release().catch(() => undefined);
      return;
    }
    this.view = view;
    this.user = view.username;
    // Without MailboxWatching the session sees other sessions' changes only when it re-reads the mailbox.
    const store = this.ctx.store;
    this.unwatch = supportsWatch(store)
      ? store.watch((event) => {
          if (event.username === this.user) this.updates.note(event);
        })
      : undefined;
    this.current = 'authenticated';
    this.log.info('auth succeeded', { user: view.username, mechanism });
    await this.ok('Logged in', `CAPABILITY ${this.capabilities().join(' ')}`);
  }

  /** SELECT/EXAMINE succeeded: `mailbox` is now the selected mailbox. */
  enterSelected(mailbox: SelectedMailbox): void {
    this.mailbox = mailbox;
    this.current = 'selected';
    this.applyExtensions();
  }

  /** True once `name` was enabled (ENABLE, RFC 5161; or a CONDSTORE-enabling command, RFC 7162 §3.1). */
  isEnabled(name: EnableableExtension): boolean {
    return this.enabledExtensions.has(name);
  }

  /**
   * Turns an extension on for the rest of the session. QRESYNC implies CONDSTORE (RFC 7162 §3.2.3). Returns the
   * names newly enabled (for `* ENABLED`, RFC 5161 §3.2).
   */
  enableExtension(name: EnableableExtension): EnableableExtension[] {
    const added: EnableableExtension[] = [];
    for (const n of name === 'QRESYNC' ? (['CONDSTORE', 'QRESYNC'] as const) : [name]) {
      if (this.enabledExtensions.has(n)) continue;
      this.enabledExtensions.add(n);
      added.push(n);
    }
    this.applyExtensions();
    // RFC 7162 §3.1: CONDSTORE turned on with a mailbox selected reports its HIGHESTMODSEQ at once.
    if (added.includes('CONDSTORE') && this.mailbox) this.send(`* OK [HIGHESTMODSEQ ${this.mailbox.highestModseq}] Highest\r\n`);
    return added;
  }

  private applyExtensions(): void {
    if (!this.mailbox) return;
    this.mailbox.condstore = this.enabledExtensions.has('CONDSTORE');
    this.mailbox.qresync = this.enabledExtensions.has('QRESYNC');
    this.mailbox.rev2 = this.enabledExtensions.has('IMAP4rev2');
  }

  /** CLOSE, UNSELECT, a failed SELECT: back to the authenticated state. */
  unselect(): void {
    this.mailbox = undefined;
    if (this.current === 'selected') this.current = 'authenticated';
  }

  /** LOGOUT (RFC 3501 §6.1.3): `* BYE`, tagged OK, close. */
  async logout(): Promise<void> {
    this.current = 'logout';
    this.send(untaggedLine('BYE', undefined, 'Postern IMAP logging out'));
    this.send(taggedLine(this.command.tag, 'OK', undefined, 'LOGOUT completed'));
    await this.end('closed');
  }

  /** STARTTLS (RFC 3501 §6.2.1): tagged OK, then the engine's one TLS path (pipelined plaintext is dropped). */
  async upgradeTls(): Promise<void> {
    if (this.isSecure) throw new ImapError('BAD', undefined, 'TLS is already active');
    // No [CAPABILITY] here: the client must re-ask after the handshake (RFC 3501 §6.2.1).
    this.send(taggedLine(this.command.tag, 'OK', undefined, 'Begin TLS negotiation now'));
    if (!(await this.startTls(this.ctx.security))) return;
    this.commands.reset();
    await this.admit(() => runHooks(this.ctx.hooks, (h) => h.onSecure?.(this.peer())));
  }

  /**
   * IDLE (RFC 2177): `+ idling`, then every store change of the selected mailbox is reported at once until the
   * client sends `DONE`.
   * @throws ImapError BAD when the client sends anything but DONE.
   */
  async idle(): Promise<void> {
    const r = await this.updates.idle();
    if (r.kind === 'closed') return;
    if (r.kind === 'runaway') return this.onLineTooLong(true);
    if (r.kind !== 'line' || r.line.toString('latin1').toUpperCase() !== 'DONE') {
      throw new ImapError('BAD', undefined, 'Expected DONE');
    }
    this.log.debug('C: DONE');
    await this.ok('IDLE terminated');
  }

  /** COMPRESS DEFLATE is active (RFC 4978). */
  get isCompressed(): boolean {
    return this.connection.isCompressed;
  }

  /**
   * UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2 (RFC 9051 §5.1: mailbox names are UTF-8; §4.3: quoted strings may hold
   * UTF-8) is on: mailbox names travel as UTF-8, not modified UTF-7.
   */
  get utf8(): boolean {
    return this.enabledExtensions.has('UTF8=ACCEPT') || this.enabledExtensions.has('IMAP4rev2');
  }

  /** The client enabled IMAP4rev2 (RFC 9051): ESEARCH answers SEARCH, no `\Recent`/RECENT, LIST in SELECT. */
  get isRev2(): boolean {
    return this.enabledExtensions.has('IMAP4rev2');
  }

  /** The user's view after login, for {@link ImapUpdates} (NOTIFY). */
  get userView(): UserMailboxes | undefined {
    return this.view;
  }

  /** A command is running (unsolicited NOTIFY responses wait for its end). */
  get isBusy(): boolean {
    return this.running !== undefined;
  }

  /** NOTIFY (RFC 5465): the new event selection, or undefined for NOTIFY NONE. */
  setNotify(spec: NotifySpec | undefined): void {
    this.updates.notify = spec;
  }

  /** The selected mailbox with the user's view, for {@link ImapUpdates}; undefined when none is selected. */
  selection(): { mailbox: SelectedMailbox; view: UserMailboxes } | undefined {
    return this.mailbox && this.view ? { mailbox: this.mailbox, view: this.view } : undefined;
  }

  /**
   * Queues the untagged EXISTS/RECENT/FETCH/EXPUNGE responses that are due for the selected mailbox, holding
   * EXPUNGE back during commands that use sequence numbers (RFC 3501 §7.4.1).
   */
  async sendUpdates(): Promise<void> {
    await this.updates.due(!SEQUENCE_COMMANDS.has(this.running?.command ?? ''));
  }

  /** Releases the store watch and the user view. Idempotent; called when the session is over. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stop.abort();
    this.unwatch?.();
    this.mailbox = undefined;
    await this.view?.release().catch((err: unknown) => this.log.warn('view release failed', { error: (err as Error)?.message }));
  }
}
