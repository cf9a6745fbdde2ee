import type { ServiceIdentifier } from 'inversify';
import type { CertificateLoginOption } from '../backends/certificate-login-mappers.js';
import type { QuotaOptions } from '../contracts/quota.js';
import type { DsnRelayOptions } from '../smtp/dsn-relay.js';
import type { AcmeOptions } from '../core/acme-certificates.js';
import type { ServerLimits } from '../core/connection-limits.js';
import type { AuthThrottleOptions } from '../protocol/auth-throttle.js';
import type { ServerSecurityOptions } from '../core/server-security.js';
import type { LoggerOptions } from '../log/logger.js';
import type { ImapOptions } from '../imap/imap-options.js';
import type { Pop3Options } from '../pop3/pop3-options.js';
import type { SmtpOptions } from '../smtp/smtp-options.js';
import type { LmtpOptions } from '../lmtp/lmtp-options.js';

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
  /**
   * Get the certificate from an ACME CA (RFC 8555) instead of configuring one in `tls.certificate`: obtained after
   * the listeners start (TLS-ALPN-01 is answered on the implicit-TLS listeners) and renewed before expiry.
   */
  acme?: AcmeOptions;
  /** Permit AUTH/LOGIN/USER before TLS (off by default). */
  allowInsecureAuth?: boolean;
  /**
   * SASL EXTERNAL from TLS client certificates (`--cert-login`): how a validated client certificate maps to a login
   * (`cn`, `email`, or a SHA-256 fingerprint table). Absent: EXTERNAL is not offered (unless you bind a
   * `CertificateLoginMapper`). Client certificates must be requested (`tls.requestClientCertificate`).
   */
  certLogin?: CertificateLoginOption;
  /** Any login succeeds and unknown recipients get a mailbox (GreenMail's auth-disabled mode). */
  authDisabled?: boolean;
  /** Connection caps (per listener, per client address, in total) and pre-auth/command deadlines for every listener. */
  limits?: ServerLimits;
  /** Failed-login throttling across connections (per client address and per account); see `AuthThrottleOptions`. */
  authThrottle?: AuthThrottleOptions;
  /** Users to create at start. */
  users?: ReadonlyArray<{ username: string; password: string; addresses?: string[] }>;
  /** Mail store: `memory` (default), `maildir:PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` (also `postgresql://`). */
  store?: string;
  /**
   * DSN notices (with `smtp.dsn`/`lmtp.dsn`) for senders that are not local users go to this SMTP relay (your MTA),
   * from the null reverse-path; without it they are logged as not sent. See `dsn-relay.ts`.
   */
  dsnRelay?: DsnRelayOptions;
  /** Storage quota per user (RFC 9208), enforced around whatever store is bound. */
  quota?: QuotaOptions;
  /** Protocol sections; omitted sections use their defaults, `false` disables the protocol. */
  smtp?: SmtpOptions | false;
  pop3?: Pop3Options | false;
  imap?: ImapOptions | false;
  /** LMTP (RFC 2033) delivery: SMTP's options plus the `lmtp` listener and an optional Unix `socket` path. */
  lmtp?: LmtpOptions | false;
  /**
   * PROXY protocol (v1 and v2) in front of the listeners, e.g. behind HAProxy's `send-proxy-v2`: every connection
   * must start with a header, only from `trusted` peers; the client address it names is the one logs, hooks,
   * PeerInfo, the `Received:` header and the authenticator see. `listeners` narrows it (default: every listener).
   */
  proxyProtocol?: { readonly trusted: readonly string[]; readonly listeners?: readonly string[]; readonly headerTimeoutMs?: number };
  /**
   * Worker processes (`postern --workers`): a number, or `auto` for one per CPU core. Read by the CLI, which forks
   * them with node:cluster; a container always serves in one process. Default 1 (no cluster).
   */
  workers?: number | 'auto';
}
/** DI token for the {@link PosternConfig} the container was built from. */
export const PosternConfig = Symbol.for('postern.PosternConfig') as ServiceIdentifier<PosternConfig>;
