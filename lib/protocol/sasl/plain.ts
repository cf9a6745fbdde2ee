import { ProtocolSyntaxError } from '../reply-error.js';
import { decodeBase64Strict } from './base64.js';

/** Credentials carried by one SASL PLAIN message. */
export interface PlainCredentials {
  /** Authorization identity (empty when the client acts as itself). */
  readonly authzid: string;
  /** Authentication identity (the login). */
  readonly authcid: string;
  readonly password: string;
}

/**
 * Decodes a base64 SASL PLAIN response (RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, UTF-8).
 * `*` is the client's cancel (RFC 4954 §4) and is reported by the caller, not here.
 * @throws ProtocolSyntaxError for bad base64 or a message without exactly two NULs.
 */
export function decodePlain(response: string): PlainCredentials {
  const bytes = decodeBase64Strict(response);
  const parts = bytes.toString('utf8').split('\u0000');
  if (parts.length !== 3 || parts[1].length === 0) throw new ProtocolSyntaxError('malformed PLAIN message');
  return { authzid: parts[0], authcid: parts[1], password: parts[2] };
}
