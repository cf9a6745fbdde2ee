import type { Connection } from './connection.js';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { buildChain } from './certificate-chain.js';
import { SslPolicyErrors, X509ChainStatusFlags, type LocalCertificate, type X509Chain, type X509ChainStatus } from './policy-errors.js';
import { parseOcspResponse } from './ocsp.js';
import type { ClientSecurity } from './client-security.js';
import type { ServerSecurity } from './server-security.js';
import { splitPemList } from './server-security.js';
import { toVersionRange } from './ssl-protocols.js';
import { ACME_TLS_ALPN_PROTOCOL } from './tls-alpn-challenges.js';
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
}

/**
 * Wraps `socket` as a TLS server socket and resolves once the handshake is done and the policy accepted it.
 * The wrap happens synchronously (before the first await) so that a ClientHello sent right after our
 * go-ahead reply is read by TLS, never by the plaintext reader.
 * @throws TlsHandshakeError; the TLS socket is destroyed by then.
 */
export function serverHandshake(socket: net.Socket, security: ServerSecurity, sender: Connection): { tlsSocket: tls.TLSSocket; done: Promise<TlsFacts> } {
  const tlsSocket = new tls.TLSSocket(socket, security.socketOptions());
  const done = awaitHandshake(tlsSocket, 'secure', security.handshakeTimeoutMs).then(async () => {
    releaseControl(tlsSocket);
    if (tlsSocket.alpnProtocol === ACME_TLS_ALPN_PROTOCOL) {
      // RFC 8737 §3: the validation needs only the handshake; no protocol session follows.
      tlsSocket.end();
      throw new TlsHandshakeError('acme-challenge', 'answered an ACME TLS-ALPN-01 validation');
    }
    // A client sends a certificate only when asked (RFC 8446 §4.4.2, RFC 5246 §7.4.6): without a request there is
    // no chain to read or check, which spares every plain handshake the certificate objects.
    const requested = security.requestsClientCertificate;
    const raw = requested ? tlsSocket.getPeerCertificate(true) : null;
    const hasCert = raw !== null && typeof raw === 'object' && raw.raw !== undefined;
    const chain = requested
      ? buildChain({
          peerCertificate: hasCert ? raw : undefined,
          authorizationError: hasCert ? serverVerifyError(tlsSocket) : null,
          trusted: security.trustedCertificates(),
        })
      : { certificates: [], chainStatus: [] };
    let policyErrors = SslPolicyErrors.None;
    if (requested) {
      if (!hasCert) policyErrors |= SslPolicyErrors.RemoteCertificateNotAvailable;
      else if (chain.chainStatus.length > 0) policyErrors |= SslPolicyErrors.RemoteCertificateChainErrors;
    }
    const facts = factsOf(tlsSocket, chain, policyErrors, (tlsSocket as unknown as { servername?: string | false }).servername || undefined);
    const cb = security.options.validationCallback;
    let accepted: boolean;
    if (!security.requestsClientCertificate) accepted = true;
    else if (cb) accepted = await decide(() => cb(sender, facts.peerCertificate, chain, policyErrors));
    else accepted = policyErrors === SslPolicyErrors.None || (policyErrors === SslPolicyErrors.RemoteCertificateNotAvailable && !security.requiresClientCertificate);
    if (!accepted) {
      tlsSocket.destroy();
      throw new TlsHandshakeError('rejected-by-policy', `client certificate refused (policy errors ${policyErrors})`);
    }
    return facts;
  });
  return { tlsSocket, done };
}

/**
 * Wraps `socket` as a TLS client socket towards `host` and resolves once the handshake is done and the
 * server certificate was accepted by the policy.
 */
