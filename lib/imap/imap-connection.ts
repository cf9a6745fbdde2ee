import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator, AuthRequest } from '../contracts/authenticator.js';
import type { MailboxEvent, MailStore, UserMailboxes } from '../contracts/mail-store.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import { dispatch, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { TextSession } from '../protocol/text-session.js';
import { mailboxName, mapStoreError } from './commands/args.js';
import { imapCapabilities } from './imap-capabilities.js';
import { IMAP_COMMANDS } from './imap-commands.js';
import type { ImapSettings } from './imap-options.js';
import { ImapCommandAssembler, type AssemblerResult, type ImapCommand, type ImapParseError } from './imap-parser.js';
import { ImapError, taggedLine, untaggedLine } from './imap-replies.js';
import type { SelectedMailbox } from './imap-selected.js';
import type { ImapState } from './imap-state.js';

/** What an IMAP session needs from the server that created it. */
export interface ImapContext {
  readonly store: MailStore;
  readonly authenticator: Authenticator;
  /** Used by STARTTLS; the implicit-TLS listener has secured the connection before the session starts. */
  readonly security: ServerSecurity;
  readonly settings: ImapSettings;
  readonly listener: ListenerInfo;
}

/** Credentials of one login attempt, as LOGIN or AUTHENTICATE decoded them. */
export type ImapCredentials = Pick<AuthRequest, 'username' | 'authzid' | 'password'>;

/** Commands whose arguments are secrets: logged as `[redacted]`. */
const SECRET_COMMANDS = new Set(['LOGIN', 'AUTHENTICATE']);

/**
 * Commands that use message sequence numbers: while they run, EXPUNGE responses are held back
 * (RFC 3501 §7.4.1; COPY added because its numbers must stay valid too).
 */
const SEQUENCE_COMMANDS = new Set(['FETCH', 'STORE', 'SEARCH', 'COPY']);

/**
 * Literals of commands other than APPEND are capped at the line length: a LOGIN, SEARCH or mailbox name has
 * no business carrying megabytes, and this keeps memory per non-APPEND command bounded by the line limit.
 */
/** Besides its literals, a command may carry this many lines' worth of octets (all its lines, all its small literals). */
const COMMAND_OVERHEAD_LINES = 16;

function literalLimit(command: string, settings: ImapSettings): number {
  return command === 'APPEND' ? settings.maxLiteralSize : settings.maxLineLength;
}

/**
 * One IMAP4rev1 session (RFC 3501), on the STARTTLS port or the implicit-TLS port alike.
 *
 * Created by `ImapServer.handle()`, which awaits {@link run}. Lines are assembled into commands (with literals)
 * by {@link ImapCommandAssembler}; each complete command goes through `dispatch()` and the command table.
 * Handlers read their parsed arguments from {@link command} and finish with {@link ok}, which first sends the
 * untagged updates that are due (RFC 3501 §5.2, §7) and then the tagged OK.
 *
 * Literal limits are checked before the `+` continuation (RFC 3501 §7.5): a synchronizing literal that is too
 * big is answered `NO [TOOBIG]` (APPEND) or `BAD` and never read. A non-synchronizing literal (LITERAL+,
 * RFC 7888 §4) that is too big, or announced on a line that is otherwise refused, is already on its way: the
 * session answers, sends `* BYE` and closes rather than guessing where the client's next command starts.
 *
 * The user view and the store watch are released in {@link closed}, whatever ended the session.
 */
export class ImapConnection extends TextSession implements DispatchTarget<ImapState> {
  private current: ImapState = 'not-authenticated';
  private readonly assembler: ImapCommandAssembler;
  private running?: ImapCommand;
  private view?: UserMailboxes;
  private user?: string;
  private mailbox?: SelectedMailbox;
  private unwatch?: () => void;
  private loginFailures = 0;
  private closeAfterReply = false;
  private idling = false;
  private updates: Promise<void> = Promise.resolve();
  private released = false;
  private readonly stop = new AbortController();

