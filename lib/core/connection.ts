import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { EventEmitter } from 'node:events';
import type { X509Certificate } from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../log/logger.js';
import type { ClientSecurity } from './client-security.js';
import { SslPolicyErrors, type X509Chain } from './policy-errors.js';
import type { ServerSecurity } from './server-security.js';
import { peekClientHello, type ClientHelloSummary } from './client-hello.js';
import { clientHandshake, startServerHandshake, type ServerHandshake, type ServerHandshakeListener, type TlsFacts } from './tls-upgrade.js';
import { TlsHandshakeError } from './tls-errors.js';

/** The security state of a connection: one record, never a pile of booleans. */
export interface SecurityState {
  /** True once a TLS handshake succeeded and the policy accepted the peer. */
  readonly tls: boolean;
  readonly protocol?: string;
  readonly cipher?: string;
  /** SNI server name the client asked for (server side) or the target host (client side). */
  readonly sni?: string;
  /** The peer's certificate (a client certificate on the server side). */
  readonly peerCertificate?: X509Certificate;
  /** The peer's chain with statuses. */
  readonly chain?: X509Chain;
  /** Policy errors the validation saw (accepted ones included). */
  readonly policyErrors: SslPolicyErrors;
  /** The ALPN protocol id negotiated (`imap`, `smtp`…), if the client offered one the listener speaks. */
  readonly alpnProtocol?: string;
}

/** Why a connection closed. */
export type CloseReason = 'peer-closed' | 'closed' | 'idle-timeout' | 'error' | 'tls-failed' | 'server-shutdown' | 'refused';

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  data: [chunk: Buffer];
  /** The idle timer fired. Without a listener the connection closes itself with reason `idle-timeout`. */
  timeout: [];
  /** Emitted exactly once. */
  close: [reason: CloseReason];
  /** A TLS handshake succeeded (implicit TLS or STARTTLS) and the policy accepted the peer. */
  secured: [security: SecurityState];
  /** A TLS handshake failed; `reason` is the `TlsHandshakeError` reason. */
  'tls-failed': [reason: string];
  drain: [];
}

let nextId = 1;

/**
 * @internal Who hears how a server-side upgrade started by {@link Connection.secureAccepted} ended: `TcpServer`'s
 * implicit-TLS accept path (no promise per connection, issue 15), and {@link Connection.authenticateAsServer}'s promise.
 */
export interface UpgradeOwner<A> {
  connectionSecured(connection: Connection, arg: A): void;
  /** The upgrade failed; the connection is closed (reason `tls-failed`) or closing by then, except when `prepare()` failed. */
  connectionNotSecured(connection: Connection, err: unknown, arg: A): void;
}

/** {@link Connection.authenticateAsServer}'s promise as an {@link UpgradeOwner}. */
const SETTLE_PROMISE: UpgradeOwner<{ resolve: () => void; reject: (err: unknown) => void }> = {
  connectionSecured(_connection, settle) {
    settle.resolve();
  },
  connectionNotSecured(_connection, err, settle) {
    settle.reject(err);
  },
};

/** Options of the {@link Connection} constructor. */
export interface ConnectionOptions {
  /** Client side: the host name or address dialled. */
  dialledHost?: string;
  /** Server side: the client's endpoints from a trusted PROXY protocol header (see `TcpServerOptions.proxyProtocol`). */
  proxied?: { readonly source: { address: string; port: number }; readonly destination?: { address: string; port: number } };
  /** Prepended to the id (`w2-` gives `w2-c1f`), so ids stay unique when several processes serve one listener. */
  idPrefix?: string;
  /**
   * The owner calls {@link Connection.authenticateAsServer} (or closes) in the same turn, before any plaintext could
   * be read (an implicit-TLS listener): the plaintext socket then gets only the error listener, not the read, idle
   * and drain listeners the upgrade would remove again at once.
   */
  secureAtOnce?: boolean;
  /**
   * Server side: the ALPN ids of the protocol spoken on this connection (`ConnectionHandler.alpnProtocols`), which
   * {@link authenticateAsServer} and the implicit-TLS accept negotiate unless the `ServerSecurity` sets its own.
   */
  alpnProtocols?: readonly string[];
}

/** Socket write buffer above which a compressed write reports backpressure (as `socket.write` would). */
const COMPRESSED_WRITE_HIGH_WATER = 64 * 1024;

let zlibModule: typeof Zlib | undefined;
/** node:zlib, loaded by the first {@link Connection.startCompression} (IMAP COMPRESS) rather than at `import 'postern'`. */
function loadZlib(): typeof Zlib {
  zlibModule ??= createRequire(import.meta.url)('node:zlib') as typeof Zlib;
  return zlibModule;
}

