import type { ServiceIdentifier } from 'inversify';
import type { Authenticator, AuthRequest } from '../../contracts/authenticator.js';
import type { PeerInfo } from '../../contracts/peer-info.js';
import type { ScramParameters } from './scram-keys.js';

/**
 * What a SASL exchange produced for the login policy: credentials for the `Authenticator`, minus the protocol and
 * peer (the session adds those).
 */
export type SaslCredentials = Pick<AuthRequest, 'username' | 'authzid' | 'password' | 'verifyWithSecret' | 'verifyWithScramKeys' | 'external'>;

/**
 * One step of a server-side SASL exchange (RFC 4422 §3), go-sasl's `Server.Next` result:
 * - `challenge`: send these bytes (the protocol base64-encodes and frames them as `334 ` or `+ `) and call
 *   `next` again with the client's response;
 * - `done`: the exchange is over; the credentials go to the Authenticator under the one failed-login policy.
 *   `successData` (RFC 4422 §5 "additional data with success", e.g. SCRAM's server signature) is asked for once the
 *   Authenticator accepted: bytes it returns go out as one more challenge, which the client answers with an empty
 *   response before the protocol's success reply (RFC 4954 §4, RFC 5034 §4, RFC 3501 §6.2.2);
 * - `rejected`: the mechanism itself refused (EXTERNAL: no certificate mapping, or an authorization identity the
 *   mapper does not allow). It counts as a failed login for `username` and gets the protocol's
 *   authentication-failed reply (535 5.7.8, `NO [AUTHENTICATIONFAILED]`, `-ERR [AUTH]`).
 */
export type SaslStep =
  | { readonly challenge: Buffer }
  | { readonly done: SaslCredentials; readonly successData?: () => Buffer | undefined }
  | { readonly rejected: { readonly username: string } };

/** A malformed client message (bad shape, not bad credentials); the protocol sends its syntax reply. */
export class SaslMalformedError extends Error {
  override readonly name = 'SaslMalformedError';
}

/**
 * One running exchange of a mechanism (go-sasl's `sasl.Server`). Created per AUTH/AUTHENTICATE command by
 * {@link SaslMechanism.start}, dropped when the exchange ends.
 */
export interface SaslServer {
  /**
   * Consumes the client's next response (decoded from base64; `undefined` only on the first call when the client
   * sent no initial response) and says what comes next.
   * @throws SaslMalformedError for a response of the wrong shape.
   */
  next(response: Buffer | undefined): Promise<SaslStep>;
}

/** The session facts a mechanism decides availability from and starts with. */
export interface SaslSessionInfo {
  /** Addresses and TLS facts, client certificate included. */
  readonly peer: PeerInfo;
  /** The server's host name (CRAM-MD5 challenges). */
  readonly hostname: string;
  /** The bound Authenticator can check challenge-response mechanisms (it knows plaintext secrets). */
  readonly supportsSharedSecrets: boolean;
  /** The bound Authenticator accepts any credentials (auth disabled): nothing can prove the password to the client. */
  readonly acceptsAnyCredentials?: boolean;
  /** The bound Authenticator keeps SCRAM-SHA-256 keys for every user (`Authenticator.supportsScramKeys`). */
  readonly supportsScramKeys?: boolean;
  /**
   * The salt and iteration count of a login's stored SCRAM keys (`Authenticator.scramParameters`), present when the
   * Authenticator keeps such keys: SCRAM-SHA-256 announces them instead of a fresh salt.
   */
  readonly scramParameters?: (login: string) => Promise<ScramParameters>;
}

/**
 * A SASL mechanism (RFC 4422), the same object for SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE. The registry is
 * the `SaslMechanism` multi-binding: bind one more to add a mechanism everywhere, in binding order of
 * preference (EHLO `AUTH`, CAPA `SASL`, CAPABILITY `AUTH=`).
 */
export interface SaslMechanism {
  /** Upper-case name as on the wire (`PLAIN`, `X-MY-TOKEN`). */
  readonly name: string;
  /**
   * False for server-first mechanisms that take no initial response (CRAM-MD5, RFC 2195). A client that sends one
   * anyway gets a syntax reply.
   */
  readonly acceptsInitialResponse: boolean;
  /** True when the mechanism is offered and accepted on this session (called for every capability list). */
  isAvailable(session: SaslSessionInfo): boolean;
  /** Starts one exchange. */
  start(session: SaslSessionInfo): SaslServer;
}
/** DI token of the {@link SaslMechanism} multi-binding (the registry). */
export const SaslMechanism = Symbol.for('postern.SaslMechanism') as ServiceIdentifier<SaslMechanism>;

/** What the mechanisms see of a session whose logins `authenticator` decides (SMTP, POP3 and IMAP build it alike). */
export function saslSessionInfo(peer: PeerInfo, hostname: string, authenticator: Authenticator): SaslSessionInfo {
  const info = { peer, hostname, supportsSharedSecrets: authenticator.supportsSharedSecrets, acceptsAnyCredentials: authenticator.acceptsAnyCredentials === true };
  // Only for an Authenticator that keeps SCRAM keys (a hashed store): the others keep the short shape.
  if (authenticator.supportsScramKeys !== true || authenticator.scramParameters === undefined) return info;
  return { ...info, supportsScramKeys: true, scramParameters: (login: string) => authenticator.scramParameters!(login) };
}

/** Names of the mechanisms available on a session, in registry order. */
export function availableMechanisms(registry: readonly SaslMechanism[], session: SaslSessionInfo): string[] {
  return registry.filter((m) => m.isAvailable(session)).map((m) => m.name);
}

/** The available mechanism called `name` (any case), or undefined. */
export function findMechanism(registry: readonly SaslMechanism[], session: SaslSessionInfo, name: string): SaslMechanism | undefined {
  const wanted = name.toUpperCase();
  return registry.find((m) => m.name === wanted && m.isAvailable(session));
}
