import { EventEmitter } from 'node:events';
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { inject, injectable, optional, preDestroy } from '../vendor/inversify.js';
import { Logger } from '../log/logger.js';
import { Connection, type CloseReason, type ConnectionOptions, type UpgradeOwner } from './connection.js';
import { PROXY_HEADER_TIMEOUT_MS, ProxyHeaderError, readProxyHeader } from './proxy-header-reader.js';
import { ProxyTrust } from './proxy-protocol.js';
import { FdMonitor } from './fd-monitor.js';
import { ConnectionLimits, ConnectionLimitsToken, MAX_CONNECTIONS_PER_ADDRESS, type RefusalReason } from './connection-limits.js';
import { TlsHandshakeError } from './tls-errors.js';

import {
  ACCEPT_ERROR_BACKOFF_MS,
  CLOSE_TIMEOUT_MS,
  ConnectionHandler,
  MAX_CONNECTIONS,
  MAX_REFUSAL_HANDSHAKES,
  REFUSAL_LOG_INTERVAL_MS,
  TcpServerOptions,
  type ListenerInfo,
  type TcpServerEvents,
} from './tcp-server-options.js';

// Everything a listener is made from, for importers of this module.
export * from './tcp-server-options.js';

/**
 * Accepts TCP connections on one address and hands each to a {@link ConnectionHandler}.
 *
 * Constructing it does nothing; `start()` listens, `close()` stops (idempotent, also on container
 * `@preDestroy`). Several instances live happily in one process, one per listener.
 */
@injectable()
export class TcpServer extends EventEmitter<TcpServerEvents> {
  private server?: net.Server;
  private readonly live = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private refusalHandshakes = 0;
  private readonly refusalLog = new Map<string, { at: number; folded: number }>();
  private acceptErrors = { count: 0, backoffMs: 0, lastWarn: 0 };
  private closing?: Promise<void>;
  private readonly log: Logger;
  private readonly limits: ConnectionLimits;
  /** Sockets still sending their PROXY header (not yet Connections). */
  private readonly pending = new Set<net.Socket>();
  private readonly proxyTrust?: ProxyTrust;
  private connectionMeta?: Readonly<Record<string, unknown>>;
  private directOptions?: ConnectionOptions;

  /**
   * @param limits process-wide caps shared with the other listeners; a private, default-capped one when absent.
   */
  constructor(
    @inject(ConnectionHandler) private readonly handler: ConnectionHandler,
    @inject(TcpServerOptions) readonly options: TcpServerOptions,
    @inject(Logger) log: Logger,
    @inject(ConnectionLimitsToken) @optional() limits?: ConnectionLimits,
  ) {
    super();
    this.log = log.child({ listener: options.name ?? 'tcp' });
    this.limits = limits ?? new ConnectionLimits();
    // Fails at construction (container resolution), before anything listens.
    if (options.proxyProtocol) this.proxyTrust = new ProxyTrust(options.proxyProtocol.trusted);
  }

  /** Name used in logs. */
  get name(): string {
    return this.options.name ?? 'tcp';
  }

  /** True on an implicit-TLS listener (RFC 8314): TLS starts at connect. */
  get implicitTls(): boolean {
    return this.options.security !== undefined;
  }

  /** Live connections (read-only view). */
  get connections(): ReadonlySet<Connection> {
    return this.live;
  }

