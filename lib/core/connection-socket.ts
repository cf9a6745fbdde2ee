/**
 * The socket side of a {@link Connection} (its base class): the identity and log of the connection, the current
 * socket (plaintext, then TLS) with the read, idle, drain, error and close listeners bound once per connection,
 * writing with backpressure, pause/resume, the idle timeout, and the close that is emitted exactly once. It holds the
 * state that the TLS upgrade and COMPRESS=DEFLATE change (the socket, the security state, the pending handshake, the
 * inflater and deflater); `Connection` in `connection.ts` adds the methods that start them.
 */
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { Logger } from '../log/logger.js';
import type { CloseReason, ConnectionEvents, ConnectionOptions, SecurityState } from './connection-options.js';
import { SslPolicyErrors } from './policy-errors.js';
import type { ServerHandshake } from './tls-upgrade.js';

let nextId = 1;

/** Socket write buffer above which a compressed write reports backpressure (as `socket.write` would). */
const COMPRESSED_WRITE_HIGH_WATER = 64 * 1024;

let zlibModule: typeof Zlib | undefined;
/** node:zlib, loaded by the first {@link Connection.startCompression} (IMAP COMPRESS) rather than at `import 'postern'`. */
export function loadZlib(): typeof Zlib {
  zlibModule ??= createRequire(import.meta.url)('node:zlib') as typeof Zlib;
  return zlibModule;
}

/**
 * The base class of {@link Connection}: all of it but the TLS upgrade and the start of COMPRESS=DEFLATE. Its
 * constructor is `Connection`'s (`new Connection(socket, log, meta, options)`).
 */
export abstract class ConnectionSocket extends EventEmitter<ConnectionEvents> {
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
  protected socket: net.Socket;
  protected securityState: SecurityState = { tls: false, policyErrors: SslPolicyErrors.None };
  protected closeReason?: CloseReason;
  protected upgrading = false;
  protected idleMs = 0;
  // The socket listeners are prototype methods bound once per connection, not arrow closures: V8 keeps the optimized
  // code of a closure only while a closure that ran it is alive, so per-connection closures (above all those that
  // have not run yet when a full collection comes, such as a close listener) were recompiled again and again (issue 15).
  protected readonly onData = this.forwardData.bind(this);
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

  protected userPaused = false;
  protected inflater?: Zlib.InflateRaw;
  protected deflater?: Zlib.DeflateRaw;

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
    // Only the socket whose listeners are attached can time out usefully. Before an implicit-TLS handshake and during
    // an upgrade the plaintext socket has no timeout listener, and `secured` arms the TLS socket with `idleMs` (issue
    // 15: an implicit-TLS connection made and cleared a timer on its plaintext socket for nothing).
    if (this.attachedTo === this.socket) this.socket.setTimeout(ms);
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

  /**
   * Makes sure `'close'` is emitted for `socket`. A socket can close while nobody listens (a peer resetting
   * mid-handshake, or during an async validation callback); without this the Connection would never emit
   * `'close'` and TcpServer would keep counting it as live.
   */
  protected watchClose(socket: net.Socket): void {
    if (socket.closed) this.markClosed(this.closeReason ?? 'peer-closed');
    else if (this.watched !== socket) {
      socket.on('close', this.onClose);
      this.watched = socket;
    }
  }

  /** The socket {@link onClose} listens to (a field rather than a search of the socket's listeners). */
  protected watched?: net.Socket;

  /** Adds the read, idle and drain listeners and the close watch; the socket has the error listener already. */
  protected attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    this.attachedTo = socket;
    this.watchClose(socket);
  }

  /** The socket {@link attach} put the read, idle and drain listeners on (until {@link detach}). */
  private attachedTo?: net.Socket;

  protected detach(socket: net.Socket): void {
    if (this.attachedTo === socket) {
      socket.off('data', this.onData);
      socket.off('timeout', this.onTimeout);
      socket.off('drain', this.onDrain);
      this.attachedTo = undefined;
      if (this.idleMs > 0) socket.setTimeout(0);
    }
    if (this.watched === socket) {
      socket.off('close', this.onClose);
      this.watched = undefined;
    }
  }

  protected readonly onError = this.onSocketError.bind(this);
  private readonly onTimeout = this.timedOut.bind(this);
  private readonly onDrain = this.drainedOut.bind(this);
  protected readonly onClose = this.socketClosed.bind(this);

  private timedOut(): void {
    if (this.listenerCount('timeout') > 0) this.emit('timeout');
    else this.destroy('idle-timeout');
  }

  private drainedOut(): void {
    this.emit('drain');
  }

  /** The pending server handshake (`Connection`'s upgrade sets it), told when the TLS socket closes. */
  protected handshake?: ServerHandshake;
  /** The plaintext socket under the TLS one: destroyed once the TLS socket closed. */
  protected plainSocket?: net.Socket;

  private socketClosed(): void {
    this.releasePlain();
    // During a server handshake the close fails the handshake, which closes with reason `tls-failed`.
    if (this.handshake?.pending) this.handshake.socketClosed();
    // During an async validation callback nobody is told yet: the upgrade's end sees the closed socket.
    else if (!this.upgrading) this.markClosed(this.closeReason ?? 'peer-closed');
  }

  /** Once the TLS socket closed: destroys the plaintext socket under it (its handle is closed with the TLS one). */
  protected releasePlain(): void {
    const plain = this.plainSocket;
    if (plain && !plain.destroyed) plain.destroy();
  }

  protected onSocketError(err: NodeJS.ErrnoException): void {
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
function destroyCurrentSocket(c: ConnectionSocket): void {
  c.destroy();
}
