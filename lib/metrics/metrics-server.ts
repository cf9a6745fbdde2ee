import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { MetricsSource } from './cluster-metrics.js';

/**
 * A plain-HTTP listener that serves a prom-client registry (or another {@link MetricsSource}, such as the sum of a
 * cluster's workers) at `GET /metrics` (Prometheus text format) and
 * nothing else (404; 405 for other methods). The `postern` command starts one with `--metrics-port`; bind it to
 * loopback (the default) or put it behind your own access control: metrics name listeners, mechanisms and load.
 * `start()` listens, `close()` stops (idempotent).
 */
export class MetricsServer {
  private server?: http.Server;

  constructor(
    private readonly registry: MetricsSource,
    private readonly log: Logger,
    private readonly options: { host?: string; port?: number } = {},
  ) {}

  /** Starts listening. @throws the listen error (EADDRINUSE…). */
  async start(): Promise<AddressInfo> {
    if (this.server) return this.address();
    const { createServer } = await import('node:http'); // loaded here, not at `import 'postern'`
    const server = createServer((req, res) => void this.serve(req, res));
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error('metrics listener error', { error: err.message }));
    this.server = server;
    const addr = this.address();
    this.log.info('metrics listening', { host: addr.address, port: addr.port });
    return addr;
  }

  /** The bound address (after `start()`). */
  address(): AddressInfo {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error('metrics listener is not started');
    return a;
  }

  /** Stops listening and closes idle keep-alive connections. Idempotent. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    try {
      const body = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      this.log.error('metrics collection failed', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
    }
  }
}
