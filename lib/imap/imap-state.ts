/**
 * IMAP connection states (RFC 3501 §3, RFC 9051 §3):
 * - `not-authenticated`: greeting sent; only CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE;
 * - `authenticated`: logged in, no mailbox selected;
 * - `selected`: a mailbox is selected (SELECT/EXAMINE succeeded);
 * - `logout`: LOGOUT was received (or the server said BYE); the connection is closing.
 *
 * The state changes in exactly one place each: `ImapConnection.login()`, `enterSelected()`, `unselect()`
 * and `logout()`.
 */
export type ImapState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

/** Every state in which a session still reads commands. */
export const ANY_STATE = ['not-authenticated', 'authenticated', 'selected'] as const;
/** States after login (RFC 3501 §6.3 commands). */
export const AUTHENTICATED = ['authenticated', 'selected'] as const;
/** Only with a selected mailbox (RFC 3501 §6.4 commands). */
export const SELECTED = ['selected'] as const;
/** Only before login (RFC 3501 §6.2 commands). */
export const NOT_AUTHENTICATED = ['not-authenticated'] as const;
