/**
 * What a TLS server configuration ({@link ServerSecurity}) is made from: plain data, so that the CLI, the config file
 * and code all build the same options.
 */
import tls from 'node:tls';
import type { CertificateStore, CertificateStoreOptions } from './certificate-store.js';
import type { RemoteCertificateValidationCallback } from './policy-errors.js';
import type { SslProtocols } from './ssl-protocols.js';

/**
 * Where a certificate comes from. PEM text (certificate, key, optional intermediate chain), a PKCS#12/PFX
 * blob with passphrase, or the same as file paths (re-read on {@link ServerSecurity.reload}).
 */
export type CertificateSource =
  | { cert: string | Buffer; key: string | Buffer; chain?: string | Buffer; passphrase?: string }
  | { pfx: Buffer; passphrase?: string }
  | { certFile: string; keyFile: string; chainFile?: string; passphrase?: string }
  | { pfxFile: string; passphrase?: string };

/** Everything a listener needs to act as a TLS server. Plain data: build a {@link ServerSecurity} from it. */
export interface ServerSecurityOptions {
  /** The server certificate. When absent, a self-signed one for `selfSignedHosts` is generated in memory. */
  certificate?: CertificateSource;
  /** Per-hostname certificates chosen by SNI; names may start with `*.`. Unknown names get `certificate`. */
  sni?: Readonly<Record<string, CertificateSource>>;
  /**
   * Server certificates per SNI name from a {@link CertificateStore}: a name the client sends picks the store's
   * certificate for it (`serverCertificateFor`) when `sni` has no entry for it; unknown names and clients without SNI
   * get `certificate`. An open store (yours to close), or `{ directory, passphrase? }` to open one in `prepare()`
   * (watched, closed by `close()`). Changes in the store apply to the next handshakes.
   */
  certificateStore?: CertificateStore | CertificateStoreOptions;
  /** Allowed versions, default `Tls12 | Tls13`. */
  protocols?: SslProtocols;
  /** OpenSSL cipher list (TLS 1.2 and below); {@link DEFAULT_TLS12_CIPHERS} when absent (Node's default for legacy versions). */
  ciphers?: string;
  /**
   * Key-exchange groups, colon-separated, in order of preference (Node's `ecdhCurve`, OpenSSL's groups list), for TLS
   * 1.3 and the ECDHE suites of TLS 1.2; {@link DEFAULT_TLS_GROUPS} when absent. A client that offers none of them is
   * refused with a `handshake_failure` alert.
   * @throws Error from the ServerSecurity constructor for a name OpenSSL does not know.
   */
  groups?: string;
  /**
   * ALPN protocol ids (RFC 7301) this configuration accepts, in order of preference, replacing the protocol's own
   * (`ConnectionHandler.alpnProtocols`: `smtp`, `pop3`, `imap`). A client that offers ALPN without any of them gets a
   * `no_application_protocol` alert (RFC 7301 §3.2, RFC 9325 §3.8: the ALPACA cross-protocol attacks); a client that
   * offers none is unaffected. `false`: ALPN is off (offers are ignored and nothing is negotiated), as are an empty
   * list and a protocol that names no ids. .NET: `SslServerAuthenticationOptions.ApplicationProtocols`.
   * @throws Error from the ServerSecurity constructor for an id that is empty, over 255 octets, or not printable ASCII
   *   without spaces and commas.
   */
  alpnProtocols?: readonly string[] | false;
  /** Ask the client for a certificate (the handshake still succeeds without one). */
  requestClientCertificate?: boolean;
  /**
   * Refuse clients that present no certificate (implies request). Without a `validationCallback` they are refused
   * inside the handshake with a TLS alert (certificate_required, or handshake_failure under TLS 1.2); with one, the
   * callback decides (it sees `RemoteCertificateNotAvailable`).
   */
  requireClientCertificate?: boolean;
  /** CA certificates (PEM) that client certificates must chain to. */
  trustedCertificates?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * Decides on a client certificate. Receives the policy-error flags and the chain with its statuses.
   * Without one: accept `None`, and `RemoteCertificateNotAvailable` when the certificate is not required.
   * A callback that throws or rejects refuses the peer.
   */
  validationCallback?: RemoteCertificateValidationCallback;
  /**
   * Milliseconds a handshake may take before the connection is destroyed (default 10 s), an async
   * `validationCallback`'s decision included (a callback still deciding then fails the handshake with reason `timeout`).
   */
  handshakeTimeoutMs?: number;
  /** Watch certificate files and reload on change (file sources only). */
  watchFiles?: boolean;
  /** Names/addresses for the generated certificate when none is configured (default localhost, 127.0.0.1, ::1). */
  selfSignedHosts?: readonly string[];
  /**
   * Staple OCSP responses (RFC 6066 §8) for certificates whose issuer runs a responder (default true). Needs the
   * issuer in the configured chain; fetched after prepare/reload and refreshed half-way to `nextUpdate`.
   */
  ocspStapling?: boolean;
  /**
   * Session tickets (RFC 5077, RFC 8446 §4.6.1), default on: clients resume with a ticket sealed under the ticket
   * keys. There is no server-side session cache, so TLS 1.2 session-ID resumption never happens either way.
   */
  sessionTickets?: boolean;
  /** The first ticket key set (48 bytes); share it between processes that must resume each other's tickets. Default: random. */
  ticketKeys?: Buffer;
  /**
   * Replace the ticket keys with fresh random ones this often (ms, default `TICKET_KEY_ROTATION_MS` (24 h)); 0 turns
   * the schedule off, for processes whose keys are pushed with {@link ServerSecurity.setTicketKeys} (cluster workers).
   */
  ticketKeyRotationMs?: number;
}

