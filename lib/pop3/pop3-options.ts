import type { ServiceIdentifier } from 'inversify';
import type { ListenerSecurityOverride } from '../core/listener-securities.js';

/**
 * RFC 1939 §3: "A POP3 server MAY have an inactivity autologout timer. Such a timer MUST be of at least 10
 * minutes' duration." Tests use a few milliseconds.
 */
export const POP3_IDLE_TIMEOUT_MS = 10 * 60_000;

/**
 * Pause before answering a failed login (RFC 1939 §13 and RFC 2449 §8.1.2 discuss throttling password guessing).
 * Waited on a timer, so the event loop keeps serving other sessions.
 */
export const POP3_FAILED_LOGIN_DELAY_MS = 1_000;

/** Failed logins on one connection before it is closed (each failure is already delayed). */
export const POP3_MAX_LOGIN_FAILURES = 3;

/**
 * Longest command line accepted, without CRLF. RFC 2449 §4 limits commands to 255 octets including CRLF,
 * so 253 would do for well-behaved clients; SASL responses sent after `+ ` (RFC 5034 §4) are only bounded by
 * the mechanism, and a PLAIN message with a long authzid and password easily passes 255. 1024 covers them and
 * still bounds memory; longer lines get `-ERR` and count against the error budget.
 */
export const POP3_MAX_LINE_LENGTH = 1024;

/** Consecutive client errors before `-ERR` and close (the engine's default budget). */
export const POP3_MAX_BAD_COMMANDS = 10;

/** Default plaintext (STLS) port: GreenMail-style 3000 + 110, so no root is needed. */
export const POP3_PORT = 3110;
/** Default implicit-TLS port (RFC 8314 §3.3 assigns 995; 3000 + 995 here). */
export const POP3S_PORT = 3995;

/** One POP3 listener's settings. */
export interface Pop3ListenerOptions {
  /** Port; 0 picks a free port (tests). */
  port?: number;
  /** Bind address; defaults to the global `host`. */
  host?: string;
  /** Set false to not start this listener. */
  enabled?: boolean;
  /**
   * This listener's own TLS settings (certificate, client-certificate policy and callback, protocols…), laid over the
   * shared `tls` (absent fields are inherited), or a ready `ServerSecurity`. Used by implicit TLS and STARTTLS alike.
   */
  security?: ListenerSecurityOverride;
}

/**
 * The `pop3` section of the Postern configuration (`PosternConfig.pop3`). Every field is optional; the
 * UPPER_SNAKE constants above are the defaults.
 */
export interface Pop3Options {
  /** Set false to start no POP3 listener at all. */
  enabled?: boolean;
  /** The plaintext listener offering STLS (RFC 2595), default port {@link POP3_PORT}. */
  pop3?: Pop3ListenerOptions;
  /** The implicit-TLS listener (RFC 8314), default port {@link POP3S_PORT}. */
  pop3s?: Pop3ListenerOptions;
  /** Autologout timer in ms, default {@link POP3_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** Delay before answering a failed login in ms, default {@link POP3_FAILED_LOGIN_DELAY_MS}. */
  failedLoginDelayMs?: number;
  /** Failed logins before the connection is closed, default {@link POP3_MAX_LOGIN_FAILURES}. */
  maxLoginFailures?: number;
  /** Longest command line without CRLF, default {@link POP3_MAX_LINE_LENGTH}. */
  maxLineLength?: number;
  /** Client errors in a row before closing, default {@link POP3_MAX_BAD_COMMANDS}. */
  maxBadCommands?: number;
  /** Host name in the APOP timestamp banner (RFC 1939 §7), default `localhost`. */
  hostname?: string;
}
/** {@link Pop3Options} with every default applied, plus the global switches the POP3 server honours. */
export interface Pop3Settings {
  readonly idleTimeoutMs: number;
  readonly failedLoginDelayMs: number;
  readonly maxLoginFailures: number;
  readonly maxLineLength: number;
  readonly maxBadCommands: number;
  readonly hostname: string;
  /** Global `allowInsecureAuth`: USER/PASS, APOP and AUTH permitted before TLS. */
  readonly allowInsecureAuth: boolean;
}
/** DI token of the resolved {@link Pop3Settings} (rebind it to change POP3 limits in a container). */
export const Pop3Settings = Symbol.for('postern.Pop3Settings') as ServiceIdentifier<Pop3Settings>;

/** Applies the defaults to a `pop3` config section and the global switches. */
export function resolvePop3Settings(options: Pop3Options = {}, global: { allowInsecureAuth?: boolean } = {}): Pop3Settings {
  return {
    idleTimeoutMs: options.idleTimeoutMs ?? POP3_IDLE_TIMEOUT_MS,
    failedLoginDelayMs: options.failedLoginDelayMs ?? POP3_FAILED_LOGIN_DELAY_MS,
    maxLoginFailures: options.maxLoginFailures ?? POP3_MAX_LOGIN_FAILURES,
    maxLineLength: options.maxLineLength ?? POP3_MAX_LINE_LENGTH,
    maxBadCommands: options.maxBadCommands ?? POP3_MAX_BAD_COMMANDS,
    hostname: options.hostname ?? 'localhost',
    allowInsecureAuth: global.allowInsecureAuth === true,
  };
}
