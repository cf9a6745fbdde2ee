import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { runSaslLogin, type ChallengeFrame, type SaslRefusal } from '../../protocol/sasl/sasl-engine.js';
import { findMechanism } from '../../protocol/sasl/sasl-mechanism.js';
import type { Pop3Connection } from '../pop3-connection.js';
import { multiline, Pop3Error, safeText } from '../pop3-replies.js';

/**
 * AUTH mechanism [initial-response] (RFC 5034 §4), framed over the one SASL engine: challenges go out as
 * `+ base64`, `=` is an empty initial response, `*` cancels (`-ERR`). Mechanisms come from the registry (PLAIN,
 * LOGIN, CRAM-MD5 when the Authenticator knows shared secrets, EXTERNAL with a validated client certificate).
 * `AUTH` alone lists the mechanisms (the pre-RFC 5034 form some clients still send).
 * @throws Pop3Error for an unknown mechanism, cancel, or a failed login (`-ERR [AUTH]`); ProtocolSyntaxError for
 *   bad base64, a malformed message or an over-long line (counted against the error budget).
 */
export async function auth(conn: Pop3Connection, args: string): Promise<void> {
  if (args === '') {
    conn.send(multiline('SASL mechanisms follow', conn.offeredMechanisms));
    return;
  }
  const [word, initial, ...extra] = args.split(' ');
  if (extra.length > 0) throw new ProtocolSyntaxError('usage: AUTH mechanism [initial-response]');
  const session = conn.saslSession;
  const mechanism = findMechanism(conn.saslMechanisms, session, word);
  if (!mechanism) throw new Pop3Error(undefined, `unsupported mechanism ${safeText(word.toUpperCase())}`);
  // RFC 5034 §4: a mechanism's additional data with success goes out as one more `+`, answered by an empty line.
  const frame: ChallengeFrame = (challenge) => conn.readContinuation(`+ ${challenge}\r\n`);
  await runSaslLogin(mechanism, session, initial, frame, (credentials, rejected, confirm) => conn.login(mechanism.name, credentials, rejected, confirm), refuse);
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
          throw new Pop3Error(undefined, 'authentication cancelled');
        case 'too-long':
          throw new ProtocolSyntaxError('response too long');
        case 'bare-lf':
          throw new ProtocolSyntaxError('bare LF not allowed, lines end with CRLF');
      }
  }
}