  /**
   * Prepares TLS material (if any) and starts listening.
   * @throws CertificateError for bad TLS material; the `listen` error (e.g. EADDRINUSE) when the port is taken.
   */
  async start(): Promise<net.AddressInfo> {
    if (this.server) return this.address();
    await this.options.security?.prepare();
    await this.handler.prepare?.();
    if (this.options.path !== undefined) await removeStaleSocket(this.options.path);
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err); // EADDRINUSE and friends: the caller's to report
      server.once('error', onError);
      const at = this.options.path !== undefined ? { path: this.options.path } : { host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 0 };
      server.listen(at, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err: NodeJS.ErrnoException) => this.onAcceptError(err));
    this.server = server;
    if (this.options.path !== undefined && this.options.pathMode !== undefined) await chmod(this.options.path, this.options.pathMode);
    const addr = this.address();
    this.log.info('listening', { host: addr.address, port: addr.port, tls: this.options.security ? 'implicit' : 'none', proxyProtocol: this.proxyTrust ? this.proxyTrust.cidrs.join(',') : undefined });
    FdMonitor.acquire(this, this.log);
    return addr;
  }

  /** The bound address (after `start()`). */
  address(): net.AddressInfo {
    const a = this.server?.address();
    if (!a) throw new Error(`listener ${this.name} is not started`);
    // A Unix socket listener: its path stands for the address, with port 0.
    if (typeof a === 'string') return { address: a, family: 'unix', port: 0 };
    return a;
  }

  /**
   * Stops accepting, asks each live session to finish (`ConnectionHandler.shutdown`), waits up to
   * `closeTimeoutMs`, then destroys what is left. Idempotent; resolves when every socket is closed.
   */
  @preDestroy()
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const server = this.server;
    if (!server) return;
    FdMonitor.release(this);
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.pending) socket.destroy(); // no session yet: nobody to say goodbye to
    const sessions = [...this.live].map(async (c) => {
      try {
        if (this.handler.shutdown) await this.handler.shutdown(c);
        else await c.close('server-shutdown');
      } catch (err) {
        this.log.error('shutdown hook failed', { cid: c.id, error: (err as Error).message, stack: (err as Error).stack });
        c.destroy('server-shutdown');
      }
    });
    const grace = this.options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(sessions), new Promise<void>((r) => (timer = setTimeout(r, grace)))]);
    clearTimeout(timer);
    // Destroy what is left and wait for each Connection's own 'close' (it can trail the socket's, e.g. when a
    // handshake in progress has to fail first), so that nothing is live once close() resolves.
    const left = [...this.live].map((c) => new Promise<void>((r) => c.once('close', () => r())));
    for (const c of this.live) c.destroy('server-shutdown');
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(left), new Promise<void>((r) => (bound = setTimeout(r, 2_000)))]);
    clearTimeout(bound);
    await stopped;
    this.log.info('closed');
  }

  /**
   * An accept failed. Out of file descriptors (EMFILE/ENFILE) is an operator's problem, not our bug: warned with a
   * growing pause between warnings, and accepting resumes by itself as soon as descriptors are free again. Usually
   * libuv does not even report it — it closes the connections it cannot hand over (its reserve-descriptor trick), so
   * those clients see a close rather than a silent wait — which is why {@link FdMonitor} also watches the count.
   */
  private onAcceptError(err: NodeJS.ErrnoException): void {
    if (err.code !== 'EMFILE' && err.code !== 'ENFILE') {
      this.log.error('listener error', { error: err.message, code: err.code });
      return;
    }
    const now = Date.now();
    const e = this.acceptErrors;
    e.count++;
    if (now - e.lastWarn < e.backoffMs) return;
    this.log.warn('accept failed: out of file descriptors', { code: err.code, failures: e.count, live: this.live.size, nextWarnMs: e.backoffMs });
    e.backoffMs = e.backoffMs === 0 ? ACCEPT_ERROR_BACKOFF_MS.first : Math.min(e.backoffMs * 2, ACCEPT_ERROR_BACKOFF_MS.max);
    e.lastWarn = now;
  }

  /** Accept failures for lack of file descriptors since start (diagnostics). */
  get acceptFailures(): number {
    return this.acceptErrors.count;
  }

  /** Which cap, if any, refuses one more connection from `address`; takes the shared slot when none does. */
  private admit(address: string): { release: () => void } | { refused: RefusalReason; max: number } {
    const max = this.options.maxConnections ?? MAX_CONNECTIONS;
    if (max > 0 && this.live.size >= max) return { refused: 'listener-full', max };
    const perAddress = this.options.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS;
    if (perAddress > 0 && (this.perAddress.get(address) ?? 0) >= perAddress) return { refused: 'address-limit', max: perAddress };
    return this.limits.acquire(address);
  }

  private accept(socket: net.Socket): void {
    // Attach the error listener before anything else can fail (STYLE §6).
    socket.on('error', ignoreError);
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.proxyTrust) void this.acceptProxied(socket, this.proxyTrust);
    else this.startSession(socket, {});
  }

  /**
   * PROXY protocol: only trusted peers may speak, and only after a complete, valid header within the deadline.
   * Everything else is closed before any byte is written (no greeting), logged at warn. The connection caps then
   * apply to the client address the header names.
   */
  private async acceptProxied(socket: net.Socket, trust: ProxyTrust): Promise<void> {
    const peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    const max = this.options.maxConnections ?? MAX_CONNECTIONS;
    if (!trust.isTrusted(socket.remoteAddress)) {
      this.log.warn('connection refused: peer is not a trusted proxy', { peer });
      socket.destroy();
      return;
    }
    if (max > 0 && this.pending.size >= max) {
      this.log.warn('connection refused: too many pending PROXY headers', { peer, max });
      socket.destroy();
      return;
    }
    this.pending.add(socket);
    const forget = (): boolean => this.pending.delete(socket);
    socket.once('close', forget);
    try {
      const header = await readProxyHeader(socket, this.options.proxyProtocol?.headerTimeoutMs ?? PROXY_HEADER_TIMEOUT_MS);
      this.pending.delete(socket);
      socket.off('close', forget);
      if (this.closing || socket.destroyed) {
        socket.destroy();
        return;
      }
      this.startSession(socket, header.command === 'proxy' && header.source ? { proxied: { source: header.source, destination: header.destination } } : {});
    } catch (err) {
      const reason = err instanceof ProxyHeaderError ? err.reason : 'error';
      this.log.warn('connection refused: bad PROXY header', { peer, reason, error: (err as Error).message });
      closeQuietly(socket);
    }
  }

  /** Makes the Connection, applies the caps (to the proxied client address when there is one) and runs the handler. */
  private startSession(socket: net.Socket, options: ConnectionOptions): void {
    const realLocalPort = socket.localPort ?? 0;
    // The same meta and options objects for every direct connection (issue 15: allocation per connection).
    this.connectionMeta ??= { proto: this.name };
    this.directOptions ??= { idPrefix: this.options.connectionIdPrefix, secureAtOnce: this.options.security !== undefined, alpnProtocols: this.handler.alpnProtocols };
    const connectionOptions = options.proxied ? { ...this.directOptions, ...options } : this.directOptions;
    const conn = new Connection(socket, this.log, this.connectionMeta, connectionOptions);
    const info = this.listenerInfo(realLocalPort);
    const address = conn.remoteAddress;
    const slot = this.admit(address);
    if ('refused' in slot) {
      this.refuse(conn, info, slot.refused, slot.max);
      return;
    }
    this.live.add(conn);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.emit('accepted', conn);
    // A bound method, not a closure per connection (see Connection's listeners for why); `on`, not `once`: a
    // Connection emits 'close' exactly once, and once() would wrap the listener in two more objects.
    conn.on('close', this.connectionClosed.bind(this, conn, address, slot, Date.now()));
    conn.log.debug('connection accepted');
    if (this.options.idleTimeoutMs) conn.setIdleTimeout(this.options.idleTimeoutMs);
    this.run(conn, info);
  }

  private connectionClosed(conn: Connection, address: string, slot: { release: () => void }, startedAt: number, reason: CloseReason): void {
    this.live.delete(conn);
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(address, left);
    else this.perAddress.delete(address);
    slot.release();
    // The one info line of a connection (issue 15): accept and TLS lines are debug; this one sums them up.
    const security = conn.security;
    conn.log.info('connection closed', { reason, tls: security.protocol, cipher: security.cipher, ms: Date.now() - startedAt });
    this.emit('closed', conn, reason);
  }

  private info?: ListenerInfo;
  /** What handlers learn about this listener: one frozen object per port (the same for every connection). */
  private listenerInfo(port: number): ListenerInfo {
    if (this.info?.port !== port) {
      this.info = Object.freeze({
        name: this.name,
        implicitTls: this.options.security !== undefined,
        port,
        preAuthTimeoutMs: this.options.preAuthTimeoutMs,
        commandTimeoutMs: this.options.commandTimeoutMs,
      });
    }
    return this.info;
  }

  /**
   * Refuses a connection over a cap with the protocol's goodbye (`ConnectionHandler.refuse`). On an implicit-TLS
   * listener the goodbye needs TLS, so the handshake is completed first — for at most MAX_REFUSAL_HANDSHAKES
   * connections at a time; past that the connection is simply closed.
   */
  private refuse(conn: Connection, info: ListenerInfo, reason: RefusalReason, max: number): void {
    // A flood must not turn into a log flood: one warn line per address and reason per second, with the count of
    // the refusals folded into it since the last one.
    const key = `${conn.remoteAddress} ${reason}`;
    const now = Date.now();
    const seen = this.refusalLog.get(key);
    if (!seen || now - seen.at >= REFUSAL_LOG_INTERVAL_MS) {
      this.log.warn('connection refused', { cid: conn.id, reason, address: conn.remoteAddress, max, alsoRefused: seen?.folded ?? 0 });
      if (this.refusalLog.size >= 1024) this.refusalLog.clear();
      this.refusalLog.set(key, { at: now, folded: 0 });
    } else seen.folded++;
    this.emit('refused', reason);
    const goodbye = (): void => {
      try {
        this.handler.refuse?.(conn, info);
      } finally {
        void conn.close('refused');
      }
    };
    const security = this.options.security;
    if (!security) return goodbye();
    if (this.refusalHandshakes >= MAX_REFUSAL_HANDSHAKES || !this.handler.refuse) {
      conn.destroy('refused');
      return;
    }
    this.refusalHandshakes++;
    conn.authenticateAsServer(security).then(goodbye, () => undefined).finally(() => this.refusalHandshakes--);
  }

  /**
   * Runs the handler on a connection; on an implicit-TLS listener after the handshake, which reports to
   * {@link implicitTls} rather than through a promise (issue 15: no chain of promises per accepted connection).
   */
  private run(conn: Connection, info: ListenerInfo): void {
    const security = this.options.security;
    if (!security) {
      this.handOver(conn, info);
      return;
    }
    try {
      if (this.handler.beforeHandshake?.(conn, info) === false) {
        conn.log.info('tls handshake aborted by fault injection');
        conn.destroy('tls-failed');
        return;
      }
    } catch (err) {
      this.handlerFailed(conn, err);
      return;
    }
    this.tlsOwner ??= {
      connectionSecured: (c, i) => this.handOver(c, i),
      connectionNotSecured: (c, err) => this.handlerFailed(c, err),
    };
    conn.secureAccepted(security, this.tlsOwner, info);
  }

  /** Hears how the implicit-TLS handshakes of {@link run} end; one object per listener. */
  private tlsOwner?: UpgradeOwner<ListenerInfo>;

  /** Hands a (secured) connection to the handler; a throw or a rejection of its promise closes the connection. */
  private handOver(conn: Connection, info: ListenerInfo): void {
    let running: void | Promise<void>;
    try {
      running = this.handler.handle(conn, info);
    } catch (err) {
      this.handlerFailed(conn, err);
      return;
    }
    if (running !== undefined && running !== null && typeof (running as Promise<void>).then === 'function') {
      (running as Promise<void>).then(undefined, this.handlerFailed.bind(this, conn));
    }
  }

  private handlerFailed(conn: Connection, err: unknown): void {
    if (err instanceof TlsHandshakeError) return; // logged by the connection, which is closed already
    conn.log.error('connection handler failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
    conn.destroy('error');
  }
}

/** The error listener TcpServer puts on every accepted socket first: one function, not a closure per connection. */
function ignoreError(): void {}

/**
 * Closes a socket that never became a session: FIN after discarding whatever the peer still sends (an unread
 * receive buffer would turn the close into a reset), destroyed if the peer does not close within 2 s.
 */
function closeQuietly(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.on('data', () => undefined);
  socket.resume();
  socket.end();
  const t = setTimeout(() => socket.destroy(), 2_000);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}

/**
 * Before listening on a Unix socket path: removes a socket file left by a process that is gone (connecting to it is
 * refused). A live socket or any other kind of file is left alone; `listen` then fails with EADDRINUSE.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat?.isSocket()) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!alive) await unlink(path).catch(() => undefined);
}
