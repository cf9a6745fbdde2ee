import type { ServiceIdentifier } from 'inversify';
import type { PeerInfo } from '../contracts/peer-info.js';

/** What `onLogin` learns about a login the Authenticator accepted. */
export interface Pop3LoginInfo {
  /** Canonical user from the Authenticator. */
  readonly username: string;
  /** `USER` (USER/PASS), `APOP`, or the SASL mechanism of AUTH (`PLAIN`, `LOGIN`, `CRAM-MD5`, …). */
  readonly mechanism: string;
  readonly peer: PeerInfo;
}

/** What `onMaildrop` is asked about: opening a user's maildrop (RFC 1939 §4, the INBOX). */
export interface Pop3MaildropAccess {
  /** The user whose maildrop is opened. */
  readonly username: string;
  /** Always `INBOX`: POP3 sees that mailbox only (the same name IMAP's `onMailbox` gets). */
  readonly mailbox: 'INBOX';
  readonly peer: PeerInfo;
}

/**
 * Policy hooks of the POP3 server, with SMTP's refusal model (see `SmtpHooks`). Bind any number to
 * {@link Pop3Hooks} (multi-binding, called in binding order; the first refusal wins). Every method is optional and
 * async. Throw `Pop3Error(respCode, text)` to refuse with exactly `-ERR [respCode] text`; anything else is a bug:
 * logged with its stack and answered `-ERR [SYS/TEMP]`, never skipped.
 */
export interface Pop3Hooks {
  /** Before the greeting (after the handshake on the implicit-TLS port). A refusal replaces the greeting and the connection closes. */
  onConnect?(peer: PeerInfo): Promise<void>;
  /** After each successful TLS handshake (implicit, or STLS), `peer.security` filled in. A refusal is sent over TLS and the connection closes. */
  onSecure?(peer: PeerInfo): Promise<void>;
  /**
   * After the Authenticator accepted the credentials (USER/PASS, APOP, AUTH), before the maildrop is locked. A
   * refusal (e.g. `Pop3Error('AUTH', 'account locked')`, RFC 3206 §4) is the reply and the session stays in the
   * AUTHORIZATION state; it does not count as a failed login.
   */
  onLogin?(info: Pop3LoginInfo): Promise<void>;
  /**
   * After `onLogin`, before the maildrop is locked and opened. A refusal is the reply (e.g.
   * `Pop3Error('SYS/PERM', 'POP3 access disabled for this mailbox')`) and the session stays in AUTHORIZATION.
   */
  onMaildrop?(access: Pop3MaildropAccess): Promise<void>;
}
/** DI token of the {@link Pop3Hooks} multi-binding. */
export const Pop3Hooks = Symbol.for('postern.Pop3Hooks') as ServiceIdentifier<Pop3Hooks>;
