import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Chaos } from '../chaos/chaos.js';
import type { MailStore } from '../contracts/mail-store.js';
import type { Listener } from '../di/listener.js';
import type { Logger } from '../log/logger.js';
import type { MetricsSource } from '../metrics/cluster-metrics.js';
import { MessageCatalog } from '../test-double/received-message.js';
import type { HttpOptions } from './http-options.js';

/** What {@link HttpListener} needs. */
export interface HttpListenerDeps {
  readonly store: MailStore;
  readonly chaos: Chaos;
  readonly log: Logger;
  readonly host: string;
  readonly port: number;
  readonly options: HttpOptions;
  /** Every other listener of the server, read when `/healthz` is asked. */
  readonly listeners: () => readonly Listener[];
  /** The catalog to share with the test double (one parse cache); a new one otherwise. */
  readonly catalog?: MessageCatalog;
  /** Pending ACME HTTP-01 challenges to answer (the server's `ServerSecurity.acmeHttpChallenges`). */
  readonly acmeHttp?: { response(path: string): string | undefined };
  /** The container's prom-client registry (connections, TLS, logins, commands…), or a cluster's sum, appended to `/metrics`. */
  readonly registry?: MetricsSource;
}

/**
 * The `http` listener: the HTTP API (`/api/v1`), `/healthz`, `/metrics` and the web inbox (`/`) on their own port.
 * Started and stopped with the mail listeners; `close()` ends live event streams.
 */
export class HttpListener implements Listener {
  readonly name = 'http';
  readonly implicitTls = false;
  /** The message catalog the API reads (shared with the test double's `receivedMessages`). */
  readonly catalog: MessageCatalog;
  private app?: FastifyInstance;
  private bound?: AddressInfo;

  constructor(private readonly deps: HttpListenerDeps) {
    this.catalog = deps.catalog ?? new MessageCatalog(deps.store);
  }

  async start(): Promise<AddressInfo> {
    // The routes, schemas and event streams (and Fastify under them) load with the first start, not at `import 'postern'`.
    const { buildHttpApp } = await import('./http-app.js');
    const { app } = await buildHttpApp({
      store: this.deps.store,
      catalog: this.catalog,
      chaos: this.deps.chaos,
      log: this.deps.log,
      auth: this.deps.options.auth,
      cors: this.deps.options.cors,
      isReady: () => this.isReady(),
      registry: this.deps.registry,
      acmeHttp: this.deps.acmeHttp,
    });
    this.app = app;
    try {
      await app.listen({ host: this.deps.host, port: this.deps.port });
    } catch (err) {
      this.app = undefined;
      await app.close().catch(() => undefined);
      throw err;
    }
    this.bound = app.server.address() as AddressInfo;
    this.deps.log.info('listening', { listener: 'http', host: this.bound.address, port: this.bound.port });
    return this.bound;
  }

  address(): AddressInfo {
    if (!this.bound) throw new Error('http listener is not started');
    return this.bound;
  }

  async close(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    this.bound = undefined;
    await app?.close();
  }

  /** Every listener (this one included) is bound. */
  private isReady(): boolean {
    if (!this.bound) return false;
    return this.deps.listeners().every((l) => {
      try {
        l.address();
        return true;
      } catch {
        return false;
      }
    });
  }
}
