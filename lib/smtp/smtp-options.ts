import os from 'node:os';
import type { ServiceIdentifier } from 'inversify';
import { BODY_TIMEOUT_MS } from '../protocol/limits.js';
import type { ListenerSecurityOverride } from '../core/listener-securities.js';

/** GreenMail's convention (standard port + 3000): STARTTLS submission/relay port (RFC 5321 port 25 → 3025). */
export const SMTP_PORT = 3025;
/** Implicit-TLS submission port (RFC 8314 §3.3 port 465 → 3465). */
export const SMTPS_PORT = 3465;

/**
 * Longest command line accepted, without CRLF. RFC 5321 §4.5.3.1.4 sets 512 octets (CRLF included) for a
 * command line and lets extensions raise it: RFC 1870 §3 adds 26 octets for `SIZE=`, RFC 4954 §5 adds 500 for
 * `AUTH=`, and `BODY=8BITMIME`/`SMTPUTF8` add a few more; SASL responses (RFC 4954 §4) come on their own line.
 * 1024 covers a MAIL command carrying every parameter we support with room to spare.
 */
export const SMTP_MAX_LINE_LENGTH = 1024;

/** Default SIZE (RFC 1870): 35 MB, a common provider limit, big enough for the 25 MB test message. */
export const SMTP_MAX_MESSAGE_SIZE = 35 * 1024 * 1024;

/** RFC 5321 §4.5.3.1.8: a server MUST accept at least 100 recipients per transaction; more get 452 4.5.3. */
export const SMTP_MAX_RECIPIENTS = 100;

/** Consecutive client errors before `421 4.7.0` and disconnect (issue 3: ten errors in a row). */
export const SMTP_MAX_BAD_COMMANDS = 10;

/** RFC 5321 §4.5.3.2.7: the server SHOULD wait at least 5 minutes for the next command (also covers DATA stalls, §4.5.3.2.6). */
export const SMTP_IDLE_TIMEOUT_MS = 5 * 60_000;

/** Pause before answering a failed AUTH (slows password guessing; a timer, other sessions run on). */
export const SMTP_FAILED_LOGIN_DELAY_MS = 1_000;
/**
 * Failed AUTH attempts on one connection before `421 4.7.0` and close. Python's smtplib answers one wrong password by
 * trying every advertised mechanism in turn (three here), so the limit leaves room for one such login and a retry.
 */
export const SMTP_MAX_LOGIN_FAILURES = 6;

/**
 * What to do with a bare LF (an LF not preceded by CR) inside DATA. RFC 5321 §2.3.8 forbids it and SMTP
 * smuggling abuses the disagreement between servers about it.
 * - `reject` (default, like Postfix's `smtpd_forbid_bare_newline`): the body is read to its terminator, nothing
 *   is stored and the client gets `550 5.6.2`; the session stays usable.
 * - `normalize`: every bare LF becomes CRLF before the backend sees the body (lenient test doubles).
 * Only CRLF.CRLF ever ends the body, whatever the choice.
 */
export type BareLfPolicy = 'reject' | 'normalize';

/** One SMTP listener's settings. */
export interface SmtpListenerOptions {
  /** Port; 0 = any free port (tests). */
  port?: number;
  /** Bind address; defaults to the global `host`. */
  host?: string;
  /** Set false to skip this listener. */
  enabled?: boolean;
  /**
   * This listener's own TLS settings (certificate, client-certificate policy and callback, protocols…), laid over the
   * shared `tls` (absent fields are inherited), or a ready `ServerSecurity`. Used by implicit TLS and STARTTLS alike.
   */
  security?: ListenerSecurityOverride;
}

/**
 * The `smtp` section of the configuration (`PosternConfig.smtp`). Every field is optional; see the constants
 * above for the defaults and their reasons. Global fields `allowInsecureAuth`, `authDisabled` and `tls` also apply.
 */
