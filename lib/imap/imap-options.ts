import type { ServiceIdentifier } from 'inversify';
import { BODY_TIMEOUT_MS } from '../protocol/limits.js';
import type { ListenerSecurityOverride } from '../core/listener-securities.js';

/**
 * RFC 3501 §5.4: "If a server has an inactivity autologout timer, the duration of that timer MUST be at least
 * 30 minutes." IDLE clients re-issue the command within 29 minutes (RFC 2177 §3), so the same timer serves IDLE.
 * Tests use a few milliseconds.
 */
export const IMAP_IDLE_TIMEOUT_MS = 30 * 60_000;

/**
 * Longest command line accepted, without CRLF (literals do not count). RFC 7162 §4 asks clients to keep lines
 * under 8192 octets and servers to accept at least that; long UID sets from real clients go beyond it, so we
 * take 64 KiB, which still bounds memory per session.
 */
export const IMAP_MAX_LINE_LENGTH = 64 * 1024;

/**
 * Largest literal (an APPENDed message): 64 MiB (Dovecot's default is unlimited, most providers cap at 25–50 MB).
 * Advertised as APPENDLIMIT (RFC 7889).
 */
export const IMAP_MAX_LITERAL_SIZE = 64 * 1024 * 1024;

/** Largest non-synchronizing literal of LITERAL- (RFC 7888 §5): 4096 octets. */
export const IMAP_LITERAL_MINUS_MAX = 4096;

/** Nesting depth of lists and sections in one command: far above any real client (a FETCH section is 3 deep). */
export const IMAP_MAX_NESTING_DEPTH = 32;

/** Values in one command (list items included): a UID FETCH of a long sequence set is one value. */
export const IMAP_MAX_COMMAND_VALUES = 10_000;

/** Besides its literals, a command may carry this many lines' worth of octets (all its lines, all its small literals). */
export const IMAP_COMMAND_OVERHEAD_LINES = 16;

/**
 * Largest literal `command` may carry. Literals of commands other than APPEND are capped at the line length: a
 * LOGIN, SEARCH or mailbox name has no business carrying megabytes, and this keeps memory per non-APPEND command
 * bounded by the line limit.
 */
export function literalLimit(command: string, settings: Pick<ImapSettings, 'maxLiteralSize' | 'maxLineLength'>): number {
  return command === 'APPEND' ? settings.maxLiteralSize : settings.maxLineLength;
}

/** Largest whole command (lines plus literals): its literal limit plus {@link IMAP_COMMAND_OVERHEAD_LINES} lines. */
export function commandSizeLimit(command: string, settings: Pick<ImapSettings, 'maxLiteralSize' | 'maxLineLength'>): number {
  return literalLimit(command, settings) + IMAP_COMMAND_OVERHEAD_LINES * settings.maxLineLength;
}

/** Consecutive client errors (BAD replies) before `* BYE Too many errors` and close: the engine default. */
export const IMAP_MAX_BAD_COMMANDS = 10;

/** Pause before answering a failed LOGIN/AUTHENTICATE (slows password guessing; a timer, other sessions run on). */
export const IMAP_FAILED_LOGIN_DELAY_MS = 1_000;

/** Failed logins on one connection before `* BYE` and close. */
export const IMAP_MAX_LOGIN_FAILURES = 3;

/** Default STARTTLS port: GreenMail-style 3000 + 143, so no root is needed. */
export const IMAP_PORT = 3143;
/** Default implicit-TLS port (RFC 8314 §3.3 assigns 993; 3000 + 993 here). */
export const IMAPS_PORT = 3993;