/**
 * One accepted (or dialled) TCP connection that can be upgraded to TLS in place.
 *
 * Protocol code reads through `'data'` events and writes with {@link write}; it never sees the socket.
 * Created by `TcpServer` (server side) or `TcpClient` (client side); whoever created it closes it when the
 * server or client closes. `close`/`destroy` are idempotent and `'close'` is emitted exactly once.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  /** Process-unique id, present in every log line about this connection (`cid`). */
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The host name or address a client connection was dialled with (set by `TcpClient`); undefined on accepted connections. */
  readonly dialledHost?: string;
  /**
   * The proxy's own address when the client's came from a PROXY protocol header (then `remoteAddress`/`remotePort`
   * are the client's and `localAddress`/`localPort` the address the client dialled); undefined for direct peers.
   */
  readonly proxy?: { readonly address: string; readonly port: number };
  /** Logger with `cid` and `remote` bound. */
  readonly log: Logger;
  /** Server side: the protocol's ALPN ids (`ConnectionOptions.alpnProtocols`); undefined: none negotiated. */
  readonly alpnProtocols?: readonly string[];
  private socket: net.Socket;
  private securityState: SecurityState = { tls: false, policyErrors: SslPolicyErrors.None };
  private closeReason?: CloseReason;
  private upgrading = false;
  private idleMs = 0;
  // The socket listeners are prototype methods bound once per connection, not arrow closures: V8 keeps the optimized
  // code of a closure only while a closure that ran it is alive, so per-connection closures (above all those that
  // have not run yet when a full collection comes, such as a close listener) were recompiled again and again (issue 15).
  private readonly onData = this.forwardData.bind(this);
  private forwardData(chunk: Buffer): void {
    this.emit('data', chunk);
  }

  /**
   * Wraps an already connected socket. Attaches the error listener first, so no socket error reaches the process.
   * `dialledHost` (client side) is the name used to connect; `authenticateAsClient` checks the certificate against it.
   * `proxied` (server side) carries the endpoints a trusted PROXY protocol header named; `idPrefix` makes ids unique
   * across processes (cluster workers).
   */
  constructor(socket: net.Socket, log: Logger, meta: Record<string, unknown> = {}, options: ConnectionOptions = {}) {
    super();
    this.dialledHost = options.dialledHost;
    this.alpnProtocols = options.alpnProtocols;
    this.id = `${options.idPrefix ?? ''}c${(nextId++).toString(36)}`;
    this.socket = socket;
    const via = options.proxied;
    this.remoteAddress = via?.source.address ?? socket.remoteAddress ?? '';
    this.remotePort = via?.source.port ?? socket.remotePort ?? 0;
    // Read at accept, not on first use: once the socket is closed Node no longer knows it, and a backend may read
    // `context.peer` after the close (a lazy read saved one `getsockname` per connection; issue 15, third pass).
    this.localAddress = via?.destination?.address ?? socket.localAddress ?? '';
    this.localPort = via?.destination?.port ?? socket.localPort ?? 0;
    if (via) this.proxy = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    // Built key by key rather than from spreads (issue 15: one object per connection, same key order as before).
    const bound: Record<string, unknown> = { cid: this.id, remote: `${this.remoteAddress}:${this.remotePort}` };
    if (this.proxy) bound.proxy = `${this.proxy.address}:${this.proxy.port}`;
    for (const k in meta) bound[k] = meta[k];
    this.log = log.child(bound);
    socket.setNoDelay(true);
    socket.on('error', this.onError);
    if (options.secureAtOnce) this.watchClose(socket);
    else this.attach(socket);
  }

  /** True after a successful TLS handshake. */
  get isSecure(): boolean {
    return this.securityState.tls;
  }

  /** TLS facts (protocol, cipher, SNI, peer certificate, policy errors). */
  get security(): SecurityState {
    return this.securityState;
  }

  /** True once closed or closing. */
  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Bytes waiting in the socket's write buffer (backpressure). */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  /**
   * Writes bytes to the peer (through TLS when secure). Returns false when the write buffer is full; wait for
   * `'drain'`. Writing after close is ignored.
   */
  write(data: string | Buffer): boolean {
    if (this.closeReason !== undefined || this.socket.destroyed) return false;
    if (this.deflater) {
      this.deflater.write(data);
      // Each write is a complete unit for the peer (a reply): flush it out of the compressor (RFC 4978 §4).
      this.deflater.flush(loadZlib().constants.Z_SYNC_FLUSH);
      return this.socket.writableLength < COMPRESSED_WRITE_HIGH_WATER;
    }
    return this.socket.write(data);
  }

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

  private userPaused = false;
  private inflater?: Zlib.InflateRaw;
  private deflater?: Zlib.DeflateRaw;
  /** The socket's data listener once compressed (bound in {@link startCompression}, not made for every connection). */
  private compressedData(chunk: Buffer): void {
    if (this.inflater && !this.inflater.write(chunk)) this.socket.pause();
  }

  /** Stops `'data'` events (backpressure while a command is processed). */
  pause(): void {
    this.userPaused = true;
    this.socket.pause();
    this.inflater?.pause();
  }

  /** Resumes `'data'` events. */
  resume(): void {
    this.userPaused = false;
    this.inflater?.resume();
    if (!this.upgrading) this.socket.resume();
  }

  /** Sets (or with 0 clears) the idle timeout: `'timeout'` fires after `ms` without traffic either way. */
  setIdleTimeout(ms: number): void {
    this.idleMs = ms;
    this.socket.setTimeout(ms);
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

  /** Half-closes after flushing pending writes; resolves once the socket is fully closed. Idempotent. */
  close(reason: CloseReason = 'closed'): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        this.markClosed(reason);
        resolve();
        return;
      }
      // A peer that never closes its side must not keep us: destroy after a short grace period. Cleared at the close:
      // a pending timer would hold the connection's whole object graph (sockets, session) for the full 2 s, long
      // enough to be promoted to the old generation — at a few thousand connections a second, full GCs for nothing.
      const socket = this.socket;
      const t = setTimeout(destroyCurrentSocket, 2_000, this);
      t.unref();
      socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.closeReason ??= reason;
      // Compressed: the last replies may still be in the deflater; end the socket once it has emitted them.
      if (this.deflater && !this.deflater.writableEnded) {
        this.deflater.once('end', () => socket.end());
        this.deflater.end();
        this.deflater.resume();
      } else socket.end();
    });
  }

  /** Closes at once, dropping unsent data. Idempotent. */
  destroy(reason: CloseReason = 'closed'): void {
    this.closeReason ??= reason;
    this.socket.destroy();
  }

  /** Waits until the write buffer has drained (or the connection closed). */
  async drained(): Promise<void> {
    if (this.socket.writableLength === 0 || this.isClosed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.on('drain', done);
      this.on('close', done);
    });
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

  private handshake?: ServerHandshake;
  private upgradeOwner?: UpgradeOwner<unknown>;
  private upgradeArg?: unknown;
  /** The plaintext socket under the TLS one: destroyed once the TLS socket closed. */
  private plainSocket?: net.Socket;

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

  /**
   * Makes sure `'close'` is emitted for `socket`. A socket can close while nobody listens (a peer resetting
   * mid-handshake, or during an async validation callback); without this the Connection would never emit
   * `'close'` and TcpServer would keep counting it as live.
   */
  private watchClose(socket: net.Socket): void {
    if (socket.closed) this.markClosed(this.closeReason ?? 'peer-closed');
    else if (this.watched !== socket) {
      socket.on('close', this.onClose);
      this.watched = socket;
    }
  }

  /** The socket {@link onClose} listens to (a field rather than a search of the socket's listeners). */
  private watched?: net.Socket;

  /** Adds the read, idle and drain listeners and the close watch; the socket has the error listener already. */
  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    this.watchClose(socket);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('timeout', this.onTimeout);
    socket.off('drain', this.onDrain);
    if (this.watched === socket) {
      socket.off('close', this.onClose);
      this.watched = undefined;
    }
    if (this.idleMs > 0) socket.setTimeout(0);
  }

  private readonly onError = this.onSocketError.bind(this);
  private readonly onTimeout = this.timedOut.bind(this);
  private readonly onDrain = this.drainedOut.bind(this);
  private readonly onClose = this.socketClosed.bind(this);
  /** The client side's close listener on its TLS socket (made by the first {@link finishUpgrade}). */
  private onPlainRelease?: () => void;

  private timedOut(): void {
    if (this.listenerCount('timeout') > 0) this.emit('timeout');
    else this.destroy('idle-timeout');
  }

  private drainedOut(): void {
    this.emit('drain');
  }

  private socketClosed(): void {
    this.releasePlain();
    // During a server handshake the close fails the handshake, which closes with reason `tls-failed`.
    if (this.handshake?.pending) this.handshake.socketClosed();
    // During an async validation callback nobody is told yet: the upgrade's end sees the closed socket.
    else if (!this.upgrading) this.markClosed(this.closeReason ?? 'peer-closed');
  }

  /**
   * The error listener of a TLS socket of {@link startServerTls}: as {@link onSocketError}, and during the handshake
   * it fails the handshake (reason `protocol`). Errors of the plaintext socket under it are only logged meanwhile.
   */
  private tlsSocketError(err: NodeJS.ErrnoException): void {
    this.onSocketError(err);
    if (this.handshake?.pending) this.handshake.socketError(err);
  }
  private onTlsError?: (err: NodeJS.ErrnoException) => void;

  /** Once the TLS socket closed: destroys the plaintext socket under it (its handle is closed with the TLS one). */
  private releasePlain(): void {
    const plain = this.plainSocket;
    if (plain && !plain.destroyed) plain.destroy();
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    // Resets and aborted handshakes are a peer's doing, not our bug.
    this.log.debug('socket error', { code: err.code, error: err.message });
    // During a handshake the upgrade reports the failure itself and closes with reason `tls-failed`.
    if (this.upgrading) return;
    // A stream error destroys its socket, but a TLS error after the handshake (a record that fails to decrypt) is
    // only emitted: without this the connection would sit open, unusable, until its idle timeout.
    this.destroy(err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'peer-closed' : 'error');
  }

  private closeEmitted = false;
  private markClosed(reason: CloseReason): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.closeReason ??= reason;
    this.emit('close', this.closeReason);
  }
}

/**
 * `close()`'s grace timer: destroys whatever socket the connection has by then (plain or TLS). `close()` has set the
 * close reason already, so `destroy()` keeps it. A module-level function, not a closure per close.
 */
function destroyCurrentSocket(c: Connection): void {
  c.destroy();
}

