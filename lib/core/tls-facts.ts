/**
 * What a finished TLS handshake established ({@link TlsFacts}), and the two steps both sides of a handshake share:
 * reading the facts off the TLS socket and asking the validation callback. Imported by `tls-upgrade.ts` (server side)
 * and `tls-client-handshake.ts` (client side); `tls-upgrade.ts` re-exports `TlsFacts`.
 */
import type { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import type { SslPolicyErrors, X509Chain } from './policy-errors.js';
import { TlsHandshakeError } from './tls-errors.js';

/** What a finished handshake established; exposed as `Connection.security`. */
export interface TlsFacts {
  /** Negotiated version, e.g. `TLSv1.3`. */
  readonly protocol: string;
  /** Negotiated cipher suite (OpenSSL name). */
  readonly cipher: string;
  /** Server name the client asked for (server side), or the target host (client side). */
  readonly sni?: string;
  /** The peer's leaf certificate, if it presented one. */
  readonly peerCertificate?: X509Certificate;
  /** The peer's chain with statuses. */
  readonly chain: X509Chain;
  /** Policy errors computed for the peer certificate. */
  readonly policyErrors: SslPolicyErrors;
  /** The ALPN protocol id the handshake negotiated (RFC 7301), if any. .NET: `SslStream.NegotiatedApplicationProtocol`. */
  readonly alpnProtocol?: string;
}

/**
 * Asks a validation callback (either side's `validationCallback`): true only when it answers `true`.
 * @throws TlsHandshakeError `rejected-by-policy` when the callback throws or rejects.
 */
export async function decide(cb: () => boolean | Promise<boolean>): Promise<boolean> {
  try {
    return (await cb()) === true;
  } catch (err) {
    throw new TlsHandshakeError('rejected-by-policy', `validation callback failed: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** The facts of `s`'s finished handshake, with the peer's chain and policy errors as the caller computed them. */
export function factsOf(s: tls.TLSSocket, chain: X509Chain, policyErrors: SslPolicyErrors, sni: string | undefined): TlsFacts {
  return {
    protocol: s.getProtocol() ?? 'unknown',
    cipher: s.getCipher()?.name ?? 'unknown',
    sni,
    peerCertificate: chain.certificates[0],
    chain,
    policyErrors,
    alpnProtocol: s.alpnProtocol || undefined,
  };
}