export async function clientHandshake(
  socket: net.Socket,
  security: ClientSecurity,
  host: string,
  sender: Connection,
): Promise<{ tlsSocket: tls.TLSSocket; facts: TlsFacts }> {
  const o = security.options;
  const targetHost = o.targetHost || host;
  const { minVersion, maxVersion, legacy } = toVersionRange(security.protocols);
  const chosen = await chooseCertificate(security, targetHost, sender);
  const ca = splitPemList(o.trustedCertificates);
  // `requestOCSP` is a TLSSocket option that tls.connect passes on, missing from ConnectionOptions' type.
  const connectOptions: tls.ConnectionOptions & Pick<tls.TLSSocketOptions, 'requestOCSP'> = {
    socket,
    servername: net.isIP(targetHost) ? undefined : targetHost,
    minVersion,
    maxVersion,
    ciphers: legacy ? `${o.ciphers ?? tls.DEFAULT_CIPHERS}:@SECLEVEL=0` : o.ciphers,
    ca: ca.length > 0 ? ca : undefined,
    rejectUnauthorized: false, // our policy decides, below
    checkServerIdentity: () => undefined,
    ALPNProtocols: o.alpnProtocols ? [...o.alpnProtocols] : undefined,
    requestOCSP: o.requireOcspStaple === true,
    ...(chosen ?? {}),
  };
  const tlsSocket = tls.connect(connectOptions);
  let staple: Buffer | undefined;
  if (o.requireOcspStaple) tlsSocket.once('OCSPResponse', (response: Buffer) => (staple = response));
  await awaitHandshake(tlsSocket, 'secureConnect', o.handshakeTimeoutMs ?? 10_000);
  const raw = tlsSocket.getPeerCertificate(true);
  const hasCert = raw !== null && typeof raw === 'object' && raw.raw !== undefined;
  const chain = buildChain({
    peerCertificate: hasCert ? raw : undefined,
    authorizationError: hasCert ? tlsSocket.authorizationError : null,
    trusted: ca.length > 0 ? ca.map((pem) => new X509Certificate(pem)) : undefined,
  });
  if (o.requireOcspStaple && hasCert) {
    const revocation = stapleStatus(staple, chain.certificates, ca);
    if (revocation) chain.chainStatus.push(revocation);
  }
  let policyErrors = SslPolicyErrors.None;
  if (!hasCert) policyErrors |= SslPolicyErrors.RemoteCertificateNotAvailable;
  else {
    if (tls.checkServerIdentity(targetHost, raw) !== undefined) policyErrors |= SslPolicyErrors.RemoteCertificateNameMismatch;
    if (chain.chainStatus.length > 0) policyErrors |= SslPolicyErrors.RemoteCertificateChainErrors;
  }
  const facts = factsOf(tlsSocket, chain, policyErrors, targetHost);
  const cb = o.validationCallback;
  const accepted = cb ? await decide(() => cb(sender, facts.peerCertificate, chain, policyErrors)) : policyErrors === SslPolicyErrors.None;
  if (!accepted) {
    tlsSocket.destroy();
    throw new TlsHandshakeError('rejected-by-policy', `server certificate refused (policy errors ${policyErrors})`);
  }
  return { tlsSocket, facts };
}

/** The chain status a stapled OCSP response calls for (RFC 6960), or undefined when it says `good`. */
function stapleStatus(staple: Buffer | undefined, presented: readonly X509Certificate[], trusted: readonly string[]): X509ChainStatus | undefined {
  const unknown = (why: string): X509ChainStatus => ({ status: X509ChainStatusFlags.RevocationStatusUnknown, statusInformation: why });
  if (!staple || staple.length === 0) return unknown('no OCSP response was stapled');
  const leaf = presented[0]!;
  const issuer = [...presented.slice(1), ...trusted.map((pem) => new X509Certificate(pem))].find((c) => leaf.checkIssued(c));
  if (!issuer) return unknown('the issuer needed to check the stapled OCSP response is unknown');
  try {
    const { status } = parseOcspResponse(staple, leaf, issuer);
    if (status === 'revoked') return { status: X509ChainStatusFlags.Revoked, statusInformation: 'the stapled OCSP response says revoked' };
    return status === 'good' ? undefined : unknown('the stapled OCSP response says unknown');
  } catch (err) {
    return unknown(`unusable stapled OCSP response: ${(err as Error).message}`);
  }
}

