/**
 * Builds an {@link X509Chain} from what Node's TLS stack tells us after a handshake:
 * the detailed peer certificate and the OpenSSL verify error code. OpenSSL stops at the first
 * verify error it reports, so we also run our own checks with node:crypto (validity dates,
 * link signatures, CA flags, trust anchor) to report every problem we can see.
 */
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { X509ChainStatusFlags, type X509Chain, type X509ChainStatus } from './policy-errors.js';

const S = X509ChainStatusFlags;

/**
 * OpenSSL verify error codes (as Node names them in `tlsSocket.authorizationError`, see
 * node's `X509ErrorCode` in crypto_common.cc) mapped to chain statuses. Codes not listed here
 * (including Node's catch-all `UNSPECIFIED`) map to `Other`.
 */
export const OPENSSL_VERIFY_CODE_STATUS: Readonly<Record<string, X509ChainStatusFlags>> = {
  CERT_HAS_EXPIRED: S.NotTimeValid,
  CERT_NOT_YET_VALID: S.NotTimeValid,
  ERROR_IN_CERT_NOT_BEFORE_FIELD: S.NotTimeValid,
  ERROR_IN_CERT_NOT_AFTER_FIELD: S.NotTimeValid,
  DEPTH_ZERO_SELF_SIGNED_CERT: S.UntrustedRoot,
  SELF_SIGNED_CERT_IN_CHAIN: S.UntrustedRoot,
  CERT_UNTRUSTED: S.UntrustedRoot,
  UNABLE_TO_GET_ISSUER_CERT: S.PartialChain,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: S.PartialChain,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: S.PartialChain,
  CERT_SIGNATURE_FAILURE: S.NotSignatureValid,
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: S.NotSignatureValid,
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: S.NotSignatureValid,
  CERT_REVOKED: S.Revoked,
  INVALID_PURPOSE: S.NotValidForUsage,
  INVALID_CA: S.InvalidBasicConstraints,
  PATH_LENGTH_EXCEEDED: S.InvalidBasicConstraints,
  CERT_REJECTED: S.ExplicitDistrust,
  UNABLE_TO_GET_CRL: S.RevocationStatusUnknown,
  CRL_SIGNATURE_FAILURE: S.OfflineRevocation,
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: S.OfflineRevocation,
  CRL_NOT_YET_VALID: S.OfflineRevocation,
  CRL_HAS_EXPIRED: S.OfflineRevocation,
  ERROR_IN_CRL_LAST_UPDATE_FIELD: S.OfflineRevocation,
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: S.OfflineRevocation,
};

/**
 * Codes that say the host name did not match (client side: Node runs `checkServerIdentity`
 * after OpenSSL's verify and stores its code in `authorizationError`). These are not chain
 * errors: they belong to `SslPolicyErrors.RemoteCertificateNameMismatch`, so
 * {@link buildChain} ignores them.
 */
export const NAME_MISMATCH_CODES: ReadonlySet<string> = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);

/** Input to {@link buildChain}; see the field comments for where each value comes from. */
export interface BuildChainInput {
  /** `tlsSocket.getPeerCertificate(true)`; `undefined` or `{}` when the peer sent no certificate. */
  peerCertificate: DetailedPeerCertificate | PeerCertificate | undefined;
  /** `tlsSocket.authorizationError`: an OpenSSL verify code string, or an Error carrying `code`. */
  authorizationError?: Error | string | null;
  /**
   * The trust anchors in force (the `ca` option). When given, we check that the top of the chain
   * is, or is signed by, one of them. When omitted (e.g. system roots), that check is left to OpenSSL.
   */
  trusted?: readonly X509Certificate[];
  /** Clock for the validity check; defaults to the current time. */
  now?: Date;
}

/**
 * Maps one OpenSSL verify code to a chain status, or `undefined` for name-mismatch codes
 * (see {@link NAME_MISMATCH_CODES}). Never inspects message text.
 */
export function statusForVerifyCode(code: string, message?: string): X509ChainStatus | undefined {
  if (NAME_MISMATCH_CODES.has(code)) return undefined;
  const status = OPENSSL_VERIFY_CODE_STATUS[code] ?? S.Other;
  return { status, code, statusInformation: message !== undefined && message !== code ? `${code}: ${message}` : code };
}

/** Returns true when `chain` carries at least one status, i.e. `RemoteCertificateChainErrors` applies. */
export function hasChainErrors(chain: X509Chain): boolean {
  return chain.chainStatus.length > 0;
}

/**
 * Builds the chain the peer presented and every problem found with it. Pure: call it once per
 * handshake after `'secure'`, with the values read from the TLS socket. Never throws for bad
 * certificates (they become statuses); a certificate Node could not give us in DER is skipped.
 *
 * `certificates` is leaf first, as Node reports it: the peer's chain, extended by OpenSSL with
 * issuers found in our trust store. Statuses are de-duplicated by kind; the TLS stack's own
 * entry comes first and wins over ours.
 */
