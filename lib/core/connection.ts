import type tls from 'node:tls';
import type { ClientSecurity } from './client-security.js';
import type { ServerSecurity } from './server-security.js';
import { peekClientHello, type ClientHelloSummary } from './client-hello.js';
import { ConnectionSocket, loadZlib } from './connection-socket.js';
import type { CloseReason, UpgradeOwner } from './connection-options.js';
import { clientHandshake, startServerHandshake, type ServerHandshakeListener, type TlsFacts } from './tls-upgrade.js';
import { TlsHandshakeError } from './tls-errors.js';

export type { CloseReason, ConnectionEvents, ConnectionOptions, SecurityState, UpgradeOwner } from './connection-options.js';

/** {@link Connection.authenticateAsServer}'s promise as an {@link UpgradeOwner}. */
const SETTLE_PROMISE: UpgradeOwner<{ resolve: () => void; reject: (err: unknown) => void }> = {
  connectionSecured(_connection, settle) {
    settle.resolve();
  },
  connectionNotSecured(_connection, err, settle) {
    settle.reject(err);
  },
};

/**
 * One accepted (or dialled) TCP connection that can be upgraded to TLS in place.
 *
 * Protocol code reads through `'data'` events and writes with {@link write}; it never sees the socket.
 * Created by `TcpServer` (server side) or `TcpClient` (client side); whoever created it closes it when the
 * server or client closes. `close`/`destroy` are idempotent and `'close'` is emitted exactly once.
 */
export class Connection extends ConnectionSocket {
  /** True once {@link startCompression} ran. */
  get isCompressed(): boolean {
    return this.deflater !== undefined;
  }

  /**
   * From now on, inflates what arrives and deflates what leaves (raw DEFLATE, RFC 1951), as IMAP COMPRESS=DEFLATE
   * (RFC 4978) needs. Call right after writing the last uncompressed reply. Inflated data goes through the same
   * `'data'` path, so line and literal limits apply to it unchanged; {@link pause} also stops the inflater, and a
   * full inflater pauses the socket, so a small compressed input cannot grow into unbounded memory. Corrupt input
   * closes the connection (reason `error`).
   */
  startCompression(): void {
    if (this.deflater) return;
    const zlib = loadZlib();
    const inflater = zlib.createInflateRaw();
    const deflater = zlib.createDeflateRaw();
    this.inflater = inflater;
    this.deflater = deflater;
    this.socket.off('data', this.onData);
    this.socket.on('data', this.compressedData.bind(this));
    inflater.on('data', this.onData);
    inflater.on('drain', () => {
      if (!this.userPaused && !this.upgrading) this.socket.resume();
    });
    deflater.on('data', (chunk: Buffer) => {
      if (!this.socket.destroyed) this.socket.write(chunk);
    });
    const fail = (err: Error): void => {
      this.log.debug('compression error', { error: err.message });
      this.destroy('error');
    };
    inflater.on('error', fail);
    deflater.on('error', fail);
  }

  /** The socket's data listener once compressed (bound in {@link startCompression}, not made for every connection). */
  private compressedData(chunk: Buffer): void {
    if (this.inflater && !this.inflater.write(chunk)) this.socket.pause();
  }

  /**
   * Upgrades this plaintext connection to TLS as the server (STARTTLS/STLS), or starts TLS right after accept
   * (implicit TLS). Any plaintext the socket delivers from now on is never emitted as `'data'`: the protocol
   * layer must also drop what it had buffered. The socket is wrapped synchronously, before this returns.
   * @throws TlsHandshakeError (the connection is closed with reason `tls-failed` by then).
   */
  async authenticateAsServer(security: ServerSecurity): Promise<void> {
    this.beginUpgrade();
    if (!security.isPrepared) await security.prepare();
    return new Promise<void>((resolve, reject) => this.startServerTls(security, SETTLE_PROMISE, { resolve, reject }));
  }

