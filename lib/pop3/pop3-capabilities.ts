import type { Pop3State } from './pop3-state.js';

/** What the CAPA list depends on. */
export interface CapabilityInput {
  readonly state: Pop3State;
  /** TLS is active (implicit, or after STLS). */
  readonly isSecure: boolean;
  /** Global `allowInsecureAuth`. */
  readonly allowInsecureAuth: boolean;
  /** SASL mechanisms the server implements (PLAIN, LOGIN, CRAM-MD5…), in preference order. */
  readonly saslMechanisms: readonly string[];
}

/** Our RFC 2449 §6.9 IMPLEMENTATION string. */
export const POP3_IMPLEMENTATION = 'Postern';

/**
 * The RFC 2449 CAPA list: a pure function of state, security and configuration.
 *
 * - STLS (RFC 2595 §4) only before TLS, and only in AUTHORIZATION (it is not valid later).
 * - USER (RFC 2449 §6.6) and SASL (§6.3) only where those logins are permitted: under TLS, or with
 *   `allowInsecureAuth`. RFC 2449 §5 asks that capabilities of the AUTHORIZATION state are listed in both states,
 *   so they stay in TRANSACTION.
 * - EXPIRE NEVER (§6.7): this server never deletes messages on its own.
 * - No LOGIN-DELAY (§6.8): no minimum delay between sessions is enforced.
 */
export function pop3Capabilities(input: CapabilityInput): string[] {
  const caps: string[] = [];
  if (!input.isSecure && input.state === 'authorization') caps.push('STLS');
  const canLogin = input.isSecure || input.allowInsecureAuth;
  if (canLogin) {
    caps.push('USER');
    if (input.saslMechanisms.length > 0) caps.push('SASL ' + input.saslMechanisms.join(' '));
  }
  caps.push('TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'EXPIRE NEVER', `IMPLEMENTATION ${POP3_IMPLEMENTATION}`);
  return caps;
}
