import type { CommandTable } from '../protocol/command-table.js';
import { auth } from './commands/auth.js';
import { bdat, receive } from './commands/data.js';
import { mailFrom, rcptTo, reset } from './commands/envelope.js';
import { ehlo, helo } from './commands/hello.js';
import { expn, help, noop, quit, vrfy } from './commands/misc.js';
import { startTls } from './commands/starttls.js';
import type { SmtpConnection } from './smtp-connection.js';
import { ANY_STATE, type SmtpState } from './smtp-state.js';

const IDLE: readonly SmtpState[] = ['connected', 'ready', 'mail', 'rcpt'];

/**
 * The whole SMTP surface: read this object to know the protocol. `dispatch()` checks state (503), argument shape
 * (501) and the TLS guard (538 for AUTH in plaintext) before a handler runs; unknown verbs get 500.
 */
export const SMTP_COMMANDS: CommandTable<SmtpState, SmtpConnection> = {
  EHLO: { states: IDLE, args: 'required', run: ehlo },
  HELO: { states: IDLE, args: 'required', run: helo },
  STARTTLS: { states: ['ready'], args: 'none', run: startTls },
  AUTH: { states: ['ready'], args: 'required', needsTls: true, run: auth },
  MAIL: { states: ['ready'], args: 'required', run: mailFrom },
  RCPT: { states: ['mail', 'rcpt'], args: 'required', run: rcptTo },
  DATA: { states: ['rcpt'], args: 'none', run: receive },
  // Any state: BDAT must consume its octets even when out of sequence (RFC 3030 §2); the handler answers 503 then.
  BDAT: { states: ANY_STATE, args: 'required', run: bdat },
  RSET: { states: ANY_STATE, args: 'none', run: reset },
  NOOP: { states: ANY_STATE, args: 'optional', run: noop },
  QUIT: { states: ANY_STATE, args: 'none', run: quit },
  VRFY: { states: IDLE, args: 'required', run: vrfy },
  EXPN: { states: IDLE, args: 'required', run: expn },
  HELP: { states: ANY_STATE, args: 'optional', run: help },
};
