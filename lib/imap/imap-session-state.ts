/**
 * The state of one IMAP session that its command handlers read and change: the RFC 3501 §3 state, the command running,
 * the user's mailboxes, the selected mailbox and the extensions the client enabled, with what follows from them (the
 * CAPABILITY list, the `onMailbox` checks, the untagged updates due). `ImapConnection` extends it with the wire side;
 * `imap-connection.ts` re-exports {@link ImapContext} and {@link EnableableExtension}.
 */
import type { Connection } from '../core/connection.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ListenerInfo } from '../core/tcp-server.js';
import type { Authenticator } from '../contracts/authenticator.js';
import { supportsObjectIdentity, type MailStore, type UserMailboxes } from '../contracts/mail-store.js';
import { peerInfo, type PeerInfo } from '../contracts/peer-info.js';
import { supportsQuota } from '../contracts/quota.js';
import { TextSession } from '../protocol/text-session.js';
import { runHooks } from '../protocol/session-hooks.js';
import { availableMechanisms, saslSessionInfo, type SaslSessionInfo } from '../protocol/sasl/sasl-mechanism.js';
import { imapCapabilities } from './imap-capabilities.js';
import { hookMailboxName, type ImapHooks, type ImapMailboxAccessKind } from './imap-hooks.js';
import type { ImapSettings } from './imap-options.js';
import type { NotifySpec } from './imap-notify.js';
import type { ImapCommand } from './imap-parser.js';
import type { RecentTracker } from './imap-recent.js';
import { ImapError } from './imap-replies.js';
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

/**
 * Commands that use message sequence numbers: while they run, EXPUNGE responses are held back
 * (RFC 3501 §7.4.1; COPY added because its numbers must stay valid too).
 */
const SEQUENCE_COMMANDS = new Set(['FETCH', 'STORE', 'SEARCH', 'COPY', 'SORT', 'THREAD']);

/**
 * The base of `ImapLoginSession`, and so of {@link ImapConnection}: the session's state with the accessors and
 * transitions its command handlers use, and the {@link ImapUpdates} that report changes of the selected mailbox.
 * ImapConnection runs the session on the wire and sets the state on LOGOUT and around each command, ImapLoginSession
 * on login.
 */
export abstract class ImapSessionState extends TextSession {
  protected current: ImapState = 'not-authenticated';
  protected readonly updates = new ImapUpdates(this);
  protected running?: ImapCommand;
  protected view?: UserMailboxes;
  protected user?: string;
  protected mailbox?: SelectedMailbox;
  private readonly enabledExtensions = new Set<EnableableExtension>();
  /** The APPEND whose target `onMailbox` already allowed before its literal (tag and mailbox). */
  protected appendAllowed?: string;

  protected constructor(
    connection: Connection,
    readonly ctx: ImapContext,
  ) {
    super(connection, {
      maxLineLength: ctx.settings.maxLineLength,
      maxBadCommands: ctx.settings.maxBadCommands,
      idleTimeoutMs: ctx.settings.idleTimeoutMs,
      bodyTimeoutMs: ctx.settings.bodyTimeoutMs,
    });
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
}