  /**
   * @internal {@link authenticateAsServer} for `TcpServer`'s implicit-TLS accept: reports to `owner` instead of
   * through a promise (and finishes within the TLS socket's `'secure'` event), so that an accepted connection costs
   * no chain of promises and microtasks (issue 15). The socket is wrapped synchronously, before this returns.
   */
  secureAccepted<A>(security: ServerSecurity, owner: UpgradeOwner<A>, arg: A): void {
    try {
      this.beginUpgrade();
    } catch (err) {
      owner.connectionNotSecured(this, err, arg);
      return;
    }
    if (security.isPrepared && !security.acmeChallenges.isActive) this.startServerTlsOr(security, owner, arg);
    else this.prepareThenSecure(security, owner, arg).catch((err: unknown) => owner.connectionNotSecured(this, err, arg));
  }

  /**
   * {@link secureAccepted}'s slow path: prepares `security` first when needed and, while an ACME TLS-ALPN-01 validation
   * is pending, reads the ClientHello before wrapping the socket, so that the certificate can be chosen by its ALPN
   * even under TLS 1.2 (where OpenSSL picks the certificate before it selects ALPN).
   */
  private async prepareThenSecure<A>(security: ServerSecurity, owner: UpgradeOwner<A>, arg: A): Promise<void> {
    if (!security.isPrepared) await security.prepare();
    const hello = security.acmeChallenges.isActive ? await peekClientHello(this.socket, security.handshakeTimeoutMs) : undefined;
    this.startServerTlsOr(security, owner, arg, hello);
  }

  /** {@link startServerTls}, a throw (no usable context) reported to `owner` as {@link authenticateAsServer} rejects with it. */
  private startServerTlsOr<A>(security: ServerSecurity, owner: UpgradeOwner<A>, arg: A, hello?: ClientHelloSummary): void {
    try {
      this.startServerTls(security, owner, arg, hello);
    } catch (err) {
      owner.connectionNotSecured(this, err, arg);
    }
  }

  /**
   * Upgrades this connection to TLS as the client. `host` defaults to the host name or address dialled
   * ({@link dialledHost}, else the remote address); it is the name checked when `targetHost` is empty.
   * @throws TlsHandshakeError (the connection is closed by then).
   */
  async authenticateAsClient(security: ClientSecurity, host = this.dialledHost ?? this.remoteAddress): Promise<void> {
    this.beginUpgrade();
    const plain = this.socket;
    const handshake = clientHandshake(plain, security, host, this);
    // clientHandshake creates the TLS socket after an await (certificate selection); errors surface through it.
    const { tlsSocket, facts } = await handshake.catch((err: unknown) => {
      this.upgrading = false;
      this.terminate('tls-failed', err);
      throw err;
    });
    await this.finishUpgrade(tlsSocket, facts);
  }

  private beginUpgrade(): void {
    if (this.securityState.tls) throw new TlsHandshakeError('protocol', 'connection is already secure');
    if (this.upgrading) throw new TlsHandshakeError('protocol', 'a TLS handshake is already in progress');
    this.upgrading = true;
    // From here on the plaintext socket delivers nothing to the protocol (RFC 3207 §4.2 / RFC 2595 §3.1).
    this.detach(this.socket);
    this.socket.pause();
  }

  private async finishUpgrade(tlsSocket: tls.TLSSocket, done: Promise<TlsFacts> | TlsFacts): Promise<void> {
    this.plainSocket = this.socket;
    this.socket = tlsSocket;
    tlsSocket.on('error', this.onError);
    this.onPlainRelease ??= this.releasePlain.bind(this);
    tlsSocket.on('close', this.onPlainRelease);
    try {
      this.secured(await done);
    } catch (err) {
      this.upgrading = false;
      this.terminate('tls-failed', err);
      throw err;
    }
  }

