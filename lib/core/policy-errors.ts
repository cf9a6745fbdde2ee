/**
 * Certificate policy vocabulary shared by server and client security: the .NET-style
 * `SslPolicyErrors` flags, X.509 chain status values, and the two callback types that let
 * an application decide about a peer certificate or pick a local one.
 *
 * The names mirror .NET's `System.Net.Security` / `System.Security.Cryptography.X509Certificates`
 * so that people porting code recognise them; the values of `SslPolicyErrors` are the .NET values.
 */
import type { Connection } from './connection.js';
import type { X509Certificate } from 'node:crypto';

/**
 * Bit flags summarising why a peer certificate is not acceptable as-is. Combine with `|`,
 * test with `&`. `None` (0) means the peer sent a certificate whose chain ends in a trusted
 * root and (for a server certificate checked by a client) whose name matches the target host.
 */
export enum SslPolicyErrors {
  /** No problem found. */
  None = 0,
  /** The peer sent no certificate (a client that ignored our certificate request). */
  RemoteCertificateNotAvailable = 1,
  /** The certificate's SAN/CN does not match the expected host name (RFC 6125 §6). */
  RemoteCertificateNameMismatch = 2,
  /** The chain has at least one `X509ChainStatus` entry; see `X509Chain.chainStatus`. */
  RemoteCertificateChainErrors = 4,
}

/** Every single flag of {@link SslPolicyErrors}, in value order (used by {@link describePolicyErrors}). */
const POLICY_FLAGS: readonly SslPolicyErrors[] = [
  SslPolicyErrors.RemoteCertificateNotAvailable,
  SslPolicyErrors.RemoteCertificateNameMismatch,
  SslPolicyErrors.RemoteCertificateChainErrors,
];

/**
 * Names the flags set in `flags`, for logs and error messages.
 * Returns `['None']` for 0; unknown bits are reported as `'Unknown(0x…)'`.
 */
export function describePolicyErrors(flags: SslPolicyErrors | number): string[] {
  if (flags === SslPolicyErrors.None) return ['None'];
  const names: string[] = [];
  let rest = flags;
  for (const flag of POLICY_FLAGS) {
    if ((flags & flag) !== 0) {
      names.push(SslPolicyErrors[flag]);
      rest &= ~flag;
    }
  }
  if (rest !== 0) names.push(`Unknown(0x${rest.toString(16)})`);
  return names;
}

/**
 * One reason a certificate chain is not valid. Values are the .NET `X509ChainStatusFlags`
 * member names (as strings, so logs read well). A chain with no problems has an empty
 * `chainStatus` array rather than a `NoError` entry; `NoError` exists for completeness.
 */
export enum X509ChainStatusFlags {
  NoError = 'NoError',
  /** A certificate is expired or not yet valid (RFC 5280 §4.1.2.5). */
  NotTimeValid = 'NotTimeValid',
  /** A CA's validity period does not enclose its subordinate's. */
  NotTimeNested = 'NotTimeNested',
  /** A certificate was revoked (CRL/OCSP). */
  Revoked = 'Revoked',
  /** A signature in the chain does not verify. */
  NotSignatureValid = 'NotSignatureValid',
  /** Key usage / extended key usage does not allow this use (RFC 5280 §4.2.1.3, §4.2.1.12). */
  NotValidForUsage = 'NotValidForUsage',
  /** The chain ends in a self-signed root that is not trusted. */
  UntrustedRoot = 'UntrustedRoot',
  /** Revocation could not be checked. */
  RevocationStatusUnknown = 'RevocationStatusUnknown',
  /** The chain loops. */
  Cyclic = 'Cyclic',
  /** An extension is invalid. */
  InvalidExtension = 'InvalidExtension',
  /** Policy constraints are violated (RFC 5280 §4.2.1.11). */
  InvalidPolicyConstraints = 'InvalidPolicyConstraints',
  /** An issuer is not a CA, or a path length is exceeded (RFC 5280 §4.2.1.9). */
  InvalidBasicConstraints = 'InvalidBasicConstraints',
  /** Name constraints are violated (RFC 5280 §4.2.1.10). */
  InvalidNameConstraints = 'InvalidNameConstraints',
  /** No issuer could be found for some certificate: the chain does not reach a root. */
  PartialChain = 'PartialChain',
  /** A certificate is explicitly distrusted (OpenSSL CERT_REJECTED). */
  ExplicitDistrust = 'ExplicitDistrust',
  /** Revocation data was unavailable or stale (OpenSSL CRL errors). */
  OfflineRevocation = 'OfflineRevocation',
  /** A critical extension is not understood (RFC 5280 §4.2). */
  HasNotSupportedCriticalExtension = 'HasNotSupportedCriticalExtension',
  /** Anything else; `X509ChainStatus.code` carries the TLS stack's code. */
  Other = 'Other',
}

/** One problem with a chain, as reported by the TLS stack or by our own checks. */
export interface X509ChainStatus {
  /** What kind of problem. */
  status: X509ChainStatusFlags;
  /** Human-readable detail: the TLS stack's code and message, or our own check's description. */
  statusInformation: string;
  /** The OpenSSL verify error code when the status came from the TLS stack, e.g. `'CERT_HAS_EXPIRED'`. */
  code?: string;
}

/** The peer's certificate chain and everything found wrong with it. */
export interface X509Chain {
  /** Certificates as presented by the peer, leaf first; empty when the peer sent none. */
  certificates: X509Certificate[];
  /** Problems found, de-duplicated by status; empty means no chain errors. */
  chainStatus: X509ChainStatus[];
}

/**
 * Decides whether to accept the peer's certificate. Called once per handshake after the
 * `policyErrors` flags are computed; returning (or resolving) `false` fails the handshake with
 * reason `'rejected-by-policy'`. A throw or rejection is treated as `false`.
 * Without a callback, only `SslPolicyErrors.None` is accepted (when a certificate is required).
 * `sender` is the {@link Connection} being secured (server side: the accepted connection; client side: the dialled one).
 */
export type RemoteCertificateValidationCallback = (
  sender: Connection,
  certificate: X509Certificate | undefined,
  chain: X509Chain,
  policyErrors: SslPolicyErrors,
) => boolean | Promise<boolean>;

/** A certificate and private key as Node's `tls` accepts them: PEM pair or PKCS#12 blob. */
export type LocalCertificate =
  | { cert: string | Buffer; key: string | Buffer; passphrase?: string }
  | { pfx: Buffer; passphrase?: string };

/**
 * Picks the local certificate to present (a client certificate for `authenticateAsClient`,
 * or a server certificate per SNI name). `targetHost` is the SNI / expected host name,
 * `acceptableIssuers` the distinguished names the peer said it accepts (may be empty).
 * Returning `undefined` presents no certificate.
 */
export type LocalCertificateSelectionCallback = (
  /** The {@link Connection} being secured. */
  sender: Connection,
  targetHost: string,
  localCertificates: readonly LocalCertificate[],
  remoteCertificate: X509Certificate | undefined,
  acceptableIssuers: readonly string[],
) => LocalCertificate | undefined | Promise<LocalCertificate | undefined>;
