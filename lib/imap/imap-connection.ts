import type { Connection } from '../core/connection.js';
import { dispatch, type DispatchTarget, type GuardFailure } from '../protocol/command-table.js';
import { isHttpMethod } from '../protocol/http-request.js';
import type { ReplyError } from '../protocol/reply-error.js';
import { admitSession, runHooks } from '../protocol/session-hooks.js';
import type { FaultStage } from '../protocol/faults.js';
import { mailboxName, mapStoreError } from './commands/args.js';
import { IMAP_COMMANDS } from './imap-commands.js';
import { earlyGuardFailure, guardReply } from './imap-guards.js';
import { hookMailboxName } from './imap-hooks.js';
import { ImapCommandReader, type LiteralRequest } from './imap-command-reader.js';
import { ImapLoginSession } from './imap-login-session.js';
import type { ImapCommand } from './imap-parser.js';
import { ImapError, taggedLine, untaggedLine } from './imap-replies.js';
import type { ImapContext } from './imap-session-state.js';
import type { ImapState } from './imap-state.js';

export type { EnableableExtension, ImapContext } from './imap-session-state.js';
export type { ImapCredentials } from './imap-login-session.js';

/**
 * One IMAP4rev1 session (RFC 3501), on the STARTTLS port or the implicit-TLS port alike.
 *
 * Created by `ImapServer.handle()`, which awaits {@link run}. Lines are assembled into commands (with literals,
 * their limits and `+` continuations) by {@link ImapCommandReader}; each complete command goes through
 * `dispatch()` and the command table. Handlers get the parsed command as their argument and finish with
 * {@link ok}, which first sends the untagged updates that are due (RFC 3501 §5.2, §7; kept by
 * {@link ImapUpdates}, which also runs IDLE) and then the tagged OK.
 *
 * The user view and the store watch are released in {@link closed}, whatever ended the session. The base classes
 * hold the rest: {@link ImapLoginSession} the login's completion point and that release, `ImapSessionState` the state
 * that handlers read and change, with its accessors.
 */
export class ImapConnection extends ImapLoginSession implements DispatchTarget<ImapState> {
  private readonly commands: ImapCommandReader;

  constructor(connection: Connection, ctx: ImapContext) {
    super(connection, ctx);
    this.commands = new ImapCommandReader(this, ctx.settings);
  }

  /** The command being run, for the tagged replies this session sends (handlers get it as their argument). */
  private get command(): ImapCommand {
    if (!this.running) throw new Error('no command is running');
    return this.running;
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
    // An HTTP request line (`GET / HTTP/1.1`) is an unknown command `/` with the tag `GET`: the session ends there,
    // without the tagged BAD that would echo it (ALPACA; the other protocols see the method as their verb).
    if (isHttpMethod(command.tag) && !Object.prototype.hasOwnProperty.call(IMAP_COMMANDS, command.command)) return this.refuseHttpRequest(command.tag);
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

  /** An HTTP request line ends the session with an untagged BYE (RFC 9051 §7.1.5): its tag is never echoed. */
  protected override httpRequestGoodbye(): string {
    return untaggedLine('BYE', undefined, 'HTTP request refused');
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
}
