import { ProtocolSyntaxError } from '../reply-error.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64 decoding for SASL exchanges (RFC 4648 §4, no whitespace). Node's decoder silently skips
 * garbage; a SASL server must refuse it (RFC 4954 §4: 501 for a bad encoding).
 * @throws ProtocolSyntaxError on malformed input.
 */
export function decodeBase64Strict(text: string): Buffer {
  if (!BASE64.test(text)) throw new ProtocolSyntaxError('invalid base64');
  return Buffer.from(text, 'base64');
}

/** Encodes a server challenge. */
export function encodeBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
