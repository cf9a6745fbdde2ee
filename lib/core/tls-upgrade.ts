import type { Connection } from './connection.js';
import type net from 'node:net';
import tls from 'node:tls';
import { buildChain } from './certificate-chain.js';
import type { ClientHelloSummary } from './client-hello.js';
import { SslPolicyErrors } from './policy-errors.js';
import type { ServerSecurity } from './server-security.js';
import { ACME_TLS_ALPN_PROTOCOL } from './tls-alpn-challenges.js';
import { TlsHandshakeError } from './tls-errors.js';
import { decide, factsOf, type TlsFacts } from './tls-facts.js';

export { clientHandshake, isUsableClientCertificate } from './tls-client-handshake.js';
export type { TlsFacts } from './tls-facts.js';

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
  alpnProtocols?: readonly string[],
): ServerHandshake {
  return new ServerHandshake(new tls.TLSSocket(socket, security.socketOptions(hello, alpnProtocols)), security, sender, listener as ServerHandshakeListener<unknown>, subject);
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

/**
 * Hands a wrapped server socket's TLS errors to its `'error'` listeners, as `tls.Server` does for the sockets it makes
 * once their handshake is done. A `TLSSocket` made around an accepted socket keeps "control" otherwise: a fatal TLS
 * error after the handshake (a record that fails to decrypt, a bad MAC) sends the alert but is only emitted as the
 * internal `'_tlsError'`, so the connection would sit open, unusable, until its idle timeout.
 */
function releaseControl(s: tls.TLSSocket): void {
  (s as unknown as { _releaseControl?: () => boolean })._releaseControl?.();
}
