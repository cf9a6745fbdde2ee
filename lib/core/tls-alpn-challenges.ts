import tls from 'node:tls';

/** The ALPN protocol name of ACME's TLS-ALPN-01 validation (RFC 8737 §6.2). */
export const ACME_TLS_ALPN_PROTOCOL = 'acme-tls/1';

/**
 * Pending ACME TLS-ALPN-01 challenges (RFC 8737): for each domain under validation, the self-signed certificate
 * carrying the `acmeIdentifier` extension that a validation server must see. A {@link ServerSecurity} with
 * challenges pending negotiates `acme-tls/1` with clients that offer it for such a domain and presents that
 * certificate; every other handshake is unchanged. Filled and emptied by the ACME certificate manager.
 */
export class TlsAlpnChallenges {
  private readonly contexts = new Map<string, tls.SecureContext>();

  /**
   * Starts answering the validation of `domain` with this key and certificate (PEM). The context carries only them:
   * the TLS versions are the listener's (OpenSSL keeps the version range of the context a handshake started with
   * when SNI switches to another one), which is TLS 1.2 or later unless the listener was configured otherwise.
   */
  add(domain: string, key: string | Buffer, cert: string | Buffer): void {
    this.contexts.set(domain.toLowerCase(), tls.createSecureContext({ key, cert }));
  }

  /** Stops answering the validation of `domain`. */
  remove(domain: string): void {
    this.contexts.delete(domain.toLowerCase());
  }

  /** True while at least one validation is pending (handshakes then look at ALPN). */
  get isActive(): boolean {
    return this.contexts.size > 0;
  }

  /** The challenge context of `servername`, if its validation is pending. */
  contextFor(servername: string | undefined): tls.SecureContext | undefined {
    return servername === undefined ? undefined : this.contexts.get(servername.toLowerCase());
  }
}
