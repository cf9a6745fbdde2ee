/**
 * The client side of the TLS path (`Connection.authenticateAsClient`): wraps a socket as a TLS client towards a host,
 * picks the client certificate, checks a stapled OCSP response when one is required, and lets the policy judge the
 * server certificate. The server side is `tls-upgrade.ts`, which re-exports {@link clientHandshake} and
 * {@link isUsableClientCertificate}.
 */
import type { Connection } from './connection.js';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { buildChain } from './certificate-chain.js';
import { splitPemList } from './certificate-material.js';
import { SslPolicyErrors, X509ChainStatusFlags, type LocalCertificate, type X509ChainStatus } from './policy-errors.js';
import { parseOcspResponse } from './ocsp.js';
import type { ClientSecurity } from './client-security.js';
import { toVersionRange } from './ssl-protocols.js';
import { TlsHandshakeError } from './tls-errors.js';
import { decide, factsOf, type TlsFacts } from './tls-facts.js';

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

function awaitHandshake(s: tls.TLSSocket, event: 'secureConnect', timeoutMs: number): Promise<void> {
  return new HandshakeWait(s, event, timeoutMs).promise;
}

/**
 * One wait for a handshake's end: its listeners are bound prototype methods, not closures made per handshake (see
 * `ServerHandshake` in `tls-upgrade.ts` for why). The client side's; the server side has `ServerHandshake`.
 */
class HandshakeWait {
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private reject!: (err: TlsHandshakeError) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly onSecure = this.secured.bind(this);
  private readonly onError = this.failed.bind(this);
  private readonly onClose = this.closed.bind(this);

  constructor(
    private readonly s: tls.TLSSocket,
    private readonly event: 'secure' | 'secureConnect',
    private readonly timeoutMs: number,
  ) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.timer = setTimeout(timedOut, timeoutMs, this);
    s.once(event, this.onSecure);
    s.on('error', this.onError);
    s.once('close', this.onClose);
  }

  fail(err: TlsHandshakeError): void {
    this.cleanup();
    this.s.destroy();
    this.reject(err);
  }

  private secured(): void {
    this.cleanup();
    this.resolve();
  }

  private failed(err: NodeJS.ErrnoException): void {
    this.fail(new TlsHandshakeError('protocol', `TLS handshake failed: ${err.message}`, err.code));
  }

  private closed(): void {
    this.fail(new TlsHandshakeError('peer-closed', 'peer closed the connection during the TLS handshake'));
  }

  get limitMs(): number {
    return this.timeoutMs;
  }

  private cleanup(): void {
    clearTimeout(this.timer);
    this.s.off(this.event, this.onSecure);
    this.s.off('error', this.onError);
    this.s.off('close', this.onClose);
  }
}

function timedOut(wait: HandshakeWait): void {
  wait.fail(new TlsHandshakeError('timeout', `TLS handshake did not finish within ${wait.limitMs} ms`));
}
