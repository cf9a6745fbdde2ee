import type { ServiceIdentifier } from 'inversify';
import { resolveSmtpSettings, type SmtpListenerOptions, type SmtpOptions, type SmtpSettings } from '../smtp/smtp-options.js';

/**
 * Default LMTP port: GreenMail's convention (standard port + 3000) applied to port 24, the usual LMTP port
 * (RFC 2033 §5 asks that LMTP not use port 25; IANA lists 24 for "any private mail system").
 */
export const LMTP_PORT = 3024;

/**
 * The `lmtp` section of the configuration (`PosternConfig.lmtp`). LMTP is SMTP's session code with LHLO and one reply
 * per recipient, so it takes SMTP's options (limits, hostname, bare-LF policy…, each defaulting as for SMTP) except
 * SMTP's listeners, plus its own.
 */
export interface LmtpOptions extends Omit<SmtpOptions, 'smtp' | 'smtps'> {
  /** The TCP listener (default port {@link LMTP_PORT}; plaintext with STARTTLS). */
  lmtp?: SmtpListenerOptions;
  /**
   * Also listen on this Unix domain socket path (listener `lmtp-socket`): how Postfix hands mail to a delivery agent
   * (`mailbox_transport = lmtp:unix:PATH`). A stale socket file left by a crash is replaced; any other file there is
   * an error at start.
   */
  socket?: string;
  /**
   * File mode of the socket (e.g. `0o666`, or `0o660` with a shared group): the connecting process needs write
   * permission on it (Postfix's lmtp(8) runs as the `postfix` user). Default: 0777 less the process umask.
   */
  socketMode?: number;
}

/** LMTP's resolved settings: the same shape as SMTP's. */
export type LmtpSettings = SmtpSettings;
/** DI token of LMTP's resolved settings (separate from SMTP's: the two sections differ). */
export const LmtpSettings = Symbol.for('postern.LmtpSettings') as ServiceIdentifier<LmtpSettings>;

/**
 * Applies the defaults (SMTP's). `globals` are the process-wide switches of `PosternConfig`.
 * @throws RangeError for a negative or non-integer limit.
 */
export function resolveLmtpSettings(options: LmtpOptions = {}, globals: { allowInsecureAuth?: boolean; authDisabled?: boolean } = {}): LmtpSettings {
  return resolveSmtpSettings(options, globals);
}
