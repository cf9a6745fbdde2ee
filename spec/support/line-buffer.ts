/**
 * The reading half of the test clients: collects received text, hands it out line by line (CRLF), and bounds every
 * wait by `timeoutMs`. `LineClient` (raw sockets) and `ConnectionLines` (Postern Connections) feed it.
 */
export class LineBuffer {
  private buf = '';
  private closedFlag = false;
  private waiters: Array<() => void> = [];

  constructor(readonly timeoutMs: number) {}

  /** Adds received text (latin1, byte for byte). */
  push(text: string): void {
    this.buf += text;
    this.notify();
  }

  /** Marks the peer as gone; pending reads fail once the buffer holds no more lines. */
  end(): void {
    this.closedFlag = true;
    this.notify();
  }

  /** True once the peer closed. */
  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Received text not yet read as a line. */
  get pending(): string {
    return this.buf;
  }

  /** Reads the next CRLF line; throws when the peer closed first or on timeout. */
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

  /** Waits until the peer closed. */
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
