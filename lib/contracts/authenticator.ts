import type { ServiceIdentifier } from 'inversify';
import type { ScramKeys, ScramParameters } from '../protocol/sasl/scram-keys.js';
import type { PeerInfo } from './peer-info.js';

/** One authentication attempt, protocol-neutral. */
export interface AuthRequest {
  /** `smtp`, `pop3`, `imap` or your protocol's name. */
  readonly protocol: string;
  /** SASL mechanism or protocol command: `PLAIN`, `LOGIN`, `CRAM-MD5`, `EXTERNAL`, `USER` (POP3 USER/PASS), `APOP`, `IMAP-LOGIN`. */
  readonly mechanism: string;
  /** Login as typed by the client (authcid). */
  readonly username: string;
  /** Authorization identity when it differs from the login (SASL authzid); empty otherwise. */
  readonly authzid?: string;
  /** Plaintext password (PLAIN, LOGIN, USER/PASS, IMAP LOGIN). Never log it. */
  readonly password?: string;
  /** For challenge-response mechanisms: verifies a response given the user's shared secret. */
  readonly verifyWithSecret?: (secret: string) => boolean;
  /**
   * SCRAM-SHA-256: verifies the client's proof given the user's stored SCRAM keys (for an Authenticator that keeps
   * keys rather than the password; see {@link Authenticator.scramParameters}). SCRAM also gives `verifyWithSecret`.
   */
  readonly verifyWithScramKeys?: (keys: ScramKeys) => boolean;
  /**
   * SASL EXTERNAL (RFC 4422 appendix A): the TLS client certificate passed validation and the
   * `CertificateLoginMapper` mapped it to `certificateLogin`; `username` is the identity to log in as (the
   * certificate's login, or an authorization identity the mapper allowed). No password: accept it if the user
   * exists and may log in. An Authenticator that ignores this field refuses EXTERNAL, which is safe.
   */
  readonly external?: { readonly certificateLogin: string; readonly fingerprint256: string };
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
  /** True when challenge-response mechanisms (APOP, CRAM-MD5, SCRAM-SHA-256) can be offered (the backend knows plaintext secrets). */
  readonly supportsSharedSecrets: boolean;
  /**
   * True when any credentials are accepted (GreenMail's auth-disabled mode). SCRAM-SHA-256 is then not offered: the
   * server must prove it knows the client's password, which it cannot when it never checks one. Absent: false.
   */
  readonly acceptsAnyCredentials?: boolean;
  /**
   * True when every user has stored SCRAM-SHA-256 keys ({@link scramParameters} and `verifyWithScramKeys` can serve
   * them): SCRAM-SHA-256 is then offered even without plaintext secrets. Absent: false.
   */
  readonly supportsScramKeys?: boolean;
  /**
   * The salt and iteration count of `login`'s stored SCRAM keys, for SCRAM's server-first message; for an unknown
   * login, made-up values that stay the same for that login (RFC 5802 §5.1: the answer must not tell who exists).
   */
  scramParameters?(login: string): Promise<ScramParameters>;
}
/** DI token of {@link Authenticator}: what every protocol asks. Rebind it to replace or decorate the default. */
export const Authenticator = Symbol.for('postern.Authenticator') as ServiceIdentifier<Authenticator>;
/**
 * DI token of the store-backed default {@link Authenticator} (`StoreAuthenticator`), bound by every store module;
 * `Authenticator` resolves to it unless rebound. Decorate it without constructing it by hand:
 * `container.rebind(Authenticator).toResolvedValue((inner) => decorate(inner), [DefaultAuthenticator])`.
 */
export const DefaultAuthenticator = Symbol.for('postern.DefaultAuthenticator') as ServiceIdentifier<Authenticator>;
