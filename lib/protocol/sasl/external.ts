import type { CertificateLoginMapper } from '../../contracts/certificate-login.js';
import type { PeerInfo } from '../../contracts/peer-info.js';
import { SslPolicyErrors } from '../../core/policy-errors.js';
import type { SaslMechanism, SaslServer, SaslSessionInfo, SaslStep } from './sasl-mechanism.js';

/** True when the session is TLS and its client certificate passed validation (no policy error at all). */
export function hasValidatedClientCertificate(peer: PeerInfo): boolean {
  const s = peer.security;
  return s.tls && s.peerCertificate !== undefined && s.policyErrors === SslPolicyErrors.None;
}

/**
 * EXTERNAL (RFC 4422 appendix A) from the TLS client certificate: offered only on a TLS session whose client
 * certificate passed validation, and only with a {@link CertificateLoginMapper}. The client's one message is the
 * authorization identity it asks for (empty: "whoever my certificate says", RFC 4422 §A.1); without an initial
 * response the server sends an empty challenge first (RFC 4954 §4, RFC 5034 §4, RFC 3501 §6.2.2).
 *
 * A certificate that maps to nobody, or an authorization identity other than the mapped login that the mapper does
 * not allow, is `rejected`: a failed login (535 5.7.8, `NO [AUTHENTICATIONFAILED]`, `-ERR [AUTH]`). Otherwise the
 * Authenticator gets a request with `external` set and no password.
 */
export class ExternalMechanism implements SaslMechanism {
  readonly name = 'EXTERNAL';
  readonly acceptsInitialResponse = true;

  /** `mapper` undefined: EXTERNAL is never offered. */
  constructor(private readonly mapper: CertificateLoginMapper | undefined) {}

  isAvailable(session: SaslSessionInfo): boolean {
    return this.mapper !== undefined && hasValidatedClientCertificate(session.peer);
  }

  start(session: SaslSessionInfo): SaslServer {
    const mapper = this.mapper;
    const peer = session.peer;
    return {
      async next(response): Promise<SaslStep> {
        if (response === undefined) return { challenge: Buffer.alloc(0) };
        const authzid = response.toString('utf8');
        const certificate = peer.security.peerCertificate;
        // Checked again here: the mechanism may have been looked up before a renegotiation or by a stale list.
        if (!mapper || !certificate || !hasValidatedClientCertificate(peer)) return { rejected: { username: authzid } };
        const login = await mapper.loginFor(certificate, peer);
        if (login === undefined || login === '') return { rejected: { username: authzid || certificate.fingerprint256 } };
        if (authzid !== '' && authzid !== login && !(await mapper.mayAuthorize?.(login, authzid, peer))) return { rejected: { username: login } };
        const username = authzid === '' ? login : authzid;
        return { done: { username, external: { certificateLogin: login, fingerprint256: certificate.fingerprint256 } } };
      },
    };
  }
}
