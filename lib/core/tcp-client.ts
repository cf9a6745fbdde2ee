import net from 'node:net';
import { createLogger, type Logger } from '../log/logger.js';
import { ClientSecurity, type ClientSecurityOptions } from './client-security.js';
import { Connection } from './connection.js';

/** Where and how {@link TcpClient.connect} dials. */
export interface TcpClientOptions {
  host: string;
  port: number;
  /** Connect timeout in ms (default 10 s). */
  connectTimeoutMs?: number;
  /** When set, TLS starts right after connect (implicit TLS); otherwise call `authenticateAsClient` later (STARTTLS). */
  security?: ClientSecurity | ClientSecurityOptions;
  /** Logger for the connection (default: a silent one). */
  log?: Logger;
}

/**
 * The client side of the TLS core: dials a server and returns a {@link Connection} that can be upgraded
 * with `authenticateAsClient`. For tests, proxies and tools. The caller closes the connection.
 */
export class TcpClient {
  /**
   * Connects and, when `security` is given, completes the TLS handshake before resolving.
   * @throws the socket error (ECONNREFUSED…), a timeout Error, or TlsHandshakeError.
   */
  static async connect(options: TcpClientOptions): Promise<Connection> {
    const socket = net.connect({ host: options.host, port: options.port });
    socket.on('error', () => undefined); // Connection attaches its own; this one covers the connect phase
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${options.host}:${options.port} timed out`));
      }, options.connectTimeoutMs ?? 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const conn = new Connection(socket, options.log ?? createLogger({ silent: true }), { side: 'client' }, { dialledHost: options.host });
    if (options.security) {
      const sec = options.security instanceof ClientSecurity ? options.security : new ClientSecurity(options.security);
      await conn.authenticateAsClient(sec, options.host);
    }
    return conn;
  }
}
