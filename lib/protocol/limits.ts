/**
 * Engine-wide defaults. Each protocol may narrow them (its state file says why); all are overridable in config
 * and tiny in tests.
 */

/** RFC 5321 §4.5.3.1.4 allows 512 octets for an SMTP command line; IMAP lines carry more (RFC 7162 §4 recommends ≥ 8192). */
export const MAX_LINE_LENGTH = 8192;

/** Consecutive client errors (unknown verb, bad syntax, bad sequence) before the session is ended; Postfix's smtpd_hard_error_limit is 20, we stop earlier. */
export const MAX_BAD_COMMANDS = 10;

/** RFC 5321 §4.5.3.2.7: a server SHOULD wait at least 5 minutes for the next command. */
export const IDLE_TIMEOUT_MS = 5 * 60_000;

/**
 * Longest SASL response line read during an AUTH/AUTHENTICATE exchange, whatever the protocol's command-line limit:
 * RFC 4954 §4 (and RFC 5034 §4 for POP3) make servers handle the encoded size of their mechanisms' responses
 * independently of other line limits and name 12288 octets as enough for deployed mechanisms (Postfix's
 * `smtpd_sasl_response_limit` default). Longer responses get the protocol's "too long" refusal.
 */
export const SASL_RESPONSE_MAX_LENGTH = 12_288;

/** Bytes buffered from a peer before the socket is paused (bounded memory per session whatever the client sends). */
export const READ_HIGH_WATER_MARK = 64 * 1024;

/**
 * How many octets of a single over-long line are skipped before the session gives up on finding its CRLF.
 * A real client never sends a megabyte without a line end outside a literal or DATA.
 */
export const MAX_SKIPPED_LINE_OCTETS = 1024 * 1024;

/**
 * Longest time one body transfer (SMTP DATA or a BDAT chunk, an IMAP literal) may take from its first octet to its
 * end. RFC 5321 §4.5.3.2 times each TCP send (3 min) rather than the whole, which lets a client trickle forever;
 * 30 minutes carries a 35 MB message over a 20 KB/s link and still ends a slowloris.
 */
export const BODY_TIMEOUT_MS = 30 * 60_000;

/**
 * Replies queued for a pipelining client before they are written even though more commands are buffered. RFC 2920
 * §3.1 lets a server batch replies; past this much it writes and waits for the socket to drain, so a client that
 * pipelines without reading cannot grow our memory (16 KiB: a few hundred replies, still one write for real clients).
 */
export const REPLY_QUEUE_LIMIT = 16 * 1024;

/** A `throttle` fault writes one slice per tick: a tenth of a second keeps the rate smooth without a timer storm. */
export const THROTTLE_TICK_MS = 100;
