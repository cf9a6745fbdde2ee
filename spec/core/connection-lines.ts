import type { Connection } from '../../lib/core/connection.js';
import { LineBuffer } from '../support/line-buffer.js';

/**
 * Test helper: reads CRLF lines from a Postern {@link Connection} (the client side made by `TcpClient`).
 * Subscribes to `'data'` on the Connection itself, so it keeps working across `authenticateAsClient`.
 * Every wait is bounded by `timeoutMs`.
 */
export class ConnectionLines {
  private readonly lines: LineBuffer;

  constructor(
    readonly connection: Connection,
    readonly timeoutMs = 5000,
  ) {
    this.lines = new LineBuffer(timeoutMs);
    connection.on('data', (chunk: Buffer) => this.lines.push(chunk.toString('latin1')));
    connection.once('close', () => this.lines.end());
  }

  /** Writes a line with CRLF. */
  line(text: string): void {
    this.connection.write(text + '\r\n');
  }

  /** Reads the next CRLF line; throws when the connection closed first or on timeout. */
  readLine(): Promise<string> {
    return this.lines.readLine();
  }

  /** Sends a line and returns the next line. */
  async command(text: string): Promise<string> {
    this.line(text);
    return this.readLine();
  }

  /** Waits until the connection emitted `'close'`. */
  closed(): Promise<void> {
    return this.lines.closed();
  }
}
