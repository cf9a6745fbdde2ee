import type { CommandTable } from '../protocol/command-table.js';
import { ehlo } from '../smtp/commands/hello.js';
import { SMTP_COMMANDS } from '../smtp/smtp-commands.js';
import type { SmtpConnection } from '../smtp/smtp-connection.js';
import { SmtpReplyError } from '../smtp/smtp-replies.js';
import { ANY_STATE, type SmtpState } from '../smtp/smtp-state.js';

const IDLE: readonly SmtpState[] = ['connected', 'ready', 'mail', 'rcpt'];

/**
 * HELO and EHLO on an LMTP server: RFC 2033 §4.1 replaces them with LHLO (and §4 forbids serving SMTP and LMTP on
 * one port), so they are refused like an unknown command, with a hint, and counted as client errors.
 */
async function notLmtp(): Promise<void> {
  throw new SmtpReplyError(500, '5.5.1', 'This is an LMTP server: use LHLO (RFC 2033 section 4.1)', true);
}

/**
 * LMTP's surface (RFC 2033): SMTP's table with LHLO in place of EHLO/HELO. LHLO is EHLO (same keywords: PIPELINING,
 * ENHANCEDSTATUSCODES and CHUNKING as RFC 2033 §5 and RFC 3030 ask, STARTTLS, SIZE, 8BITMIME…). Every other command
 * runs SMTP's handler; what differs (one reply per recipient after the body) lives in `LmtpConnection`.
 */
export const LMTP_COMMANDS: CommandTable<SmtpState, SmtpConnection> = {
  ...Object.fromEntries(Object.entries(SMTP_COMMANDS).filter(([verb]) => verb !== 'EHLO' && verb !== 'HELO')),
  LHLO: { states: IDLE, args: 'required', run: ehlo },
  EHLO: { states: ANY_STATE, args: 'optional', run: notLmtp },
  HELO: { states: ANY_STATE, args: 'optional', run: notLmtp },
};
