import type { ServiceIdentifier } from 'inversify';
import type { QuotaOptions } from '../contracts/quota.js';
import type { ServerSecurityOptions } from '../core/server-security.js';
import type { LoggerOptions } from '../log/logger.js';
import type { ImapOptions } from '../imap/imap-options.js';
import type { Pop3Options } from '../pop3/pop3-options.js';
import type { SmtpOptions } from '../smtp/smtp-options.js';

/**
 * Process-wide configuration read by the container modules. Every field is optional: `createContainer({})`
 * gives a development server on 127.0.0.1 with the GreenMail-style ports and an in-memory store.
 */
export interface PosternConfig {
  /** Default bind address for every listener (default `127.0.0.1`). */
  host?: string;
  /** Logging. */
  log?: LoggerOptions;
  /** TLS settings shared by every listener (STARTTLS/STLS and implicit). */
  tls?: ServerSecurityOptions;
  /** Permit AUTH/LOGIN/USER before TLS (off by default). */
  allowInsecureAuth?: boolean;
  /** Any login succeeds and unknown recipients get a mailbox (GreenMail's auth-disabled mode). */
  authDisabled?: boolean;
  /** Users to create at start. */
  users?: ReadonlyArray<{ username: string; password: string; addresses?: string[] }>;
  /** Mail store: `memory` (default) or `maildir:PATH`. */
  store?: string;
  /** Storage quota per user (RFC 9208), enforced around whatever store is bound. */
  quota?: QuotaOptions;
  /** Protocol sections; omitted sections use their defaults, `false` disables the protocol. */
  smtp?: SmtpOptions | false;
  pop3?: Pop3Options | false;
  imap?: ImapOptions | false;
}
/** DI token for the {@link PosternConfig} the container was built from. */
export const PosternConfig = Symbol.for('postern.PosternConfig') as ServiceIdentifier<PosternConfig>;
