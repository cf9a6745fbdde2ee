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

const STATE_HINTS: Readonly<Record<string, string>> = {
  MAIL: 'Send EHLO or HELO first',
  RCPT: 'Need MAIL before RCPT',
  DATA: 'Need RCPT before DATA',
  AUTH: 'AUTH needs EHLO first and is not allowed during a transaction',
  STARTTLS: 'Send EHLO first',
};

/** Hints for a command refused because a mail transaction is open (RFC 5321 §4.1.4: no nested MAIL). */
const TRANSACTION_HINTS: Readonly<Record<string, string>> = {
  MAIL: 'Nested MAIL command',
  STARTTLS: 'STARTTLS is not allowed during a mail transaction',
};

/** RFC 3030 §3: DATA and BDAT do not mix in one transaction. */
const BDAT_HINTS: Readonly<Record<string, string>> = {
  DATA: 'DATA not allowed after BDAT',
};

/** The text after "Bad sequence of commands" for `verb` refused in `state`. */
export function stateHint(verb: string, state: SmtpState, hello: string): string | undefined {
  const inTransaction = state === 'mail' || state === 'rcpt' || state === 'bdat';
  const hint = (state === 'bdat' ? BDAT_HINTS[verb] : undefined) ?? (inTransaction ? TRANSACTION_HINTS[verb] : undefined) ?? STATE_HINTS[verb];
  return hello === 'EHLO or HELO' ? hint : hint?.replace(/EHLO( or HELO)?/, hello);
}
