import type { ServerResponse } from 'node:http';
import type { MessageCatalog } from '../test-double/received-message.js';
import { summaryJson } from './message-json.js';

/** A comment line every this often keeps proxies and idle timers from closing a quiet event stream. */
export const SSE_KEEPALIVE_MS = 15_000;

/**
 * Server-Sent Events (WHATWG HTML §9.2) for `GET /api/v1/events`: one `message` event per new stored message (its
 * summary as JSON) and one `deleted` event per message that went (`{ "id" }`). Watches the store only while some
 * client listens. Each client's response is written by hand (Fastify hands it over with `reply.hijack()`).
 */
export class MessageEvents {
  private readonly clients = new Set<ServerResponse>();
  private known = new Set<string>();
  private unwatch?: () => void;
  private keepalive?: NodeJS.Timeout;
  private scanning: Promise<void> = Promise.resolve();

  constructor(private readonly catalog: MessageCatalog) {}

  /** Clients connected now (for /metrics). */
  get size(): number {
    return this.clients.size;
  }

  /** Starts streaming to `res` until the client goes or {@link close} runs. */
  async add(res: ServerResponse): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    // `retry`: how long a browser's EventSource waits before reconnecting.
    res.write('retry: 2000\n\n');
    if (this.clients.size === 0) await this.startWatching();
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stopWatching();
    });
  }

  /** Ends every stream (server shutdown). */
  close(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.stopWatching();
  }

  private async startWatching(): Promise<void> {
    this.known = new Set((await this.catalog.list()).map((m) => m.id));
    this.unwatch = this.catalog.onChange(() => {
      this.scanning = this.scanning.then(() => this.scan()).catch(() => undefined);
    });
    this.keepalive = setInterval(() => this.broadcast(': keepalive\n\n'), SSE_KEEPALIVE_MS).unref();
  }

  private stopWatching(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  private async scan(): Promise<void> {
    const now = await this.catalog.list();
    const ids = new Set(now.map((m) => m.id));
    for (const m of now) if (!this.known.has(m.id)) this.broadcast(`event: message\ndata: ${JSON.stringify(summaryJson(m))}\n\n`);
    for (const id of this.known) if (!ids.has(id)) this.broadcast(`event: deleted\ndata: ${JSON.stringify({ id })}\n\n`);
    this.known = ids;
  }

  private broadcast(text: string): void {
    for (const res of this.clients) res.write(text);
  }
}
