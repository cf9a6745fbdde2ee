import type net from 'node:net';
import type { Logger } from '../log/logger.js';
import { Connection, type CloseReason, type ConnectionOptions, type UpgradeOwner } from './connection.js';
import { MAX_CONNECTIONS_PER_ADDRESS, type ConnectionLimits, type RefusalReason } from './connection-limits.js';
import { TlsHandshakeError } from './tls-errors.js';
import type { TcpServer } from './tcp-server.js';
import { CLOSE_TIMEOUT_MS, MAX_CONNECTIONS, MAX_REFUSAL_HANDSHAKES, REFUSAL_LOG_INTERVAL_MS, type ConnectionHandler, type ListenerInfo } from './tcp-server-options.js';

/**
 * The sessions of one {@link TcpServer}: from an accepted (and, with PROXY protocol, introduced) socket to a
 * Connection run by the {@link ConnectionHandler}, with the connection caps and refusals on the way, until the
 * Connection closes. The server owns the listening socket and everything before a Connection exists; this owns the
 * live Connections. Made by the server's constructor; {@link shutdown} is the server's `close()`.
 */
export class ListenerSessions {
  private readonly live = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private refusalHandshakes = 0;
  private readonly refusalLog = new Map<string, { at: number; folded: number }>();
  private connectionMeta?: Readonly<Record<string, unknown>>;
  private directOptions?: ConnectionOptions;

  /**
   * @param server the listener: its `options` and `name` are read as each connection needs them, and its events
   *   (`accepted`, `refused`, `closed`) are emitted on it.
   * @param limits the process-wide caps, shared with the other listeners.
   */
  constructor(
    private readonly server: TcpServer,
    private readonly handler: ConnectionHandler,
    private readonly log: Logger,
    private readonly limits: ConnectionLimits,
  ) {}

  /** Live connections (read-only view). */
  get connections(): ReadonlySet<Connection> {
    return this.live;
  }

  /** Which cap, if any, refuses one more connection from `address`; takes the shared slot when none does. */
  private admit(address: string): { release: () => void } | { refused: RefusalReason; max: number } {
    const options = this.server.options;
    const max = options.maxConnections ?? MAX_CONNECTIONS;
    if (max > 0 && this.live.size >= max) return { refused: 'listener-full', max };
    const perAddress = options.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS;
    if (perAddress > 0 && (this.perAddress.get(address) ?? 0) >= perAddress) return { refused: 'address-limit', max: perAddress };
    return this.limits.acquire(address);
  }

  /** Makes the Connection, applies the caps (to the proxied client address when there is one) and runs the handler. */
  start(socket: net.Socket, options: ConnectionOptions): void {
    const server = this.server;
    const realLocalPort = socket.localPort ?? 0;
    // The same meta and options objects for every direct connection (issue 15: allocation per connection).
    this.connectionMeta ??= { proto: server.name };
    this.directOptions ??= { idPrefix: server.options.connectionIdPrefix, secureAtOnce: server.options.security !== undefined, alpnProtocols: this.handler.alpnProtocols };
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
    server.emit('accepted', conn);
    // A bound method, not a closure per connection (see Connection's listeners for why); `on`, not `once`: a
    // Connection emits 'close' exactly once, and once() would wrap the listener in two more objects.
    conn.on('close', this.connectionClosed.bind(this, conn, address, slot, Date.now()));
    conn.log.debug('connection accepted');
    if (server.options.idleTimeoutMs) conn.setIdleTimeout(server.options.idleTimeoutMs);
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
    this.server.emit('closed', conn, reason);
  }

  private info?: ListenerInfo;
  /** What handlers learn about this listener: one frozen object per port (the same for every connection). */
  private listenerInfo(port: number): ListenerInfo {
    if (this.info?.port !== port) {
      const options = this.server.options;
      this.info = Object.freeze({
        name: this.server.name,
        implicitTls: options.security !== undefined,
        port,
        preAuthTimeoutMs: options.preAuthTimeoutMs,
        commandTimeoutMs: options.commandTimeoutMs,
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
    this.server.emit('refused', reason);
    const goodbye = (): void => {
      try {
        this.handler.refuse?.(conn, info);
      } finally {
        void conn.close('refused');
      }
    };
    const security = this.server.options.security;
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
   * {@link tlsOwner} rather than through a promise (issue 15: no chain of promises per accepted connection).
   */
  private run(conn: Connection, info: ListenerInfo): void {
    const security = this.server.options.security;
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

  /**
   * Asks each live session to finish (`ConnectionHandler.shutdown`, else a close), waits up to the listener's
   * `closeTimeoutMs`, then destroys what is left. Resolves once every Connection has closed (or 2 s after the
   * destroy at the latest). Called by the server's `close()`, after it stopped accepting.
   */
  async shutdown(): Promise<void> {
    const sessions = [...this.live].map(async (c) => {
      try {
        if (this.handler.shutdown) await this.handler.shutdown(c);
        else await c.close('server-shutdown');
      } catch (err) {
        this.log.error('shutdown hook failed', { cid: c.id, error: (err as Error).message, stack: (err as Error).stack });
        c.destroy('server-shutdown');
      }
    });
    const grace = this.server.options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
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
  }
}
