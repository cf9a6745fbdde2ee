import { decodeBase64Strict, encodeBase64 } from './base64.js';
import type { SaslMechanism, SaslServer, SaslStep } from './sasl-mechanism.js';

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

/**
 * LOGIN (draft-murchison-sasl-login), for Outlook and older clients: `Username:`, then `Password:`. An initial
 * response (SASL-IR, RFC 4954 §4 `AUTH LOGIN <user>`) is the user name, so only the password is asked for.
 */
export const LOGIN: SaslMechanism = {
  name: 'LOGIN',
  acceptsInitialResponse: true,
  isAvailable: () => true,
  start(): SaslServer {
    let username: string | undefined;
    return {
      async next(response): Promise<SaslStep> {
        if (response === undefined) return { challenge: Buffer.from('Username:') };
        if (username === undefined) {
          username = response.toString('utf8');
          return { challenge: Buffer.from('Password:') };
        }
        return { done: { username, password: response.toString('utf8') } };
      },
    };
  },
};