  /**
   * Server side: wraps the socket (synchronously) and starts the handshake; {@link UPGRADE_LISTENER} hears its end.
   * The TLS socket's `'error'` and `'close'` go to this connection's own listeners, which hand them to the pending
   * handshake ({@link onSocketError}, {@link socketClosed}).
   */
  private startServerTls<A>(security: ServerSecurity, owner: UpgradeOwner<A>, arg: A, hello?: ClientHelloSummary): void {
    const plain = this.socket;
    const handshake = startServerHandshake(plain, security, this, Connection.UPGRADE_LISTENER, this, hello, this.alpnProtocols);
    const tlsSocket = handshake.tlsSocket;
    this.handshake = handshake;
    this.upgradeOwner = owner as UpgradeOwner<unknown>;
    this.upgradeArg = arg;
    this.plainSocket = plain;
    this.socket = tlsSocket;
    this.onTlsError ??= this.tlsSocketError.bind(this);
    tlsSocket.on('error', this.onTlsError);
    tlsSocket.on('close', this.onClose);
    this.watched = tlsSocket;
  }

  private upgradeOwner?: UpgradeOwner<unknown>;
  private upgradeArg?: unknown;

  /** How the server handshake of {@link startServerTls} ends; one object for every connection. */
  private static readonly UPGRADE_LISTENER: ServerHandshakeListener<Connection> = {
    serverHandshakeDone(c: Connection, facts: TlsFacts): void {
      const owner = c.upgradeOwner!;
      const arg = c.upgradeArg;
      c.handshake = c.upgradeOwner = c.upgradeArg = undefined;
      try {
        c.secured(facts);
      } catch (err) {
        c.upgrading = false;
        c.terminate('tls-failed', err);
        owner.connectionNotSecured(c, err, arg);
        return;
      }
      owner.connectionSecured(c, arg);
    },
    serverHandshakeFailed(c: Connection, err: unknown): void {
      const owner = c.upgradeOwner!;
      const arg = c.upgradeArg;
      c.handshake = c.upgradeOwner = c.upgradeArg = undefined;
      c.upgrading = false;
      c.terminate('tls-failed', err);
      owner.connectionNotSecured(c, err, arg);
    },
  };

  /** The handshake succeeded and the policy accepted the peer: the TLS socket becomes the connection's socket. */
  private secured(facts: TlsFacts): void {
    const tlsSocket = this.socket;
    this.securityState = {
      tls: true,
      protocol: facts.protocol,
      cipher: facts.cipher,
      sni: facts.sni,
      peerCertificate: facts.peerCertificate,
      chain: facts.chain,
      policyErrors: facts.policyErrors,
      alpnProtocol: facts.alpnProtocol,
    };
    this.upgrading = false;
    this.attach(tlsSocket);
    if (this.idleMs > 0) tlsSocket.setTimeout(this.idleMs);
    this.log.debug('tls established', { protocol: facts.protocol, cipher: facts.cipher, sni: facts.sni, policyErrors: facts.policyErrors });
    this.emit('secured', this.securityState);
  }

  private terminate(reason: CloseReason, err: unknown): void {
    const e = err as TlsHandshakeError;
    if (e.reason === 'acme-challenge') this.log.info('acme tls-alpn-01 validation answered');
    else {
      this.log.warn('tls handshake failed', { reason: e.reason ?? 'protocol', code: e.code, error: e.message });
      this.emit('tls-failed', e.reason ?? 'protocol');
    }
    this.closeReason ??= reason;
    this.socket.destroy();
    this.watchClose(this.socket);
  }

  /** The client side's close listener on its TLS socket (made by the first {@link finishUpgrade}). */
  private onPlainRelease?: () => void;

  /**
   * The error listener of a TLS socket of {@link startServerTls}: as {@link onSocketError}, and during the handshake
   * it fails the handshake (reason `protocol`). Errors of the plaintext socket under it are only logged meanwhile.
   */
  private tlsSocketError(err: NodeJS.ErrnoException): void {
    this.onSocketError(err);
    if (this.handshake?.pending) this.handshake.socketError(err);
  }
  private onTlsError?: (err: NodeJS.ErrnoException) => void;
}
