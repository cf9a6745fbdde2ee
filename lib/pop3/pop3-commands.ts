import type { CommandTable } from '../protocol/command-table.js';
import { apop, pass, user } from './commands/authorization.js';
import { auth } from './commands/sasl.js';
import { capa, quit, stls } from './commands/session.js';
import { dele, list, noop, retr, rset, stat, top, uidl } from './commands/transaction.js';
import type { Pop3Connection } from './pop3-connection.js';
import type { Pop3State } from './pop3-state.js';

const AUTHORIZATION = ['authorization'] as const;
const TRANSACTION = ['transaction'] as const;

/**
 * The whole POP3 surface: RFC 1939 (USER, PASS, APOP, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL),
 * RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH. Logins need TLS unless `allowInsecureAuth` (`-ERR [AUTH]`).
 */
export const POP3_COMMANDS: CommandTable<Pop3State, Pop3Connection> = {
  CAPA: { states: ['authorization', 'transaction'], args: 'none', run: capa },
  STLS: { states: AUTHORIZATION, args: 'none', run: stls },
  USER: { states: AUTHORIZATION, args: 'required', needsTls: true, run: user },
  PASS: { states: AUTHORIZATION, args: 'required', needsTls: true, run: pass },
  APOP: { states: AUTHORIZATION, args: 'required', needsTls: true, run: apop },
  AUTH: { states: AUTHORIZATION, args: 'optional', needsTls: true, run: auth },
  STAT: { states: TRANSACTION, args: 'none', run: stat },
  LIST: { states: TRANSACTION, args: 'optional', run: list },
  UIDL: { states: TRANSACTION, args: 'optional', run: uidl },
  RETR: { states: TRANSACTION, args: 'required', run: retr },
  TOP: { states: TRANSACTION, args: 'required', run: top },
  DELE: { states: TRANSACTION, args: 'required', run: dele },
  RSET: { states: TRANSACTION, args: 'none', run: rset },
  NOOP: { states: TRANSACTION, args: 'none', run: noop },
  QUIT: { states: ['authorization', 'transaction'], args: 'none', run: quit },
};
