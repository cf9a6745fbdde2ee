import tls from 'node:tls';
import type { ClientHelloSummary } from './client-hello.js';
import type { ServerSecurity } from './server-security.js';

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

/**
 * RFC 8737 §3: a validation server offers only `acme-tls/1` with the domain as SNI and must be shown the challenge
 * certificate. OpenSSL asks for ALPN before it picks the certificate (SNI callback), so the ALPN choice of this
 * handshake is remembered and the SNI callback then returns the challenge context. Only while a validation is
 * pending, because the selection then runs in JavaScript: other clients get the first of `alpn` (the listener's ids,
 * in its order of preference) that they offer, or `no_application_protocol` when they offer none of them, as the
 * static list would; with ALPN off (`alpn` undefined) the client's first id is echoed, since the callback must accept
 * one. Called by {@link ServerSecurity.socketOptions} with its `options` while `security.acmeChallenges` is active.
 */
export function withAcmeChallenges(security: ServerSecurity, options: tls.TLSSocketOptions, hello: ClientHelloSummary | undefined, alpn: readonly string[] | undefined): tls.TLSSocketOptions {
  // Under TLS 1.2 the SNI callback runs before the ALPN callback: only a ClientHello read ahead can tell it.
  let validating = hello !== undefined && isAcmeValidation(security.acmeChallenges, hello.alpn, hello.servername);
  return {
    ...options,
    // Node refuses a static list beside the callback.
    ALPNProtocols: undefined,
    // An ACME CA's validation connection presents no client certificate and must still see the challenge answered.
    rejectUnauthorized: false,
    ALPNCallback: ({ servername, protocols }) => {
      validating = isAcmeValidation(security.acmeChallenges, protocols, servername);
      if (validating) return ACME_TLS_ALPN_PROTOCOL;
      return alpn === undefined ? protocols[0] : alpn.find((id) => protocols.includes(id));
    },
    SNICallback: (name, cb) => cb(null, (validating ? security.acmeChallenges.contextFor(name) : undefined) ?? security.contextFor(name)),
  };
}

/** RFC 8737 §3: the client offers `acme-tls/1` for a name with a pending validation. */
function isAcmeValidation(challenges: TlsAlpnChallenges, protocols: readonly string[], servername: string | undefined): boolean {
  return protocols.includes(ACME_TLS_ALPN_PROTOCOL) && challenges.contextFor(servername) !== undefined;
}