/**
 * OpenSSL's verify result for the client's certificate (expired, untrusted, not for client use, …). Node fills in
 * `authorizationError` only on sockets a `tls.Server` accepted; on a socket wrapped by hand, as both our implicit-TLS
 * and STARTTLS paths do, it stays null, and so would every verify error only OpenSSL sees (the purpose check, for one).
 * So ask the native handle, as Node's own server path does (`_tls_wrap.js`, onServerSocketSecure: `_handle.verifyError()`).
 */
function serverVerifyError(s: tls.TLSSocket): Error | null {
  if (s.authorizationError) return s.authorizationError;
  const handle = (s as unknown as { _handle?: { verifyError?: () => Error | null | undefined } })._handle;
  return typeof handle?.verifyError === 'function' ? (handle.verifyError() ?? null) : null;
}

async function chooseCertificate(security: ClientSecurity, targetHost: string, sender: Connection): Promise<LocalCertificate | undefined> {
  const list = [...(security.options.certificates ?? []), ...(security.options.certificateStore?.clientCertificates() ?? [])];
  const select = security.options.selectionCallback;
  if (select) return (await select(sender, targetHost, list, undefined, [])) ?? undefined;
  return list.find(isUsableClientCertificate);
}

/** True when a local certificate is within its validity period and allowed for client authentication. PFX entries are taken as usable. */
export function isUsableClientCertificate(c: LocalCertificate): boolean {
  if (!('cert' in c)) return true;
  const pem = splitPemList(c.cert)[0];
  if (!pem) return false;
  const x = new X509Certificate(pem);
  const now = Date.now();
  if (Date.parse(x.validFrom) > now || Date.parse(x.validTo) < now) return false;
  const eku = x.keyUsage; // extended key usage OIDs, undefined when the extension is absent
  return eku === undefined || eku.includes('1.3.6.1.5.5.7.3.2');
}

async function decide(cb: () => boolean | Promise<boolean>): Promise<boolean> {
  try {
    return (await cb()) === true;
  } catch (err) {
    throw new TlsHandshakeError('rejected-by-policy', `validation callback failed: ${(err as Error)?.message ?? String(err)}`);
  }
}

function factsOf(s: tls.TLSSocket, chain: X509Chain, policyErrors: SslPolicyErrors, sni: string | undefined): TlsFacts {
  return {
    protocol: s.getProtocol() ?? 'unknown',
    cipher: s.getCipher()?.name ?? 'unknown',
    sni,
    peerCertificate: chain.certificates[0],
    chain,
    policyErrors,
  };
}

/**
 * Hands a wrapped server socket's TLS errors to its `'error'` listeners, as `tls.Server` does for the sockets it makes
 * once their handshake is done. A `TLSSocket` made around an accepted socket keeps "control" otherwise: a fatal TLS
 * error after the handshake (a record that fails to decrypt, a bad MAC) sends the alert but is only emitted as the
 * internal `'_tlsError'`, so the connection would sit open, unusable, until its idle timeout.
 */
function releaseControl(s: tls.TLSSocket): void {
  (s as unknown as { _releaseControl?: () => boolean })._releaseControl?.();
}

function awaitHandshake(s: tls.TLSSocket, event: 'secure' | 'secureConnect', timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: TlsHandshakeError): void => {
      cleanup();
      s.destroy();
      reject(err);
    };
    const onSecure = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: NodeJS.ErrnoException): void => fail(new TlsHandshakeError('protocol', `TLS handshake failed: ${err.message}`, err.code));
    const onClose = (): void => fail(new TlsHandshakeError('peer-closed', 'peer closed the connection during the TLS handshake'));
    const timer = setTimeout(() => fail(new TlsHandshakeError('timeout', `TLS handshake did not finish within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      s.off(event, onSecure);
      s.off('error', onError);
      s.off('close', onClose);
    };
    s.once(event, onSecure);
    s.on('error', onError);
    s.once('close', onClose);
  });
}
