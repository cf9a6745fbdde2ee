import { decodeBase64Strict, encodeBase64 } from './base64.js';

/**
 * The LOGIN mechanism (draft-murchison-sasl-login): the server asks `Username:` then `Password:` as base64
 * challenges. These are the challenges, base64-encoded, ready for `334 ` / `+ `.
 */
export const LOGIN_CHALLENGES = { username: encodeBase64('Username:'), password: encodeBase64('Password:') } as const;

/**
 * Decodes one LOGIN response.
 * @throws ProtocolSyntaxError for bad base64.
 */
export function decodeLoginResponse(response: string): string {
  return decodeBase64Strict(response).toString('utf8');
}
