import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { runSaslLogin, type ChallengeFrame, type SaslRefusal } from '../../protocol/sasl/sasl-engine.js';
import { findMechanism } from '../../protocol/sasl/sasl-mechanism.js';
import type { ImapCommand } from '../imap-parser.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { expectCount, stringArg } from './args.js';

/** LOGIN user password (RFC 3501 §6.2.3); guarded by `needsTls` (LOGINDISABLED before TLS). */
export async function login(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  expectCount(args, 2);
  const username = stringArg(args[0], 'User name');
  const password = stringArg(args[1], 'Password');
  await s.login('IMAP-LOGIN', { username, password });
}

/**
 * AUTHENTICATE mechanism [initial-response] (RFC 3501 §6.2.2, RFC 9051 §6.2.2, RFC 4959 SASL-IR), framed over the
 * one SASL engine: challenges go out as `+ base64`, `=` is an empty initial response, `*` cancels (`BAD`).
 * Mechanisms come from the registry (PLAIN, LOGIN, CRAM-MD5 when the Authenticator knows shared secrets, EXTERNAL
 * with a validated client certificate).
 * @throws ImapError NO [CANNOT] for a mechanism not offered, BAD for cancel, an over-long or bare-LF response;
 *   ProtocolSyntaxError for bad base64 or a malformed message.
 */
export async function authenticate(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  expectCount(args, 1, 2);
  const session = s.saslSession;
  const mechanism = findMechanism(s.saslMechanisms, session, stringArg(args[0], 'Mechanism'));
  if (!mechanism) throw new ImapError('NO', 'CANNOT', 'Unsupported authentication mechanism');
  const initial = args.length === 2 ? stringArg(args[1], 'Initial response') : undefined;
  // RFC 3501 §6.2.2: a mechanism's additional data with success goes out as one more `+`, answered by an empty line.
  const frame: ChallengeFrame = (challenge) => s.readContinuation(`+ ${challenge}\r\n`);
  await runSaslLogin(mechanism, session, initial, frame, (credentials, rejected, confirm) => s.login(mechanism.name, credentials, rejected, confirm), refuse);
}

/** The reply for an exchange that ended without credentials (nothing for a closed connection). */
function refuse(outcome: SaslRefusal): void {
  switch (outcome.kind) {
    case 'malformed':
      throw new ProtocolSyntaxError(outcome.detail);
    case 'aborted':
      switch (outcome.reason) {
        case 'closed':
          return;
        case 'cancelled':
          throw new ImapError('BAD', undefined, 'Authentication cancelled');
        case 'too-long':
          throw new ImapError('BAD', undefined, 'Response too long');
        case 'bare-lf':
          throw new ImapError('BAD', undefined, 'Bare LF not allowed, lines end with CRLF');
      }
  }
}
