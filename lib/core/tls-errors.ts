/**
 * Why a TLS handshake did not produce a usable session. `acme-challenge`: the peer was an ACME CA validating a
 * TLS-ALPN-01 challenge (RFC 8737), answered and closed without a protocol session.
 */
export type TlsHandshakeFailure = 'timeout' | 'protocol' | 'rejected-by-policy' | 'peer-closed' | 'acme-challenge';

/**
 * Thrown by `authenticateAsServer` / `authenticateAsClient`. The connection is already destroyed when it is
 * thrown; `reason` is a closed union, `code` carries the TLS stack's error code when there was one.
 */
export class TlsHandshakeError extends Error {
  override readonly name = 'TlsHandshakeError';
  constructor(
    readonly reason: TlsHandshakeFailure,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}
