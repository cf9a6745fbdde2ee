/**
 * The login side of one IMAP session ({@link ImapLoginSession}, the base of `ImapConnection`): the one completion point
 * of LOGIN and every AUTHENTICATE mechanism, which opens the user's mailboxes, starts watching the store and enters the
 * authenticated state, and the release of the view and the watch once the session is over. `imap-connection.ts`
 * re-exports {@link ImapCredentials}.
 */
import type { AuthRequest } from '../contracts/authenticator.js';
import { supportsWatch, type UserMailboxes } from '../contracts/mail-store.js';
import { runHooks } from '../protocol/session-hooks.js';
import { mapStoreError } from './commands/args.js';
import { ImapError } from './imap-replies.js';
import { ImapSessionState } from './imap-session-state.js';

/** Credentials of one login attempt, as LOGIN or AUTHENTICATE decoded them. */
export type ImapCredentials = Pick<AuthRequest, 'username' | 'authzid' | 'password' | 'verifyWithSecret' | 'external'>;

/**
 * The base class of `ImapConnection`: {@link login}, IMAP's one login completion point, and {@link release}, which
 * `ImapConnection` calls when the session is over. The session member they use that `ImapConnection` defines is
 * declared here.
 */
export abstract class ImapLoginSession extends ImapSessionState {
  private unwatch?: () => void;
  /** Set when a refused login was the last one allowed: `ImapConnection.sendReplyError` then says BYE and closes. */
  protected closeAfterReply = false;
  private released = false;

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

  /** Releases the store watch and the user view. Idempotent; called when the session is over. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.unwatch?.();
    this.mailbox = undefined;
    await this.view?.release().catch((err: unknown) => this.log.warn('view release failed', { error: (err as Error)?.message }));
  }

  /** `ImapConnection.ok`: {@link login} ends with the tagged `OK [CAPABILITY …]`. */
  abstract ok(text: string, code?: string): Promise<void>;
}
