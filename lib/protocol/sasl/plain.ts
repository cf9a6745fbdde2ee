import { ProtocolSyntaxError } from '../reply-error.js';
import { decodeBase64Strict } from './base64.js';
import { SaslMalformedError, type SaslMechanism, type SaslServer, type SaslStep } from './sasl-mechanism.js';

/** Credentials carried by one SASL PLAIN message. */
export interface PlainCredentials {
  /** Authorization identity (empty when the client acts as itself). */
  readonly authzid: string;
  /** Authentication identity (the login). */
  readonly authcid: string;
  readonly password: string;
}

/**
 * Parses a SASL PLAIN message (RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, UTF-8).
 * @throws SaslMalformedError for a message without exactly two NULs or with an empty authcid.
 */
export function parsePlain(bytes: Buffer): PlainCredentials {
  const parts = bytes.toString('utf8').split('\u0000');
  if (parts.length !== 3 || parts[1].length === 0) throw new SaslMalformedError('malformed PLAIN message');
  return { authzid: parts[0], authcid: parts[1], password: parts[2] };
}

/**
 * Decodes a base64 SASL PLAIN response (RFC 4616 §2).
 * `*` is the client's cancel (RFC 4954 §4) and is reported by the caller, not here.
 * @throws ProtocolSyntaxError for bad base64 or a message without exactly two NULs.
 */
export function decodePlain(response: string): PlainCredentials {
  try {
    return parsePlain(decodeBase64Strict(response));
  } catch (err) {
    if (err instanceof SaslMalformedError) throw new ProtocolSyntaxError(err.message);
    throw err;
  }
}

/**
 * PLAIN (RFC 4616), client-first: one message. Without an initial response the server sends an empty challenge.
 * The authorization identity goes to the Authenticator, which refuses one that differs from the login unless it
 * knows better.
 */
export const PLAIN: SaslMechanism = {
  name: 'PLAIN',
  acceptsInitialResponse: true,
  isAvailable: () => true,
  start(): SaslServer {
    return {
      async next(response): Promise<SaslStep> {
        if (response === undefined) return { challenge: Buffer.alloc(0) };
        const { authzid, authcid, password } = parsePlain(response);
        return { done: { username: authcid, authzid: authzid || undefined, password } };
      },
    };
  },
};
