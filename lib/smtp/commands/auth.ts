import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { runSaslLogin, type ChallengeFrame, type SaslRefusal } from '../../protocol/sasl/sasl-engine.js';
import { findMechanism } from '../../protocol/sasl/sasl-mechanism.js';
import type { SmtpConnection } from '../smtp-connection.js';
import { SmtpReplyError } from '../smtp-replies.js';

/**
 * AUTH mechanism [initial-response] (RFC 4954). Guards already ran: after EHLO, outside a transaction, over TLS
 * (or `allowInsecureAuth`). The exchange is the one SASL engine's; this only frames it (`334 challenge`) and maps
 * how it ended to RFC 4954 §4/§6 replies. Mechanisms come from the registry (PLAIN, LOGIN, CRAM-MD5 when the
 * Authenticator knows shared secrets, EXTERNAL with a validated client certificate).
 * Replies: 235 2.7.0 ok (via {@link SmtpConnection.login}); 535 5.7.8 bad credentials; 454 4.7.0 temporary failure
 * or throttled; 504 5.5.4 unknown mechanism; 501 5.5.2 undecodable base64; 501 5.7.0 cancelled with `*`;
 * 500 5.5.6 over-long response line; 501 5.5.4 malformed message; 503 5.5.1 when already authenticated.
 */
export async function auth(conn: SmtpConnection, args: string): Promise<void> {
  if (conn.isAuthenticated) throw new SmtpReplyError(503, '5.5.1', 'Already authenticated');
  const [rawMechanism, initial, extra] = args.split(' ');
  if (extra !== undefined) throw new SmtpReplyError(501, '5.5.4', 'Syntax: AUTH mechanism [initial-response]', true);
  const session = conn.saslSession;
  const mechanism = findMechanism(conn.saslMechanisms, session, rawMechanism);
  if (!mechanism) throw new SmtpReplyError(504, '5.5.4', 'Unrecognized authentication type');
  // RFC 4954 §4: a mechanism's additional data with success goes out as one more 334, answered by an empty line.
  const frame: ChallengeFrame = (challenge) => conn.readContinuation(`334 ${challenge}\r\n`);
  await runSaslLogin(mechanism, session, initial, frame, (credentials, rejected, confirm) => conn.login(mechanism.name, credentials, rejected, confirm), refuse);
}

/** The RFC 4954 reply for an exchange that ended without credentials (nothing for a closed connection). */
function refuse(outcome: SaslRefusal): void {
  if (outcome.kind === 'aborted') {
    switch (outcome.reason) {
      case 'closed':
        return;
      case 'cancelled':
        // RFC 4954 §4: the server MUST reject a cancelled AUTH with 501; §6: 5.7.0 client initiated cancel.
        throw new SmtpReplyError(501, '5.7.0', 'Authentication cancelled');
      case 'too-long':
        throw new SmtpReplyError(500, '5.5.6', 'Authentication exchange line is too long', true);
      case 'bare-lf':
        throw new SmtpReplyError(500, '5.5.2', 'NUL, bare CR or bare LF not allowed in commands', true);
    }
  }
  switch (outcome.reason) {
    case 'base64':
      // RFC 4954 §4: a response that cannot be base64-decoded MUST get 501 with enhanced code 5.5.2.
      throw new SmtpReplyError(501, '5.5.2', 'Cannot decode response', true);
    case 'initial-response':
      throw new SmtpReplyError(501, '5.5.4', outcome.detail, true);
    case 'message':
      throw new ProtocolSyntaxError(outcome.detail);
  }
}
