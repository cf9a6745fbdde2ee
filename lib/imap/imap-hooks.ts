import type { ServiceIdentifier } from 'inversify';
import type { PeerInfo } from '../contracts/peer-info.js';

/** What `onLogin` learns about a login the Authenticator accepted. */
export interface ImapLoginInfo {
  /** Canonical user from the Authenticator. */
  readonly username: string;
  /** `IMAP-LOGIN` for the LOGIN command, else the SASL mechanism of AUTHENTICATE (`PLAIN`, `LOGIN`, …). */
  readonly mechanism: string;
  readonly peer: PeerInfo;
}

/**
 * How a command uses a mailbox: `select` / `examine` (SELECT, EXAMINE; `examine` also for a CATENATE URL that reads
 * another mailbox's message), `status` (STATUS, each mailbox of LIST … RETURN (STATUS), NOTIFY's `* STATUS`), `append` (APPEND
 * target), `copy` / `move` (COPY, MOVE target; the source is the selected mailbox, already checked at SELECT).
 */
export type ImapMailboxAccessKind = 'select' | 'examine' | 'status' | 'append' | 'copy' | 'move';

/** What `onMailbox` is asked about. */
export interface ImapMailboxAccess {
  /** The logged-in user. */
  readonly username: string;
  /** The mailbox name as the client gave it, decoded (modified UTF-7 or UTF-8), `INBOX` in upper case. */
  readonly mailbox: string;
  readonly access: ImapMailboxAccessKind;
  readonly peer: PeerInfo;
}

/**
 * Policy hooks of the IMAP server, with SMTP's refusal model (see `SmtpHooks`). Bind any number to
 * {@link ImapHooks} (multi-binding, called in binding order; the first refusal wins). Every method is optional and
 * async. Throw `ImapError(status, code, text)` to refuse with exactly that reply; anything else is a bug: logged
 * with its stack, answered generically (`NO [SERVERBUG]`, or `* BYE` before the greeting), never skipped.
 */
export interface ImapHooks {
  /**
   * Before the greeting (after the handshake on the implicit-TLS port). A refusal is sent as
   * `* BYE [code] text` instead of the greeting (RFC 3501 §7.1.5) and the connection closes.
   */
  onConnect?(peer: PeerInfo): Promise<void>;
  /**
   * After each successful TLS handshake (implicit, or STARTTLS), with `peer.security` filled in. A refusal is sent
   * as `* BYE [code] text` over TLS and the connection closes.
   */
  onSecure?(peer: PeerInfo): Promise<void>;
  /**
   * After the Authenticator accepted the credentials (LOGIN or AUTHENTICATE), before the user's mailboxes are
   * opened. A refusal is the tagged reply (e.g. `ImapError('NO', 'AUTHENTICATIONFAILED', 'Account locked')`) and
   * the session stays not authenticated; it does not count as a failed login.
   */
  onLogin?(info: ImapLoginInfo): Promise<void>;
  /**
   * Before a command uses a mailbox (see {@link ImapMailboxAccessKind}), before the store is asked whether it
   * exists. A refusal is the tagged reply (`ImapError('NO', 'NOPERM', …)`, RFC 5530 §3); a refused SELECT leaves no
   * mailbox selected, as any failed SELECT does. For an APPEND with a synchronizing literal it runs before the `+`
   * continuation, so a refused client never sends the message. For LIST-STATUS and NOTIFY a refusal just leaves
   * out that mailbox's `* STATUS` line.
   */
  onMailbox?(access: ImapMailboxAccess): Promise<void>;
}
/** DI token of the {@link ImapHooks} multi-binding. */
export const ImapHooks = Symbol.for('postern.ImapHooks') as ServiceIdentifier<ImapHooks>;

/** `INBOX` is case-insensitive (RFC 3501 §5.1): hooks always see it in upper case. */
export function hookMailboxName(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