export function buildChain(input: BuildChainInput): X509Chain {
  const certificates = collectCertificates(input.peerCertificate);
  const chainStatus: X509ChainStatus[] = [];
  const add = (entry: X509ChainStatus | undefined): void => {
    if (entry !== undefined && !chainStatus.some((s) => s.status === entry.status)) chainStatus.push(entry);
  };
  if (certificates.length === 0) return { certificates, chainStatus };

  add(openSslStatus(input.authorizationError));
  const now = input.now ?? new Date();
  certificates.forEach((cert, i) => add(checkValidity(cert, i, now)));
  for (let i = 0; i + 1 < certificates.length; i++) {
    for (const entry of checkLink(certificates[i], certificates[i + 1], i)) add(entry);
  }
  if (input.trusted !== undefined) add(checkAnchor(certificates[certificates.length - 1], input.trusted));
  return { certificates, chainStatus };
}

/** Walks `issuerCertificate` until it repeats (a root points to itself) or runs out. */
function collectCertificates(peer: DetailedPeerCertificate | PeerCertificate | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  let node: Partial<DetailedPeerCertificate> | undefined = peer;
  while (node !== undefined && node !== null && Buffer.isBuffer(node.raw)) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(node.raw);
    } catch {
      break;
    }
    if (seen.has(cert.fingerprint256)) break;
    seen.add(cert.fingerprint256);
    out.push(cert);
    node = node.issuerCertificate;
  }
  return out;
}

function openSslStatus(err: Error | string | null | undefined): X509ChainStatus | undefined {
  if (err === undefined || err === null || err === '') return undefined;
  if (typeof err === 'string') return statusForVerifyCode(err);
  const code = (err as Error & { code?: unknown }).code;
  return statusForVerifyCode(typeof code === 'string' ? code : 'UNSPECIFIED', err.message);
}

/** RFC 5280 §4.1.2.5: the certificate is valid only between notBefore and notAfter inclusive. */
function checkValidity(cert: X509Certificate, index: number, now: Date): X509ChainStatus | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
    return { status: S.NotTimeValid, statusInformation: `certificate ${index} has unreadable validity dates` };
  }
  if (now < from) return { status: S.NotTimeValid, statusInformation: `certificate ${index} (${oneLine(cert.subject)}) is not valid before ${cert.validFrom}` };
  if (now > to) return { status: S.NotTimeValid, statusInformation: `certificate ${index} (${oneLine(cert.subject)}) expired at ${cert.validTo}` };
  return undefined;
}

/**
 * Checks that `issuer` issued `cert` (RFC 5280 §6.1.3: names chain, signature verifies) and may
 * issue certificates at all (§4.2.1.9 cA flag; §4.2.1.3 keyCertSign, which OpenSSL's
 * `X509_check_issued` behind `checkIssued` also enforces, along with key identifiers).
 */
function checkLink(cert: X509Certificate, issuer: X509Certificate, index: number): X509ChainStatus[] {
  if (cert.issuer !== issuer.subject) {
    return [{ status: S.PartialChain, statusInformation: `certificate ${index + 1} did not issue certificate ${index}` }];
  }
  const out: X509ChainStatus[] = [];
  if (!cert.verify(issuer.publicKey)) {
    out.push({ status: S.NotSignatureValid, statusInformation: `signature of certificate ${index} does not verify with its issuer's key` });
  }
  if (!issuer.ca) {
    out.push({ status: S.InvalidBasicConstraints, statusInformation: `issuer of certificate ${index} (${oneLine(issuer.subject)}) is not a CA` });
  } else if (!cert.checkIssued(issuer)) {
    out.push({ status: S.NotValidForUsage, statusInformation: `issuer of certificate ${index} may not sign certificates or its key identifier differs` });
  }
  return out;
}

/** The top certificate must be a trust anchor, or be signed by one. */
function checkAnchor(top: X509Certificate, trusted: readonly X509Certificate[]): X509ChainStatus | undefined {
  if (trusted.some((t) => t.fingerprint256 === top.fingerprint256)) return undefined;
  if (trusted.some((t) => top.checkIssued(t) && top.verify(t.publicKey))) return undefined;
  if (top.issuer === top.subject && top.verify(top.publicKey)) {
    return { status: S.UntrustedRoot, statusInformation: `self-signed ${oneLine(top.subject)} is not a trusted root` };
  }
  return { status: S.PartialChain, statusInformation: `issuer ${oneLine(top.issuer)} of ${oneLine(top.subject)} is not available or not trusted` };
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