/** One IMAP listener's settings. */
export interface ImapListenerOptions {
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
 * The `imap` section of the Postern configuration (`PosternConfig.imap`). Every field is optional; the
 * UPPER_SNAKE constants above are the defaults.
 */
export interface ImapOptions {
  /** Set false to start no IMAP listener at all. */
  enabled?: boolean;
  /** The plaintext listener offering STARTTLS (RFC 3501 §6.2.1), default port {@link IMAP_PORT}. */
  imap?: ImapListenerOptions;
  /** The implicit-TLS listener (RFC 8314), default port {@link IMAPS_PORT}. */
  imaps?: ImapListenerOptions;
  /** Autologout timer in ms, default {@link IMAP_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** Longest time one literal (an APPENDed message) may take to arrive, in ms (default `BODY_TIMEOUT_MS`, 30 min). */
  bodyTimeoutMs?: number;
  /** Longest command line, default {@link IMAP_MAX_LINE_LENGTH}. */
  maxLineLength?: number;
  /** Largest literal (APPEND size limit), default {@link IMAP_MAX_LITERAL_SIZE}. */
  maxLiteralSize?: number;
  /** Client errors in a row before closing, default {@link IMAP_MAX_BAD_COMMANDS}. */
  maxBadCommands?: number;
  /** Delay before answering a failed login in ms, default {@link IMAP_FAILED_LOGIN_DELAY_MS}. */
  failedLoginDelayMs?: number;
  /** Failed logins before the connection is closed, default {@link IMAP_MAX_LOGIN_FAILURES}. */
  maxLoginFailures?: number;
  /**
   * Non-synchronizing literals (RFC 7888). `true` (default): LITERAL+ is advertised, `{N+}` literals are read up to
   * the same limits as synchronizing ones. `false`: LITERAL- is advertised instead and a `{N+}` literal over
   * {@link IMAP_LITERAL_MINUS_MAX} octets is refused with `BAD [TOOBIG]` (RFC 7888 §5). Either way IMAP4rev2
   * (RFC 9051 §4.3: non-synchronizing literals of up to 4096 octets) holds.
   */
  literalPlus?: boolean;
  /** Host name in CRAM-MD5 challenges (RFC 2195 `<…@host>`), default `localhost` (as POP3's `hostname`). */
  hostname?: string;
}

/** {@link ImapOptions} with every default applied, plus the global switches the IMAP server honours. */
export interface ImapSettings {
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly maxLineLength: number;
  readonly maxLiteralSize: number;
  readonly maxBadCommands: number;
  readonly failedLoginDelayMs: number;
  readonly maxLoginFailures: number;
  /** LITERAL+ (true) or LITERAL- (false), see {@link ImapOptions.literalPlus}. */
  readonly literalPlus: boolean;
  readonly hostname: string;
  /** Global `allowInsecureAuth`: LOGIN and AUTHENTICATE permitted before TLS. */
  readonly allowInsecureAuth: boolean;
}
/** DI token of the resolved {@link ImapSettings} (rebind it to change IMAP limits in a container). */
export const ImapSettings = Symbol.for('postern.ImapSettings') as ServiceIdentifier<ImapSettings>;

/** Applies the defaults to an `imap` config section and the global switches. */
export function resolveImapSettings(options: ImapOptions = {}, global: { allowInsecureAuth?: boolean } = {}): ImapSettings {
  return {
    idleTimeoutMs: options.idleTimeoutMs ?? IMAP_IDLE_TIMEOUT_MS,
    bodyTimeoutMs: options.bodyTimeoutMs ?? BODY_TIMEOUT_MS,
    maxLineLength: options.maxLineLength ?? IMAP_MAX_LINE_LENGTH,
    maxLiteralSize: options.maxLiteralSize ?? IMAP_MAX_LITERAL_SIZE,
    maxBadCommands: options.maxBadCommands ?? IMAP_MAX_BAD_COMMANDS,
    failedLoginDelayMs: options.failedLoginDelayMs ?? IMAP_FAILED_LOGIN_DELAY_MS,
    maxLoginFailures: options.maxLoginFailures ?? IMAP_MAX_LOGIN_FAILURES,
    literalPlus: options.literalPlus ?? true,
    hostname: options.hostname ?? 'localhost',
    allowInsecureAuth: global.allowInsecureAuth === true,
  };
}