export interface SmtpOptions {
  /** Set false to bind no SMTP listener at all. */
  enabled?: boolean;
  /** Name in the greeting, EHLO reply and Received header; default `os.hostname()`. */
  hostname?: string;
  /** The STARTTLS listener (default port {@link SMTP_PORT}). */
  smtp?: SmtpListenerOptions;
  /** The implicit-TLS listener (default port {@link SMTPS_PORT}). */
  smtps?: SmtpListenerOptions;
  /** SIZE limit in octets (RFC 1870); 0 = unlimited (advertised as `SIZE 0`). */
  maxMessageSize?: number;
  /** Recipients per transaction. */
  maxRecipients?: number;
  /** Longest command line without CRLF. */
  maxLineLength?: number;
  /** Consecutive client errors before the session ends. */
  maxBadCommands?: number;
  /** Idle timeout in ms. */
  idleTimeoutMs?: number;
  /** Delay before answering a failed AUTH, in ms (default {@link SMTP_FAILED_LOGIN_DELAY_MS}). */
  failedLoginDelayMs?: number;
  /** Failed AUTH attempts before `421 4.7.0` and close (default {@link SMTP_MAX_LOGIN_FAILURES}). */
  maxLoginFailures?: number;
  /** Longest time one DATA body or BDAT chunk may take to arrive, in ms (default `BODY_TIMEOUT_MS`, 30 min). */
  bodyTimeoutMs?: number;
  /** Refuse MAIL with `530 5.7.0` until the session is encrypted. */
  requireTls?: boolean;
  /** Refuse MAIL with `530 5.7.0` until the client authenticated. */
  requireAuth?: boolean;
  /**
   * Recipient domains accepted from unauthenticated clients (case-insensitive, exact match). Others are refused
   * as relay attempts with `550 5.7.1`. Empty or absent: every domain is accepted (test-double default).
   */
  acceptedDomains?: readonly string[];
  /** Bare LF in DATA; default `reject`. */
  bareLf?: BareLfPolicy;
  /**
   * The user (login or address) who receives mail for `postmaster` when no user owns that address. RFC 5321 §4.5.1:
   * a server MUST accept `<Postmaster>` (and `postmaster@` its domains). Default: the first user in name order.
   */
  postmaster?: string;
  /**
   * Offer DSN (RFC 3461): EHLO lists `DSN`, MAIL takes `RET` and `ENVID`, RCPT takes `NOTIFY` and `ORCPT`, and the
   * requests reach hooks and backend (`MailParams`, `RcptParams`) and are stored with the message
   * (`DeliveryEnvelope.dsn`). Off by default: a server that offers DSN must send the notices asked for (a "delivered"
   * notice for `NOTIFY=SUCCESS`, RFC 3461 §5.2.2), and Postern sends no mail out: the default backend reports to local
   * senders (their INBOX) through the `DsnNoticeSender`, which you rebind to reach others (`dsn-notices.ts`).
   * Without it the four parameters get `555`.
   */
  dsn?: boolean;
  /**
   * Offer REQUIRETLS (RFC 8689) on TLS sessions (default true): EHLO lists it after STARTTLS and on the implicit-TLS
   * port, MAIL takes `REQUIRETLS`, hooks see `MailParams.requireTls` and the store keeps `envelope.requireTls`. Postern
   * delivers into its own store, so the requirement is met; a relayed DSN report of such a message keeps it. `false`
   * stops offering it (the parameter then gets `555`).
   */
  requireTlsExtension?: boolean;
}

/** Fully resolved SMTP settings: {@link SmtpOptions} with defaults plus the global switches that concern SMTP. */
export interface SmtpSettings {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  readonly maxLineLength: number;
  readonly maxBadCommands: number;
  readonly idleTimeoutMs: number;
  readonly failedLoginDelayMs: number;
  readonly maxLoginFailures: number;
  readonly bodyTimeoutMs: number;
  readonly requireTls: boolean;
  readonly requireAuth: boolean;
  readonly acceptedDomains: readonly string[];
  readonly bareLf: BareLfPolicy;
  /** See {@link SmtpOptions.postmaster}; undefined means the first user in name order. */
  readonly postmaster?: string;
  /** See {@link SmtpOptions.dsn}. */
  readonly dsn: boolean;
  /** See {@link SmtpOptions.requireTlsExtension}. */
  readonly requireTlsExtension: boolean;
  /** Global `allowInsecureAuth`: AUTH offered and accepted before TLS. */
  readonly allowInsecureAuth: boolean;
  /** Global `authDisabled`: any login succeeds and unknown local recipients get a mailbox. */
  readonly authDisabled: boolean;
}
/** DI token of the resolved {@link SmtpSettings}. */
export const SmtpSettings = Symbol.for('postern.SmtpSettings') as ServiceIdentifier<SmtpSettings>;

/**
 * Applies the defaults. `globals` are the process-wide switches of `PosternConfig`.
 * @throws RangeError for a negative or non-integer limit.
 */
export function resolveSmtpSettings(options: SmtpOptions = {}, globals: { allowInsecureAuth?: boolean; authDisabled?: boolean } = {}): SmtpSettings {
  const count = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`smtp.${name} must be a non-negative integer`);
    return v;
  };
  return {
    hostname: options.hostname ?? os.hostname(),
    maxMessageSize: count('maxMessageSize', options.maxMessageSize, SMTP_MAX_MESSAGE_SIZE),
    maxRecipients: count('maxRecipients', options.maxRecipients, SMTP_MAX_RECIPIENTS),
    maxLineLength: count('maxLineLength', options.maxLineLength, SMTP_MAX_LINE_LENGTH),
    maxBadCommands: count('maxBadCommands', options.maxBadCommands, SMTP_MAX_BAD_COMMANDS),
    idleTimeoutMs: count('idleTimeoutMs', options.idleTimeoutMs, SMTP_IDLE_TIMEOUT_MS),
    failedLoginDelayMs: count('failedLoginDelayMs', options.failedLoginDelayMs, SMTP_FAILED_LOGIN_DELAY_MS),
    maxLoginFailures: count('maxLoginFailures', options.maxLoginFailures, SMTP_MAX_LOGIN_FAILURES),
    bodyTimeoutMs: count('bodyTimeoutMs', options.bodyTimeoutMs, BODY_TIMEOUT_MS),
    requireTls: options.requireTls === true,
    requireAuth: options.requireAuth === true,
    acceptedDomains: (options.acceptedDomains ?? []).map((d) => d.toLowerCase()),
    bareLf: options.bareLf ?? 'reject',
    postmaster: options.postmaster,
    dsn: options.dsn === true,
    requireTlsExtension: options.requireTlsExtension !== false,
    allowInsecureAuth: globals.allowInsecureAuth === true,
    authDisabled: globals.authDisabled === true,
  };
}
