import net from 'node:net';
import { inject, injectable, preDestroy, type ServiceIdentifier } from 'inversify';
import { Logger } from '../log/logger.js';
import { Connection, type CloseReason } from './connection.js';
import type { ServerSecurity } from './server-security.js';
import { TlsHandshakeError } from './tls-errors.js';

/**
 * The protocol spoken on a listener. `TcpServer` accepts, optionally performs the implicit-TLS handshake,
 * then hands the connection over. Bind your own to serve your own protocol.
 */
export interface ConnectionHandler {
  /** Runs one session. Called once per accepted (and, on implicit-TLS listeners, secured) connection. The returned promise settling is not awaited for anything but error logging. */
  handle(connection: Connection, listener: ListenerInfo): void | Promise<void>;
  /** Called instead of `handle` when the listener is full: write a refusal line (e.g. `421`) if the protocol has one. The server closes the connection afterwards. */
  refuse?(connection: Connection, listener: ListenerInfo): void;
  /**
   * Implicit-TLS listeners only: asked right after accept, before the handshake. Returning false aborts it (the
   * connection is dropped before any TLS record is answered): fault injection's `tls-abort`.
   */
  beforeHandshake?(connection: Connection, listener: ListenerInfo): boolean;
  /** Called for each live session when the server closes: say goodbye (e.g. `421 shutting down`) and close. The server destroys what is left after the grace period. */
  shutdown?(connection: Connection): void | Promise<void>;
}
/** DI token for {@link ConnectionHandler}. */
export const ConnectionHandler = Symbol.for('postern.ConnectionHandler') as ServiceIdentifier<ConnectionHandler>;

/** Listener configuration. */
export interface TcpServerOptions {
  /** Name for logs and ready lines (`smtp`, `imaps`, …). */
  name?: string;
  /** Address to bind, default `127.0.0.1`; `::1`, `::`, `0.0.0.0` work too. */
  host?: string;
  /** Port, default 0 (any free port; read it back from {@link TcpServer.address}). */
  port?: number;
  /** When set, the listener speaks implicit TLS (RFC 8314): the handshake runs right after accept. */
  security?: ServerSecurity;
  /** Concurrent connections allowed; further ones are refused through `ConnectionHandler.refuse`. Default 1000. */
  maxConnections?: number;
  /** Idle timeout set on every connection before the handler runs (ms, 0 = none). Protocols usually set their own. */
  idleTimeoutMs?: number;
  /** How long `close()` lets live sessions finish before destroying them (ms). Default 5 s. */
  closeTimeoutMs?: number;
}
/** DI token for {@link TcpServerOptions}. */
export const TcpServerOptions = Symbol.for('postern.TcpServerOptions') as ServiceIdentifier<TcpServerOptions>;

/** What a handler learns about the listener a connection arrived on. */
export interface ListenerInfo {
  readonly name: string;
  /** True on an implicit-TLS listener. */
  readonly implicitTls: boolean;
  readonly port: number;
}

/** Default connection ceiling: enough for a busy test run, small enough to bound memory (a few KB each). */
export const MAX_CONNECTIONS = 1000;
/** Default time `close()` waits for sessions to say goodbye. */
export const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Accepts TCP connections on one address and hands each to a {@link ConnectionHandler}.
 *
 * Constructing it does nothing; `start()` listens, `close()` stops (idempotent, also on container
 * `@preDestroy`). Several instances live happily in one process, one per listener.
 */
@injectable()
export class TcpServer {
  private server?: net.Server;
  private readonly live = new Set<Connection>();
  private closing?: Promise<void>;
  private readonly log: Logger;

  constructor(
    @inject(ConnectionHandler) private readonly handler: ConnectionHandler,
    @inject(TcpServerOptions) readonly options: TcpServerOptions,
    @inject(Logger) log: Logger,
  ) {
    this.log = log.child({ listener: options.name ?? 'tcp' });
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
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err); // EADDRINUSE and friends: the caller's to report
      server.once('error', onError);
      server.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 0 }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error('listener error', { error: err.message }));
    this.server = server;
    const addr = this.address();
    this.log.info('listening', { host: addr.address, port: addr.port, tls: this.options.security ? 'implicit' : 'none' });
    return addr;
  }

  /** The bound address (after `start()`). */
  address(): net.AddressInfo {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error(`listener ${this.name} is not started`);
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
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
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

  private accept(socket: net.Socket): void {
    // Attach the error listener before anything else can fail (STYLE §6).
    socket.on('error', () => undefined);
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this.log, { proto: this.name });
    const info: ListenerInfo = { name: this.name, implicitTls: this.options.security !== undefined, port: conn.localPort };
    const max = this.options.maxConnections ?? MAX_CONNECTIONS;
    if (this.live.size >= max) {
      this.log.warn('connection refused: listener full', { cid: conn.id, max });
      try {
        this.handler.refuse?.(conn, info);
      } finally {
        void conn.close('refused');
      }
      return;
    }
    this.live.add(conn);
    conn.once('close', (reason: CloseReason) => {
      this.live.delete(conn);
      conn.log.info('connection closed', { reason });
    });
    conn.log.info('connection accepted');
    if (this.options.idleTimeoutMs) conn.setIdleTimeout(this.options.idleTimeoutMs);
    void this.run(conn, info);
  }

  private async run(conn: Connection, info: ListenerInfo): Promise<void> {
    try {
      if (this.options.security) {
        if (this.handler.beforeHandshake?.(conn, info) === false) {
          conn.log.info('tls handshake aborted by fault injection');
          conn.destroy('tls-failed');
          return;
        }
        await conn.authenticateAsServer(this.options.security);
      }
      await this.handler.handle(conn, info);
    } catch (err) {
      if (err instanceof TlsHandshakeError) return; // logged by the connection, which is closed already
      conn.log.error('connection handler failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      conn.destroy('error');
    }
  }
}
