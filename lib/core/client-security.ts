import type { LocalCertificate, LocalCertificateSelectionCallback, RemoteCertificateValidationCallback } from './policy-errors.js';
import { DEFAULT_PROTOCOLS, type SslProtocols } from './ssl-protocols.js';
import type { CertificateStore } from './certificate-store.js';

/**
 * Client-side TLS settings for {@link Connection.authenticateAsClient} (tests, proxies, tools).
 *
 * Server validation: the certificate chain is checked against `trustedCertificates` (or Node's root store
 * when absent) and the name against `targetHost`; the outcome becomes `SslPolicyErrors` flags. Without a
 * `validationCallback` only `None` is accepted.
 */
export interface ClientSecurityOptions {
  /** Name the server certificate must match; also sent as SNI when it is a host name. Empty: the host or address used to connect. */
  targetHost?: string;
  /** Allowed versions, default `Tls12 | Tls13`. */
  protocols?: SslProtocols;
  /** OpenSSL cipher list. */
  ciphers?: string;
  /** CA certificates (PEM) to trust instead of Node's bundled roots. */
  trustedCertificates?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Decides on the server certificate. */
  validationCallback?: RemoteCertificateValidationCallback;
  /**
   * Client certificates. Without a selection callback the first one that is currently valid and usable for
   * client authentication (extendedKeyUsage clientAuth, or no EKU) is presented.
   */
  certificates?: readonly LocalCertificate[];
  /**
   * More client certificates: the store's certificates with keys that are valid now and allowed for client
   * authentication (`CertificateStore.clientCertificates()`), read at each handshake and offered after `certificates`
   * (to the selection callback as `localCertificates`, or the first one when there is no callback).
   */
  certificateStore?: CertificateStore;
  /**
   * Chooses the certificate to present. Node's TLS client fixes its certificate before the handshake and has no
   * hook when the server's CertificateRequest arrives, so this is called once, before the handshake, with
   * `remoteCertificate` undefined and `acceptableIssuers` empty (they are not known yet).
   */
  selectionCallback?: LocalCertificateSelectionCallback;
  /** Milliseconds the handshake may take (default 10 s). */
  handshakeTimeoutMs?: number;
  /** ALPN protocol names to offer. */
  alpnProtocols?: readonly string[];
  /**
   * Ask for a stapled OCSP response (RFC 6066 §8) and require one that says `good`, signed by the certificate's
   * issuer. A missing, unverifiable or `unknown` response adds `RevocationStatusUnknown` to the chain status, a
   * `revoked` one adds `Revoked`; either way `RemoteCertificateChainErrors` is set and the validation callback (or
   * the default policy, which refuses) decides. Like .NET's `X509RevocationMode.Online`, but from the staple only.
   */
  requireOcspStaple?: boolean;
}

/** Immutable client security settings. */
export class ClientSecurity {
  readonly options: Readonly<ClientSecurityOptions>;
  constructor(options: ClientSecurityOptions = {}) {
    this.options = { ...options };
  }
  /** Allowed versions. */
  get protocols(): SslProtocols {
    return this.options.protocols ?? DEFAULT_PROTOCOLS;
  }
}
