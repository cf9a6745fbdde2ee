import type { CommandTable } from '../protocol/command-table.js';
import { authenticate, login } from './commands/auth.js';
import { copy } from './commands/copy.js';
import { fetch } from './commands/fetch.js';
import { list, lsub } from './commands/list.js';
import { append } from './commands/append.js';
import { create, deleteMailbox, rename, select, subscribe } from './commands/mailboxes.js';
import { status } from './commands/status.js';
import { getQuota, getQuotaRoot } from './commands/quota.js';
import { cancelUpdate, search } from './commands/search.js';
import { sort, thread } from './commands/sort.js';
import { check, close, expunge, unselect } from './commands/selected.js';
import { capability, compress, enable, id, idle, logout, namespace, noop, starttls } from './commands/session.js';
import { store } from './commands/store.js';
import { notify } from './commands/notify.js';
import type { ImapConnection } from './imap-connection.js';
import type { ImapCommand } from './imap-parser.js';
import { ANY_STATE, AUTHENTICATED, NOT_AUTHENTICATED, SELECTED, type ImapState } from './imap-state.js';

/**
 * The whole IMAP surface (RFC 3501 §6 plus extensions): read this object to know the protocol. Keys are the
 * command names as the assembler reports them (`UID FETCH` is one key). Handlers get the parsed command
 * (tag, name, arguments) as their argument; dispatch's guards see a placeholder argument string that is empty
 * only when the command has no arguments, so `args: 'none' | 'required'` keep their meaning.
 */
export const IMAP_COMMANDS: CommandTable<ImapState, ImapConnection, ImapCommand> = {
  // RFC 3501 §6.1: any state
  CAPABILITY: { states: ANY_STATE, args: 'none', run: capability },
  NOOP: { states: ANY_STATE, args: 'none', run: noop },
  LOGOUT: { states: ANY_STATE, args: 'none', run: logout },
  ID: { states: ANY_STATE, args: 'required', run: id }, // RFC 2971
  // RFC 3501 §6.2: not authenticated
  STARTTLS: { states: NOT_AUTHENTICATED, args: 'none', run: starttls },
  LOGIN: { states: NOT_AUTHENTICATED, args: 'required', needsTls: true, run: login },
  AUTHENTICATE: { states: NOT_AUTHENTICATED, args: 'required', needsTls: true, run: authenticate },
  // RFC 3501 §6.3: authenticated (and selected)
  ENABLE: { states: ['authenticated'], args: 'required', run: enable }, // RFC 5161 §3.1: authenticated state only
  NAMESPACE: { states: AUTHENTICATED, args: 'none', run: namespace }, // RFC 2342
  SELECT: { states: AUTHENTICATED, args: 'required', run: select },
  EXAMINE: { states: AUTHENTICATED, args: 'required', run: select },
  CREATE: { states: AUTHENTICATED, args: 'required', run: create },
  DELETE: { states: AUTHENTICATED, args: 'required', run: deleteMailbox },
  RENAME: { states: AUTHENTICATED, args: 'required', run: rename },
  SUBSCRIBE: { states: AUTHENTICATED, args: 'required', run: subscribe },
  UNSUBSCRIBE: { states: AUTHENTICATED, args: 'required', run: subscribe },
  LIST: { states: AUTHENTICATED, args: 'required', run: list },
  LSUB: { states: AUTHENTICATED, args: 'required', run: lsub },
  STATUS: { states: AUTHENTICATED, args: 'required', run: status },
  APPEND: { states: AUTHENTICATED, args: 'required', run: append },
  IDLE: { states: AUTHENTICATED, args: 'none', run: idle }, // RFC 2177
  COMPRESS: { states: AUTHENTICATED, args: 'required', run: compress }, // RFC 4978
  NOTIFY: { states: AUTHENTICATED, args: 'required', run: notify }, // RFC 5465
  GETQUOTA: { states: AUTHENTICATED, args: 'required', run: getQuota }, // RFC 9208 §4.2
  GETQUOTAROOT: { states: AUTHENTICATED, args: 'required', run: getQuotaRoot }, // RFC 9208 §4.3
  // RFC 3501 §6.4: selected
  CHECK: { states: SELECTED, args: 'none', run: check },
  CLOSE: { states: SELECTED, args: 'none', run: close },
  UNSELECT: { states: SELECTED, args: 'none', run: unselect }, // RFC 3691
  EXPUNGE: { states: SELECTED, args: 'none', run: expunge },
  'UID EXPUNGE': { states: SELECTED, args: 'required', run: expunge }, // RFC 4315 §2.1
  SEARCH: { states: SELECTED, args: 'required', run: search },
  'UID SEARCH': { states: SELECTED, args: 'required', run: search },
  CANCELUPDATE: { states: SELECTED, args: 'required', run: cancelUpdate }, // RFC 5267 §4.3
  SORT: { states: SELECTED, args: 'required', run: sort }, // RFC 5256 §3
  'UID SORT': { states: SELECTED, args: 'required', run: sort },
  THREAD: { states: SELECTED, args: 'required', run: thread }, // RFC 5256 §4
  'UID THREAD': { states: SELECTED, args: 'required', run: thread },
  FETCH: { states: SELECTED, args: 'required', run: fetch },
  'UID FETCH': { states: SELECTED, args: 'required', run: fetch },
  STORE: { states: SELECTED, args: 'required', run: store },
  'UID STORE': { states: SELECTED, args: 'required', run: store },
  COPY: { states: SELECTED, args: 'required', run: copy },
  'UID COPY': { states: SELECTED, args: 'required', run: copy },
  MOVE: { states: SELECTED, args: 'required', run: copy }, // RFC 6851
  'UID MOVE': { states: SELECTED, args: 'required', run: copy },
};
