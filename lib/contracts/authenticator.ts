import type { ServiceIdentifier } from 'inversify';
import type { PeerInfo } from './peer-info.js';

/** One authentication attempt, protocol-neutral. */
export interface AuthRequest {
  /** `smtp`, `pop3`, `imap` or your protocol's name. */
  readonly protocol: string;
  /** SASL mechanism or protocol command: `PLAIN`, `LOGIN`, `CRAM-MD5`, `USER` (POP3 USER/PASS), `APOP`, `IMAP-LOGIN`. */
  readonly mechanism: string;
  /** Login as typed by the client (authcid). */
  readonly username: string;
  /** Authorization identity when it differs from the login (SASL authzid); empty otherwise. */
  readonly authzid?: string;
  /** Plaintext password (PLAIN, LOGIN, USER/PASS, IMAP LOGIN). Never log it. */
  readonly password?: string;
  /** For challenge-response mechanisms: verifies a response given the user's shared secret. */
  readonly verifyWithSecret?: (secret: string) => boolean;
  readonly peer: PeerInfo;
}

/** The outcome: a canonical username, or a refusal. */
export type AuthResult = { readonly ok: true; readonly username: string } | { readonly ok: false; readonly reason: 'invalid-credentials' | 'temporary-failure' };

/**
 * Decides logins for every protocol. The default checks the mail store's users; rebind it to use LDAP, a
 * database, client certificates… Resolve `{ ok: false }` for wrong credentials; throw only for bugs.
 */
export interface Authenticator {
  authenticate(request: AuthRequest): Promise<AuthResult>;
  /** True when challenge-response mechanisms (APOP, CRAM-MD5) can be offered (the backend knows plaintext secrets). */
  readonly supportsSharedSecrets: boolean;
}
/** DI token of {@link Authenticator}. */
export const Authenticator = Symbol.for('postern.Authenticator') as ServiceIdentifier<Authenticator>;
