import type { X509Certificate } from 'node:crypto';
import type { ServiceIdentifier } from 'inversify';
import type { PeerInfo } from './peer-info.js';

/**
 * Maps a validated TLS client certificate to a login, for SASL EXTERNAL (RFC 4422 appendix A). Bound under the
 * `CertificateLoginMapper` token; EXTERNAL is offered only when one is bound and the session's client certificate
 * passed validation. Built-ins (`lib/backends/certificate-login-mappers.ts`): subject CN, SAN e-mail address,
 * SHA-256 fingerprint table (`--cert-login cn|email|FILE`).
 */
export interface CertificateLoginMapper {
  /**
   * The login this certificate stands for, or undefined when it maps to nobody (the login then fails like a wrong
   * password). Called once per EXTERNAL exchange, after the handshake validated the certificate.
   */
  loginFor(certificate: X509Certificate, peer: PeerInfo): string | undefined | Promise<string | undefined>;
  /**
   * Whether `login` (this certificate's user) may act as `authzid`, a different authorization identity (RFC 4422
   * §3.4.1). Absent: never (the exchange is refused as a failed login).
   */
  mayAuthorize?(login: string, authzid: string, peer: PeerInfo): boolean | Promise<boolean>;
}
/** DI token of {@link CertificateLoginMapper} (bind one to offer SASL EXTERNAL). */
export const CertificateLoginMapper = Symbol.for('postern.CertificateLoginMapper') as ServiceIdentifier<CertificateLoginMapper>;