/** Handshake limit: a TLS handshake over loopback or the internet takes well under a second; 10 s tolerates slow links. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Key-exchange groups offered when `groups` is not set: Mozilla's "intermediate" profile (X25519, P-256, P-384).
 * Node's default (`auto`) also accepts X448, P-521 and the finite-field groups ffdhe2048…ffdhe8192 under TLS 1.3, and a
 * client may pick any of them: measured on a 2-core VM, one handshake cost the server 1.75 ms of CPU with X25519 and
 * 128 ms with ffdhe8192, so a flood of cheap ClientHellos offering only ffdhe8192 would cost 70 times as much to serve.
 */
export const DEFAULT_TLS_GROUPS = 'X25519:P-256:P-384';

/**
 * Checks a `groups` list against this Node's OpenSSL (which says only "Failed to set ECDH curve").
 * @param label starts the message: `groups` for the option, the flag for the CLI (`--tls-groups@smtps`).
 * @throws Error naming the first group OpenSSL refuses, or the empty list.
 */
export function assertGroups(groups: string, label = 'groups'): void {
  const names = groups.split(':');
  if (names.some((n) => n.trim() === '')) throw new Error(`${label}: "${groups}" has an empty name (expected e.g. ${DEFAULT_TLS_GROUPS})`);
  for (const name of names) {
    try {
      tls.createSecureContext({ ecdhCurve: name });
    } catch {
      throw new Error(`${label}: OpenSSL does not know the group "${name}" (expected names such as X25519, P-256, P-384, P-521, X448, ffdhe2048)`);
    }
  }
}

/**
 * Checks ALPN protocol ids: 1 to 255 printable ASCII characters without spaces or commas (RFC 7301 §3.1 allows any
 * octets; the registered ids are all of this kind, and a comma is a list given as one id).
 * @param label starts the message: `alpnProtocols` for the option, the flag for the CLI (`--tls-alpn@imaps`).
 * @throws Error naming the first id that is not one.
 */
export function assertAlpnProtocols(ids: readonly string[], label = 'alpnProtocols'): void {
  for (const id of ids) {
    if (!/^[\x21-\x2b\x2d-\x7e]{1,255}$/.test(id)) {
      const shown = id.length > 40 ? `${id.slice(0, 40)}…` : id;
      throw new Error(`${label}: "${shown}" is not a valid ALPN protocol id (1 to 255 printable ASCII characters, no space or comma; e.g. imap)`);
    }
  }
}

/**
 * TLS 1.2 suites offered when `ciphers` is not set: ECDHE key exchange (forward secrecy) with AEAD encryption only,
 * in the order of Mozilla's "intermediate" profile (RFC 9325 §4.2 recommends exactly these). Left out on purpose:
 * CBC suites (Lucky13, "obsolete" in testssl.sh), static-RSA key exchange (ROBOT, no forward secrecy), CCM-8 (short
 * tag) and DHE (Node has no default group). TLS 1.3 suites are configured separately by OpenSSL and keep Node's defaults.
 */
export const DEFAULT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
