import type { GuardFailure } from '../protocol/command-table.js';
import { IMAP_COMMANDS } from './imap-commands.js';
import { taggedLine } from './imap-replies.js';
import type { ImapState } from './imap-state.js';

/**
 * The guard of the command table that a command still being assembled would fail (unknown verb, wrong state,
 * TLS required), checked before the `+` of its first synchronizing literal so that the client does not send
 * octets for a command that will be refused anyway (RFC 3501 §7.5). The argument and auth guards need the
 * whole command and are left to `dispatch()`.
 */
export function earlyGuardFailure(command: string, state: ImapState, isSecure: boolean, allowInsecureAuth: boolean): GuardFailure | undefined {
  const spec = Object.prototype.hasOwnProperty.call(IMAP_COMMANDS, command) ? IMAP_COMMANDS[command] : undefined;
  if (!spec) return 'unknown';
  if (!spec.states.includes(state)) return 'state';
  if (spec.needsTls && !isSecure && !allowInsecureAuth) return 'tls';
  return undefined;
}

/**
 * The tagged reply to a guard failure (RFC 3501 §7.1): BAD for client errors, `NO [PRIVACYREQUIRED]` for a
 * login before TLS (RFC 3501 §6.2.3 LOGINDISABLED, RFC 5530 §3), `NO [SERVERBUG]` for our own bug.
 * @param verb the command refused; @param detail the syntax error text, if any.
 */
export function guardReply(failure: GuardFailure, tag: string, state: ImapState, verb: string | undefined, detail?: string): string {
  switch (failure) {
    case 'unknown':
      return taggedLine(tag, 'BAD', undefined, 'Unknown command');
    case 'state':
      return taggedLine(tag, 'BAD', undefined, stateRefusal(state, verb));
    case 'syntax':
      return taggedLine(tag, 'BAD', undefined, detail ?? 'Invalid arguments');
    case 'tls':
      return taggedLine(tag, 'NO', 'PRIVACYREQUIRED', 'TLS required: use STARTTLS first');
    case 'auth':
      return taggedLine(tag, 'BAD', undefined, 'Not authenticated');
    case 'bug':
      return taggedLine(tag, 'NO', 'SERVERBUG', 'Internal server error');
  }
}

function stateRefusal(state: ImapState, verb: string | undefined): string {
  switch (state) {
    case 'not-authenticated':
      return 'Not authenticated';
    case 'authenticated':
      return verb === 'LOGIN' || verb === 'AUTHENTICATE' ? 'Already authenticated' : 'No mailbox selected';
    default:
      return 'Command not valid in this state';
  }
}
