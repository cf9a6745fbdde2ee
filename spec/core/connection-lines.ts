import type { Connection } from '../../lib/core/connection.js';

/**
 * Test helper: reads CRLF lines from a Postern {@link Connection} (the client side made by `TcpClient`).
 * Subscribes to `'data'` on the Connection itself, so it keeps working across `authenticateAsClient`.
 * Every wait is bounded by `timeoutMs`.
 */
export class ConnectionLines {
  private buf = '';
  private closedFlag = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly connection: Connection,
    readonly timeoutMs = 5000,
  ) {
    connection.on('data', (chunk: Buffer) => {
      this.buf += chunk.toString('latin1');
      this.notify();
    });
    connection.once('close', () => {
      this.closedFlag = true;
      this.notify();
    });
  }

  /** Writes a line with CRLF. */
  line(text: string): void {
    this.connection.write(text + '\r\n');
  }

  /** Reads the next CRLF line; throws when the connection closed first or on timeout. */
  async readLine(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i !== -1) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        return line;
      }
      if (this.closedFlag) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf)}`);
      await this.wait();
    }
  }

  /** Sends a line and returns the next line. */
  async command(text: string): Promise<string> {
    this.line(text);
    return this.readLine();
  }

  /** Waits until the connection emitted `'close'`. */
  async closed(): Promise<void> {
    while (!this.closedFlag) await this.wait();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait(): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms; pending: ${JSON.stringify(this.buf)}`)), this.timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
