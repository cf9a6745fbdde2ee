import type { Connection } from './connection.js';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { buildChain } from './certificate-chain.js';
import type { ClientHelloSummary } from './client-hello.js';
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
 * Where a server handshake started by {@link startServerHandshake} reports its outcome, exactly once, with the
 * `subject` it was started for (one listener object serves every handshake).
 */
export interface ServerHandshakeListener<T> {
  /** The handshake finished and the policy accepted the peer. */
  serverHandshakeDone(subject: T, facts: TlsFacts): void;
  /** The handshake failed (usually a {@link TlsHandshakeError}); the TLS socket is destroyed by then, or closing. */
  serverHandshakeFailed(subject: T, err: unknown): void;
}

/**
 * Wraps `socket` as a TLS server socket and resolves once the handshake is done and the policy accepted it.
 * The wrap happens synchronously (before the first await) so that a ClientHello sent right after our
 * go-ahead reply is read by TLS, never by the plaintext reader.
 * @throws TlsHandshakeError; the TLS socket is destroyed by then.
 */
export function serverHandshake(socket: net.Socket, security: ServerSecurity, sender: Connection): { tlsSocket: tls.TLSSocket; done: Promise<TlsFacts> } {
  const outcome = new HandshakePromise();
  const handshake = startServerHandshake(socket, security, sender, HANDSHAKE_PROMISE, outcome);
  handshake.watchSocket();
  return { tlsSocket: handshake.tlsSocket, done: outcome.promise };
}

/**
 * {@link serverHandshake} without a promise: wraps `socket` and reports to `listener` (issue 15: the implicit-TLS
 * accept path had four async functions in a chain, each a promise and a microtask per connection). Finishes
 * synchronously in the TLS socket's `'secure'` event unless a validation callback has to be awaited. The caller
 * reports the TLS socket's `'error'` and `'close'` during the handshake through {@link ServerHandshake.socketError}
 * and {@link ServerHandshake.socketClosed} (a Connection's own listeners do; no second pair per handshake).
 */
export function startServerHandshake<T>(
  socket: net.Socket,
  security: ServerSecurity,
  sender: Connection,
  listener: ServerHandshakeListener<T>,
  subject: T,
  hello?: ClientHelloSummary,
): ServerHandshake {
  return new ServerHandshake(new tls.TLSSocket(socket, security.socketOptions(hello)), security, sender, listener as ServerHandshakeListener<unknown>, subject);
}

