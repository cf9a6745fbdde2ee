import { EventEmitter } from 'node:events';
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { inject, injectable, optional, preDestroy } from '../vendor/inversify.js';
import { Logger } from '../log/logger.js';
import type { Connection } from './connection.js';
import { PROXY_HEADER_TIMEOUT_MS, ProxyHeaderError, readProxyHeader } from './proxy-header-reader.js';
import { ProxyTrust } from './proxy-protocol.js';
import { FdMonitor } from './fd-monitor.js';
import { ConnectionLimits, ConnectionLimitsToken } from './connection-limits.js';
import { ListenerSessions } from './listener-sessions.js';

import { ACCEPT_ERROR_BACKOFF_MS, ConnectionHandler, MAX_CONNECTIONS, TcpServerOptions, type TcpServerEvents } from './tcp-server-options.js';

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
  private acceptErrors = { count: 0, backoffMs: 0, lastWarn: 0 };
  private closing?: Promise<void>;
  private readonly log: Logger;
  /** The Connections made from accepted sockets, from the caps to their close. */
  private readonly sessions: ListenerSessions;
  /** Sockets still sending their PROXY header (not yet Connections). */
  private readonly pending = new Set<net.Socket>();
  private readonly proxyTrust?: ProxyTrust;

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
    this.sessions = new ListenerSessions(this, handler, this.log, limits ?? new ConnectionLimits());
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
    return this.sessions.connections;
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
    await this.sessions.shutdown();
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
    this.log.warn('accept failed: out of file descriptors', { code: err.code, failures: e.count, live: this.sessions.connections.size, nextWarnMs: e.backoffMs });
    e.backoffMs = e.backoffMs === 0 ? ACCEPT_ERROR_BACKOFF_MS.first : Math.min(e.backoffMs * 2, ACCEPT_ERROR_BACKOFF_MS.max);
    e.lastWarn = now;
  }

  /** Accept failures for lack of file descriptors since start (diagnostics). */
  get acceptFailures(): number {
    return this.acceptErrors.count;
  }

  private accept(socket: net.Socket): void {
    // Attach the error listener before anything else can fail (STYLE §6).
    socket.on('error', ignoreError);
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.proxyTrust) void this.acceptProxied(socket, this.proxyTrust);
    else this.sessions.start(socket, {});
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
      this.sessions.start(socket, header.command === 'proxy' && header.source ? { proxied: { source: header.source, destination: header.destination } } : {});
    } catch (err) {
      const reason = err instanceof ProxyHeaderError ? err.reason : 'error';
      this.log.warn('connection refused: bad PROXY header', { peer, reason, error: (err as Error).message });
      closeQuietly(socket);
    }
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
