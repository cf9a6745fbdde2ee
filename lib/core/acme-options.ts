/**
 * What automatic certificates over ACME are configured with ({@link AcmeOptions}) and what they are given to
 * ({@link AcmeCertificateTarget}): plain data and one interface, shared by `acme-certificates.ts`, the CLI and the
 * cluster relay. Re-exported by `acme-certificates.ts`.
 */
import type { X509Certificate } from 'node:crypto';
import type { CertificateSource } from './server-security.js';

/** ACME challenge types Postern can answer (RFC 8555 §8.3, RFC 8737). */
export type AcmeChallengeType = 'tls-alpn-01' | 'http-01';

/** Settings of automatic certificates over ACME (RFC 8555). Plain data, from the CLI or code. */
export interface AcmeOptions {
  /** The CA's directory URL, e.g. Let's Encrypt's production or staging directory, or a local Pebble. */
  readonly directoryUrl: string;
  /** Contact address of the ACME account (`mailto:`); the CA mails expiry warnings there. */
  readonly email: string;
  /** The names the certificate covers; the first is its common name. */
  readonly domains: readonly string[];
  /** Where the account key, the certificate and its key are kept across restarts (created with mode 0700). */
  readonly stateDir: string;
  /**
   * Extra CA certificates (PEM) trusted for the directory's own HTTPS, for a private or test CA such as Pebble.
   * acme-client uses one HTTP client per process, so this applies to every ACME client in the process.
   */
  readonly directoryCa?: string | Buffer;
  /** Challenge types in order of preference (default `['tls-alpn-01', 'http-01']`; http-01 needs an HTTP listener). */
  readonly challenges?: readonly AcmeChallengeType[];
  /** Renew this many days before expiry (default 30, like certbot; capped at a third of a short certificate's life). */
  readonly renewBeforeDays?: number;
  /** First retry delay after a failed order, doubled up to an hour (default 60 s). */
  readonly retryDelayMs?: number;
}

/**
 * Where an {@link AcmeCertificateManager} puts what it gets: the pending TLS-ALPN-01 challenge certificates and the
 * issued certificate. A `ServerSecurity` is one (it answers the challenges in its own handshakes); the primary of
 * `postern --workers N` passes one that forwards both to every worker.
 */
export interface AcmeCertificateTarget {
  /** The certificate served now; a challenge certificate gets the same key type (see the manager). */
  readonly certificate?: X509Certificate;
  /** Pending TLS-ALPN-01 validations (RFC 8737), by domain. */
  readonly acmeChallenges: {
    add(domain: string, key: string | Buffer, cert: string | Buffer): void | Promise<void>;
    remove(domain: string): void | Promise<void>;
  };
  /** Pending HTTP-01 validations (RFC 8555 §8.3), by token; absent: only {@link AcmeCertificateManager.httpChallengeResponse} has them. */
  readonly acmeHttpChallenges?: {
    add(token: string, keyAuthorization: string): void | Promise<void>;
    remove(token: string): void | Promise<void>;
  };
  /** Serves `source` from the next handshake on (live sessions keep theirs). */
  useCertificate(source: CertificateSource): Promise<void>;
}
