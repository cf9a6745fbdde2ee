import net from 'node:net';
import tls from 'node:tls';
import { LineBuffer } from './line-buffer.js';

/**
 * How long a client waits for a line by default. 5 s is far beyond any loopback reply; mutation runs
 * (`npm run mutate`) lower it with `POSTERN_SPEC_WAIT_MS`, since a mutant that stops replies costs this wait.
 */
export const DEFAULT_WAIT_MS = Number(process.env.POSTERN_SPEC_WAIT_MS) || 5000;

/**
 * A byte-exact test client for line protocols: `send` raw text, `expect` a line (or a multi-line reply ending
 * in a line that matches), upgrade with `startTls`. Every wait is bounded by `timeoutMs`.
 */
export class LineClient {
  private readonly lines: LineBuffer;
  private constructor(
    private socket: net.Socket,
    readonly timeoutMs: number,
  ) {
    this.lines = new LineBuffer(timeoutMs);
    this.listen(socket);
  }

  /** Connects (plain, or TLS with `tlsOptions`). */
  static async connect(port: number, opts: { host?: string; tls?: tls.ConnectionOptions; timeoutMs?: number; localAddress?: string } = {}): Promise<LineClient> {
    const host = opts.host ?? '127.0.0.1';
    const localAddress = opts.localAddress;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = opts.tls
        ? tls.connect({ host, port, ...(localAddress ? { localAddress } : {}), ...opts.tls } as tls.ConnectionOptions, () => resolve(s))
        : net.connect({ host, port, localAddress }, () => resolve(s));
      s.once('error', reject);
    });
    return new LineClient(socket, opts.timeoutMs ?? DEFAULT_WAIT_MS);
  }

  /** True once the server closed the connection. */
  get isClosed(): boolean {
    return this.lines.isClosed;
  }

  /** The underlying socket (TLS facts in tests). */
  get raw(): net.Socket {
    return this.socket;
  }

  /** Writes exactly these bytes. */
  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Writes a line with CRLF. */
  line(text: string): void {
    this.socket.write(text + '\r\n');
  }

  /** Reads the next CRLF line. */
  readLine(): Promise<string> {
    return this.lines.readLine();
  }

  /** Reads lines until one matches `last`; returns all of them. Throws on timeout with what was read. */
  async expect(last: RegExp): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.readLine().catch((err: Error) => {
        throw new Error(`${err.message}; expected ${last}, got ${JSON.stringify(lines)}`);
      });
      lines.push(l);
      if (last.test(l)) return lines;
    }
  }

  /** Sends a line and waits for the reply ending in a line that matches. */
  async command(text: string, last: RegExp): Promise<string[]> {
    this.line(text);
    return this.expect(last);
  }

  /** Waits for the server to close the connection. */
  closed(): Promise<void> {
    return this.lines.closed();
  }

  /** Upgrades this connection to TLS (after the server's go-ahead). Unread plaintext is kept in `pending`. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
    this.socket.removeAllListeners('data');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: this.socket, ...options }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
    return secure;
  }

  /** Plaintext that arrived and was not read (must be empty after STARTTLS). */
  get pending(): string {
    return this.lines.pending;
  }

  /** Closes the socket and waits for it. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  private listen(s: net.Socket): void {
    s.setEncoding('latin1');
    s.on('data', (d: string) => this.lines.push(d));
    s.on('error', () => undefined);
    s.once('close', () => this.lines.end());
  }
}