  constructor(
    connection: Connection,
    readonly ctx: ImapContext,
  ) {
    super(connection, {
      maxLineLength: ctx.settings.maxLineLength,
      maxBadCommands: ctx.settings.maxBadCommands,
      idleTimeoutMs: ctx.settings.idleTimeoutMs,
    });
    // The session checks literal and command sizes itself (it knows the command), so the assembler's own
    // limits are only the 32-bit literal bound of RFC 3501 §9.
    this.assembler = new ImapCommandAssembler({
      maxLiteralSize: 0xffffffff,
      maxNonSyncLiteralSize: 0xffffffff,
      maxCommandSize: Number.MAX_SAFE_INTEGER,
    });
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

  /** The command being run; handlers read their arguments here. */
  get command(): ImapCommand {
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

  /** The current CAPABILITY list (RFC 3501 §7.2.1). */
  capabilities(): string[] {
    return imapCapabilities({
      state: this.current,
      isSecure: this.isSecure,
      allowInsecureAuth: this.allowsInsecureAuth,
      maxLiteralSize: this.ctx.settings.maxLiteralSize,
    });
  }

  /** What backends may know about the peer. */
  peer(): PeerInfo {
    return peerInfo(this.connection, this.ctx.listener.name);
  }

  protected async greet(): Promise<void> {
    this.send(untaggedLine('OK', `CAPABILITY ${this.capabilities().join(' ')}`, 'Postern IMAP ready'));
  }

  /** Assembles one command from this line, the literals it announces and the lines that follow them, then runs it. */
  protected async onLine(line: Buffer): Promise<void> {
    let result: AssemblerResult = this.assembler.pushLine(line);
    let total = line.length + 2;
    let first = true;
    for (;;) {
      if (first) this.logLine(line, result);
      first = false;
      if (result.kind === 'complete') return this.execute(result.command);
      if (result.kind === 'error') return this.parseError(result.error);
      if (result.kind === 'more') throw new Error('assembler wants a line after pushLine');
      total += result.size;
      const data = await this.readLiteral(result, total);
      if (data === undefined) return;
      result = this.assembler.pushLiteral(data);
      const next = await this.reader.readLine();
      if (next.kind === 'closed') return;
      if (next.kind === 'runaway') {
        this.assembler.reset();
        return this.onLineTooLong(true);
      }
      if (next.kind === 'too-long') {
        this.assembler.reset();
        this.send(taggedLine(this.tagOf(line), 'BAD', undefined, 'Line too long'));
        await this.countError();
        return;
      }
      this.log.debug('C: [continuation]', { octets: next.line.length });
      total += next.line.length + 2;
      result = this.assembler.pushLine(next.line);
    }
  }

  private tagOf(line: Buffer): string {
    const sp = line.indexOf(0x20);
    return line.subarray(0, sp < 0 ? line.length : sp).toString('latin1');
  }

  private logLine(line: Buffer, result: AssemblerResult): void {
    if (this.log.isDebugEnabled === false) return;
    const command = result.kind === 'complete' ? result.command.command : result.kind === 'literal' ? result.command : undefined;
    if (command === undefined) this.log.debug('C: [unparsable line]', { octets: line.length });
    else if (SECRET_COMMANDS.has(command)) this.log.debug(`C: ${this.tagOf(line)} ${command} [redacted]`);
    else this.log.debug('C: ' + line.toString('utf8').slice(0, 200));
  }

  /**
   * Checks an announced literal against the limits, sends `+ Ready for literal data` for a synchronizing one and
   * reads its octets. Resolves undefined when it was refused (reply sent, assembler reset) or the peer vanished.
   */
  private async readLiteral(lit: Extract<AssemblerResult, { kind: 'literal' }>, total: number): Promise<Buffer | undefined> {
    const tag = lit.tag;
    const limit = literalLimit(lit.command, this.ctx.settings);
    if (lit.size > limit || total > limit + COMMAND_OVERHEAD_LINES * this.ctx.settings.maxLineLength) {
      this.assembler.reset();
      this.log.warn('literal too big', { command: lit.command, size: lit.size });
      if (lit.command === 'APPEND') this.send(taggedLine(tag, 'NO', 'TOOBIG', 'Message too big'));
      else this.send(taggedLine(tag, 'BAD', 'TOOBIG', 'Literal too big'));
      if (!lit.sync) await this.byeNonSync();
      else await this.countError();
      return undefined;
    }
    if (lit.sync) {
      // Do not invite octets for a command that will be refused anyway (unknown, wrong state, LOGIN before TLS):
      // answer now, and the client does not send the literal (RFC 3501 §7.5).
      const failure = this.refusedBeforeLiteral(lit);
      if (failure) {
        this.assembler.reset();
        if (failure !== 'tls') await this.countError();
        return undefined;
      }
      // RFC 3501 §6.3.11: refuse an APPEND into a missing mailbox before the client sends the message.
      if (lit.command === 'APPEND' && lit.args.length === 1 && this.view) {
        const refusal = await this.appendTargetRefusal(lit);
        if (refusal) {
          this.assembler.reset();
          this.send(taggedLine(tag, 'NO', refusal.code, refusal.message));
          return undefined;
        }
      }
      this.send('+ Ready for literal data\r\n');
      await this.flush();
    }
    const data = await this.reader.readExactly(lit.size);
    if (data === undefined) this.assembler.reset();
    return data;
  }

  /** Runs the command table's guards for a command still being assembled; the failure when a refusal was sent. */
  private refusedBeforeLiteral(lit: Extract<AssemblerResult, { kind: 'literal' }>): GuardFailure | undefined {
    const spec = Object.prototype.hasOwnProperty.call(IMAP_COMMANDS, lit.command) ? IMAP_COMMANDS[lit.command] : undefined;
    let failure: GuardFailure | undefined;
    if (!spec) failure = 'unknown';
    else if (!spec.states.includes(this.current)) failure = 'state';
    else if (spec.needsTls && !this.isSecure && !this.allowsInsecureAuth) failure = 'tls';
    if (!failure) return undefined;
    this.running = { tag: lit.tag, command: lit.command, args: [] };
    try {
      this.refuse(failure, lit.command);
    } finally {
      this.running = undefined;
    }
    return failure;
  }

  private async appendTargetRefusal(lit: Extract<AssemblerResult, { kind: 'literal' }>): Promise<ImapError | undefined> {
    if (!this.isAuthenticated) return undefined;
    try {
      await this.mailboxes.info(mailboxName(lit.args[0]));
      return undefined;
    } catch (err) {
      const mapped = mapStoreError(err, true);
      return mapped instanceof ImapError ? mapped : undefined;
    }
  }

  /** A non-synchronizing literal is on its way and will not be read: say goodbye (RFC 7888 §4 allows BYE). */
  private async byeNonSync(): Promise<void> {
    this.log.warn('refused a non-synchronizing literal, closing', {});
    this.send(untaggedLine('BYE', undefined, 'Refused literal cannot be skipped, closing'));
    await this.end('closed');
  }

  private async parseError(error: ImapParseError): Promise<void> {
    if (error.tag === undefined) this.send(untaggedLine('BAD', undefined, error.message));
    else this.send(taggedLine(error.tag, 'BAD', error.reason === 'too-big' ? 'TOOBIG' : undefined, error.message));
    if (error.nonSyncLiteral !== undefined) return this.byeNonSync();
    await this.countError();
  }

  private async execute(command: ImapCommand): Promise<void> {
    this.running = command;
    try {
      await dispatch(IMAP_COMMANDS, this, command.command, command.args.length > 0 ? '…' : '');
    } finally {
      this.running = undefined;
    }
  }

  /** Replies to a guard failure of `dispatch()`. */
  refuse(failure: GuardFailure, _verb: string, detail?: string): void {
    const tag = this.running?.tag ?? '*';
    switch (failure) {
      case 'unknown':
        return this.send(taggedLine(tag, 'BAD', undefined, 'Unknown command'));
      case 'state':
        return this.send(taggedLine(tag, 'BAD', undefined, this.stateRefusal()));
      case 'syntax':
        return this.send(taggedLine(tag, 'BAD', undefined, detail ?? 'Invalid arguments'));
      case 'tls':
        // RFC 3501 §6.2.3 LOGINDISABLED; RFC 5530 §3 PRIVACYREQUIRED.
        return this.send(taggedLine(tag, 'NO', 'PRIVACYREQUIRED', 'TLS required: use STARTTLS first'));
      case 'auth':
        return this.send(taggedLine(tag, 'BAD', undefined, 'Not authenticated'));
      case 'bug':
        return this.send(taggedLine(tag, 'NO', 'SERVERBUG', 'Internal server error'));
    }
  }

  private stateRefusal(): string {
    switch (this.current) {
      case 'not-authenticated':
        return 'Not authenticated';
      case 'authenticated':
        return this.running?.command === 'LOGIN' || this.running?.command === 'AUTHENTICATE' ? 'Already authenticated' : 'No mailbox selected';
      default:
        return 'Command not valid in this state';
    }
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
   * configured delay.
   * @throws ImapError `NO [AUTHENTICATIONFAILED]` for wrong credentials, `NO [UNAVAILABLE]` for a temporary failure.
   */
  async login(mechanism: string, credentials: ImapCredentials): Promise<void> {
    const result = await this.ctx.authenticator.authenticate({ protocol: 'imap', mechanism, ...credentials, peer: this.peer() });
    if (!result.ok) {
      if (result.reason === 'temporary-failure') throw new ImapError('NO', 'UNAVAILABLE', 'Authentication temporarily unavailable');
      this.loginFailures++;
      this.log.info('auth failed', { user: credentials.username, mechanism, failures: this.loginFailures });
      await sleep(this.ctx.settings.failedLoginDelayMs, undefined, { signal: this.stop.signal }).catch(() => undefined);
      if (this.loginFailures >= this.ctx.settings.maxLoginFailures) {
        this.log.warn('too many failed logins, closing', { failures: this.loginFailures });
        this.closeAfterReply = true;
      }
      throw new ImapError('NO', 'AUTHENTICATIONFAILED', 'Authentication failed');
    }
    let view: UserMailboxes;
    try {
      view = await this.ctx.store.openUser(result.username);
    } catch (err) {
      throw mapStoreError(err);
    }
    if (this.isEnding) {
      await view.release().catch(() => undefined);
      return;
    }
    this.view = view;
    this.user = view.username;
    this.unwatch = this.ctx.store.watch((event) => this.onStoreEvent(event));
    this.current = 'authenticated';
    this.log.info('auth succeeded', { user: view.username, mechanism });
    await this.ok('Logged in', `CAPABILITY ${this.capabilities().join(' ')}`);
  }

  /** SELECT/EXAMINE succeeded: `mailbox` is now the selected mailbox. */
  enterSelected(mailbox: SelectedMailbox): void {
    this.mailbox = mailbox;
    this.current = 'selected';
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
    if (await this.startTls(this.ctx.security)) this.assembler.reset();
  }

  /**
   * Sends a SASL continuation (`+ challenge`) and reads the client's response line (RFC 3501 §6.2.2).
   * Resolves undefined when the connection closed meanwhile.
   * @throws ImapError BAD when the client cancels with `*` or the line is too long.
   */
  async readSaslResponse(challenge: string): Promise<string | undefined> {
    this.send(`+ ${challenge}\r\n`);
    await this.flush();
    const r = await this.reader.readLine();
    if (r.kind === 'closed') return undefined;
    if (r.kind === 'runaway') {
      await this.end('closed');
      return undefined;
    }
    if (r.kind === 'too-long') throw new ImapError('BAD', undefined, 'Response too long');
    const text = r.line.toString('latin1').trim();
    if (text === '*') throw new ImapError('BAD', undefined, 'Authentication cancelled');
    return text;
  }

  /**
   * IDLE (RFC 2177): `+ idling`, then every store change of the selected mailbox is reported at once until the
   * client sends `DONE`.
   * @throws ImapError BAD when the client sends anything but DONE.
   */
  async idle(): Promise<void> {
    this.send('+ idling\r\n');
    this.idling = true;
    try {
      await this.pushUpdates();
      const r = await this.reader.readLine();
      this.idling = false;
      await this.updates;
      if (r.kind === 'closed') return;
      if (r.kind === 'runaway') return this.onLineTooLong(true);
      if (r.kind === 'too-long' || r.line.toString('latin1').toUpperCase() !== 'DONE') {
        throw new ImapError('BAD', undefined, 'Expected DONE');
      }
      this.log.debug('C: DONE');
      await this.ok('IDLE terminated');
    } finally {
      this.idling = false;
    }
  }

  /** Store events of this user mark the selected mailbox dirty; during IDLE they are reported at once. */
  private onStoreEvent(event: MailboxEvent): void {
    if (event.username !== this.user || !this.mailbox) return;
    this.mailbox.note(event);
    if (this.idling && this.mailbox.isDirty) void this.pushUpdates();
  }

  /** Sends the due updates and flushes them now (IDLE). Serialized with {@link sendUpdates}. */
  private pushUpdates(): Promise<void> {
    this.updates = this.updates.then(async () => {
      try {
        await this.sendUpdatesNow(true);
        await this.flush();
      } catch (err) {
        this.log.error('update failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      }
    });
    return this.updates;
  }

  /**
   * Queues the untagged EXISTS/RECENT/FETCH/EXPUNGE responses that are due for the selected mailbox, holding
   * EXPUNGE back during commands that use sequence numbers (RFC 3501 §7.4.1).
   */
  async sendUpdates(): Promise<void> {
    const allowExpunge = !SEQUENCE_COMMANDS.has(this.running?.command ?? '');
    const run = this.updates.then(() => this.sendUpdatesNow(allowExpunge));
    // Keep the chain usable after a failure; the caller still sees the error (dispatch reports it as a bug).
    this.updates = run.catch(() => undefined);
    await run;
  }

  private async sendUpdatesNow(allowExpunge: boolean): Promise<void> {
    const mailbox = this.mailbox;
    if (!mailbox || !this.view || this.isEnding) return;
    const { lines, gone } = await mailbox.sync(this.view, allowExpunge);
    for (const l of lines) this.send(l);
    if (gone) {
      this.log.info('selected mailbox deleted, closing', {});
      this.send(untaggedLine('BYE', undefined, 'Selected mailbox was deleted'));
      await this.end('closed');
    }
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
