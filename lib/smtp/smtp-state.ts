/**
 * Where an SMTP session is (RFC 5321 §4.1.4 ordering):
 * - `connected`: greeting sent, no EHLO/HELO yet (also right after STARTTLS, RFC 3207 §4.2);
 * - `ready`: EHLO/HELO done, no transaction;
 * - `mail`: MAIL accepted, no recipient yet;
 * - `rcpt`: at least one recipient accepted (DATA or BDAT may follow);
 * - `bdat`: a BDAT chunk without LAST was received (RFC 3030 §2): only BDAT, RSET, NOOP, QUIT follow.
 */
export type SmtpState = 'connected' | 'ready' | 'mail' | 'rcpt' | 'bdat';

/** Every state, for commands allowed anywhere. */
export const ANY_STATE: readonly SmtpState[] = ['connected', 'ready', 'mail', 'rcpt', 'bdat'];