/** {@link serverHandshake}'s outcome as a promise. */
class HandshakePromise {
  readonly promise: Promise<TlsFacts>;
  resolve!: (facts: TlsFacts) => void;
  reject!: (err: unknown) => void;
  constructor() {
    this.promise = new Promise<TlsFacts>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

const HANDSHAKE_PROMISE: ServerHandshakeListener<HandshakePromise> = {
  serverHandshakeDone(p, facts) {
    p.resolve(facts);
  },
  serverHandshakeFailed(p, err) {
    p.reject(err);
  },
};

/**
 * One server handshake: waits for `'secure'` (or the deadline), then checks the peer as the policy says. Its
 * listeners are bound prototype methods, not closures made per handshake: V8 keeps the optimized code of a closure
 * only while a closure that ran it is alive, so per-connection closures were recompiled after every full collection
 * (issue 15).
 */
export class ServerHandshake {
  private readonly timer: NodeJS.Timeout;
  private readonly onSecure = this.secured.bind(this);
  private settled = false;
  private onError?: (err: NodeJS.ErrnoException) => void;
  private onClose?: () => void;

  constructor(
    /** The TLS socket wrapped around the accepted (or STARTTLS) socket. */
    readonly tlsSocket: tls.TLSSocket,
    private readonly security: ServerSecurity,
    private readonly sender: Connection,
    private readonly listener: ServerHandshakeListener<unknown>,
    private readonly subject: unknown,
  ) {
    this.timer = setTimeout(serverTimedOut, security.handshakeTimeoutMs, this);
    tlsSocket.on('secure', this.onSecure);
  }

  /** Listens to the TLS socket's `'error'` and `'close'` itself (for callers without listeners of their own). */
  watchSocket(): void {
    this.onError = this.socketError.bind(this);
    this.onClose = this.socketClosed.bind(this);
    this.tlsSocket.on('error', this.onError);
    this.tlsSocket.once('close', this.onClose);
  }

  /** True until the outcome is reported. */
  get pending(): boolean {
    return !this.settled;
  }

  /**
   * The TLS socket failed during the handshake. OpenSSL's refusal of a client without a certificate where one is
   * required (see `ServerSecurity.socketOptions`) is the policy's refusal, as it would be after the handshake.
   */
  socketError(err: NodeJS.ErrnoException): void {
    if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') {
      const none = SslPolicyErrors.RemoteCertificateNotAvailable;
      this.fail(new TlsHandshakeError('rejected-by-policy', `client certificate refused (policy errors ${none})`, err.code));
      return;
    }
    this.fail(new TlsHandshakeError('protocol', `TLS handshake failed: ${err.message}`, err.code));
  }

  /** The TLS socket closed during the handshake. */
  socketClosed(): void {
    this.fail(new TlsHandshakeError('peer-closed', 'peer closed the connection during the TLS handshake'));
  }

  /** Ends the handshake with `err`: destroys the TLS socket and reports the failure (once). */
  fail(err: TlsHandshakeError): void {
    if (this.settled) return;
    this.cleanup();
    this.tlsSocket.destroy();
    this.listener.serverHandshakeFailed(this.subject, err);
  }

  get limitMs(): number {
    return this.security.handshakeTimeoutMs;
  }

  private cleanup(): void {
    this.settled = true;
    clearTimeout(this.timer);
    const s = this.tlsSocket;
    s.off('secure', this.onSecure);
    if (this.onError) s.off('error', this.onError);
    if (this.onClose) s.off('close', this.onClose);
  }

  private secured(): void {
    if (this.settled) return;
    const s = this.tlsSocket;
    s.off('secure', this.onSecure);
    let facts: TlsFacts;
    let accepted = true;
    try {
      releaseControl(s);
      if (s.alpnProtocol === ACME_TLS_ALPN_PROTOCOL) {
        // RFC 8737 §3: the validation needs only the handshake; no protocol session follows.
        s.end();
        throw new TlsHandshakeError('acme-challenge', 'answered an ACME TLS-ALPN-01 validation');
      }
      const security = this.security;
      // A client sends a certificate only when asked (RFC 8446 §4.4.2, RFC 5246 §7.4.6): without a request there is
      // no chain to read or check, which spares every plain handshake the certificate objects.
      if (!security.requestsClientCertificate) {
        facts = factsOf(s, { certificates: [], chainStatus: [] }, SslPolicyErrors.None, (s as unknown as { servername?: string | false }).servername || undefined);
      } else {
        const checked = this.checkClientCertificate();
        // The validation callback decides. Until it does the handshake stays pending: the deadline still runs and the
        // socket's close or error fails it, so a callback that never answers cannot hold the connection.
        if (checked === undefined) return;
        facts = checked.facts;
        accepted = checked.accepted;
      }
    } catch (err) {
      this.cleanup();
      this.listener.serverHandshakeFailed(this.subject, err);
      return;
    }
    this.cleanup();
    // Outside the try: what the listener does next (the session's start) is not the handshake's failure.
    this.decided(accepted, facts);
  }

  /**
   * The client-certificate policy (only when a certificate is requested): the facts and the decision, or undefined
   * when the validation callback's answer is awaited (it then reports through {@link decided} itself).
   */
  private checkClientCertificate(): { facts: TlsFacts; accepted: boolean } | undefined {
    const s = this.tlsSocket;
    const security = this.security;
    const raw = s.getPeerCertificate(true);
    const hasCert = raw !== null && typeof raw === 'object' && raw.raw !== undefined;
    const chain = buildChain({
      peerCertificate: hasCert ? raw : undefined,
      authorizationError: hasCert ? serverVerifyError(s) : null,
      trusted: security.trustedCertificates(),
    });
    let policyErrors = SslPolicyErrors.None;
    if (!hasCert) policyErrors |= SslPolicyErrors.RemoteCertificateNotAvailable;
    else if (chain.chainStatus.length > 0) policyErrors |= SslPolicyErrors.RemoteCertificateChainErrors;
    const facts = factsOf(s, chain, policyErrors, (s as unknown as { servername?: string | false }).servername || undefined);
    const cb = security.options.validationCallback;
    if (cb) {
      const sender = this.sender;
      decide(() => cb(sender, facts.peerCertificate, chain, policyErrors)).then(
        (accepted) => {
          if (this.settled) return; // timed out or closed meanwhile: already reported
          this.cleanup();
          this.decided(accepted, facts);
        },
        (err: unknown) => {
          if (this.settled) return;
          this.cleanup();
          this.listener.serverHandshakeFailed(this.subject, err);
        },
      );
      return undefined;
    }
    return { facts, accepted: policyErrors === SslPolicyErrors.None || (policyErrors === SslPolicyErrors.RemoteCertificateNotAvailable && !security.requiresClientCertificate) };
  }

  private decided(accepted: boolean, facts: TlsFacts): void {
    if (accepted) {
      this.listener.serverHandshakeDone(this.subject, facts);
      return;
    }
    this.tlsSocket.destroy();
    this.listener.serverHandshakeFailed(this.subject, new TlsHandshakeError('rejected-by-policy', `client certificate refused (policy errors ${facts.policyErrors})`));
  }
}

function serverTimedOut(h: ServerHandshake): void {
  h.fail(new TlsHandshakeError('timeout', `TLS handshake did not finish within ${h.limitMs} ms`));
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

function awaitHandshake(s: tls.TLSSocket, event: 'secureConnect', timeoutMs: number): Promise<void> {
  return new HandshakeWait(s, event, timeoutMs).promise;
}

/**
 * One wait for a handshake's end: its listeners are bound prototype methods, not closures made per handshake (see
 * {@link ServerHandshake} for why). The client side's; the server side has {@link ServerHandshake}.
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
