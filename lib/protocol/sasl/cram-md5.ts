import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolSyntaxError } from '../reply-error.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';
import { SaslMalformedError, type SaslMechanism, type SaslServer, type SaslStep } from './sasl-mechanism.js';

/** Builds a CRAM-MD5 challenge (RFC 2195 §2: a unique msg-id-like string). Returns the text and its base64 form. */
export function cramMd5Challenge(hostname: string): { text: string; base64: string } {
  const text = `<${randomBytes(8).toString('hex')}.${Date.now()}@${hostname}>`;
  return { text, base64: encodeBase64(text) };
}

const CRAM_RESPONSE = /^(.+) ([0-9a-f]{32})$/;

/**
 * Decodes the client's CRAM-MD5 answer (`user SP hex-digest`).
 * @throws ProtocolSyntaxError for bad base64 or shape.
 */
export function decodeCramMd5(response: string): { username: string; digest: string } {
  const text = decodeBase64Strict(response).toString('utf8');
  const m = CRAM_RESPONSE.exec(text);
  if (!m) throw new ProtocolSyntaxError('malformed CRAM-MD5 response');
  return { username: m[1], digest: m[2] };
}

/** Checks a CRAM-MD5 digest against the shared secret in constant time. */
export function verifyCramMd5(challenge: string, secret: string, digest: string): boolean {
  const expected = Buffer.from(createHmac('md5', secret).update(challenge).digest('hex'));
  const got = Buffer.from(digest);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

/**
 * CRAM-MD5 (RFC 2195), server-first, no initial response: offered only when the Authenticator knows plaintext
 * secrets (`supportsSharedSecrets`); the digest is checked by the Authenticator through `verifyWithSecret`.
 */
export const CRAM_MD5: SaslMechanism = {
  name: 'CRAM-MD5',
  acceptsInitialResponse: false,
  isAvailable: (session) => session.supportsSharedSecrets,
  start(session): SaslServer {
    const challenge = cramMd5Challenge(session.hostname).text;
    let sent = false;
    return {
      async next(response): Promise<SaslStep> {
        if (!sent) {
          sent = true;
          return { challenge: Buffer.from(challenge) };
        }
        const m = CRAM_RESPONSE.exec((response ?? Buffer.alloc(0)).toString('utf8'));
        if (!m) throw new SaslMalformedError('malformed CRAM-MD5 response');
        const digest = m[2];
        return { done: { username: m[1], verifyWithSecret: (secret) => verifyCramMd5(challenge, secret, digest) } };
      },
    };
  },
};
