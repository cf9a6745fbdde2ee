import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolSyntaxError } from '../reply-error.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';

/** Builds a CRAM-MD5 challenge (RFC 2195 §2: a unique msg-id-like string). Returns the text and its base64 form. */
export function cramMd5Challenge(hostname: string): { text: string; base64: string } {
  const text = `<${randomBytes(8).toString('hex')}.${Date.now()}@${hostname}>`;
  return { text, base64: encodeBase64(text) };
}

/**
 * Decodes the client's CRAM-MD5 answer (`user SP hex-digest`).
 * @throws ProtocolSyntaxError for bad base64 or shape.
 */
export function decodeCramMd5(response: string): { username: string; digest: string } {
  const text = decodeBase64Strict(response).toString('utf8');
  const m = /^(.+) ([0-9a-f]{32})$/.exec(text);
  if (!m) throw new ProtocolSyntaxError('malformed CRAM-MD5 response');
  return { username: m[1], digest: m[2] };
}

/** Checks a CRAM-MD5 digest against the shared secret in constant time. */
export function verifyCramMd5(challenge: string, secret: string, digest: string): boolean {
  const expected = Buffer.from(createHmac('md5', secret).update(challenge).digest('hex'));
  const got = Buffer.from(digest);
  return expected.length === got.length && timingSafeEqual(expected, got);
}
