/**
 * Minimal IMAP and POP3 clients for the mailbox benchmarks: lockstep commands over implicit TLS, responses
 * consumed as they stream in (literals and multi-line bodies are counted, not kept), so a FETCH of 10 MB or of
 * 10,000 ENVELOPEs costs the client little and the server's time dominates.
 */
import { once } from 'node:events';
import tls from 'node:tls';

/** What one command's response held. */
export interface WireResponse {
  /** Untagged lines (IMAP, literal contents left out) or the status line (POP3); empty unless asked for. */
  readonly lines: string[];
  /** Octets received for this command, status lines included. */
  readonly bytes: number;
  /** IMAP: untagged `* n FETCH` responses seen. POP3: unused (0). */
  readonly fetches: number;
}

abstract class Wire {
  protected pending: Buffer = Buffer.alloc(0);
  protected failure: Error | undefined;
  protected waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;

  protected constructor(protected readonly socket: tls.TLSSocket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (err?: unknown): void => {
      this.failure ??= err instanceof Error ? err : new Error('connection closed by the server');
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', fail);
  }

  protected static async open(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const socket = tls.connect({ ...options, host: '127.0.0.1', port });
    socket.setNoDelay(true);
    socket.once('error', () => undefined);
    await once(socket, 'secureConnect');
    return socket;
  }

  protected abstract onData(d: Buffer): void;

  /** Waits until `done()` is called from the data handler. */
  protected waitFor(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  protected finish(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  /** Destroys the socket. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** An IMAPS client: `await ImapsWire.connect(port, tlsOptions)`, then `command('LOGIN …')`. */
export class ImapsWire extends Wire {
  private tag = 0;
  private literal = 0;
  private current: { tag: string; keep: boolean; lines: string[]; bytes: number; fetches: number; status?: string } | undefined;
  private greeting: string | undefined;

  /** Connects with implicit TLS to 127.0.0.1:`port` and waits for the greeting, which must be `* OK`. */
  static async connect(port: number, options: tls.ConnectionOptions): Promise<ImapsWire> {
    const w = new ImapsWire(await Wire.open(port, options));
    if (w.greeting === undefined) {
      w.current = { tag: '*', keep: true, lines: [], bytes: 0, fetches: 0 };
      await w.waitFor();
    }
    if (!w.greeting?.startsWith('* OK')) throw new Error(`unexpected IMAP greeting: ${w.greeting}`);
    return w;
  }

  /**
   * Sends `tag command`, resolves once the tagged reply arrived; rejects unless it is OK. `keep` collects the
   * untagged lines (without literal contents).
   */
  async command(command: string, keep = false): Promise<WireResponse> {
    const tag = `b${++this.tag}`;
    const current = { tag, keep, lines: [] as string[], bytes: 0, fetches: 0, status: undefined as string | undefined };
    this.current = current;
    this.socket.write(`${tag} ${command}\r\n`);
    await this.waitFor();
    if (current.status?.split(' ')[1] !== 'OK') throw new Error(`IMAP ${command.split(' ')[0]} failed: ${current.status}`);
    return { lines: current.lines, bytes: current.bytes, fetches: current.fetches };
  }

  protected onData(d: Buffer): void {
    const c = this.current;
    if (c) c.bytes += d.length;
    let data = d;
    // Bounded: each pass consumes a literal's octets or one line; a partial line waits in `pending`.
    for (;;) {
      if (this.literal > 0) {
        const take = Math.min(this.literal, data.length);
        this.literal -= take;
        data = data.subarray(take);
        if (this.literal > 0) return;
      }
      const buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
      const eol = buf.indexOf('\r\n');
      if (eol === -1) {
        this.pending = Buffer.from(buf);
        return;
      }
      this.pending = Buffer.alloc(0);
      data = buf.subarray(eol + 2);
      const line = buf.toString('latin1', 0, eol);
      const lit = /\{(\d+)\}$/.exec(line);
      if (lit) this.literal = Number(lit[1]);
      this.onLine(line);
      if (data.length === 0 && this.literal === 0) return;
    }
  }

  private onLine(line: string): void {
    const c = this.current;
    if (this.greeting === undefined) {
      this.greeting = line;
      if (c?.tag === '*') {
        this.current = undefined;
        this.finish();
      }
      return;
    }
    if (!c) return;
    if (line.startsWith(`${c.tag} `)) {
      c.status = line;
      this.current = undefined;
      this.finish();
      return;
    }
    if (line.startsWith('* ') && / FETCH \(/.test(line)) c.fetches++;
    if (c.keep) c.lines.push(line);
  }
}

/** A POP3S client: `await Pop3sWire.connect(port, tlsOptions)`, then `command('USER alice')`. */
export class Pop3sWire extends Wire {
  private current: { multi: boolean; bytes: number; status?: string; tail: string } | undefined;

  /** Connects with implicit TLS and waits for the `+OK` greeting. */
  static async connect(port: number, options: tls.ConnectionOptions): Promise<Pop3sWire> {
    const w = new Pop3sWire(await Wire.open(port, options));
    const current = { multi: false, bytes: 0, tail: '', status: undefined as string | undefined };
    w.current = current;
    await w.waitFor();
    if (!current.status?.startsWith('+OK')) throw new Error(`unexpected POP3 greeting: ${current.status}`);
    return w;
  }

  /**
   * Sends one command and resolves with its status line and octet count; `multi` waits for the `.` that ends a
   * multi-line response (RFC 1939 §3). Rejects on `-ERR`.
   */
  async command(command: string, multi = false): Promise<WireResponse> {
    const current = { multi, bytes: 0, tail: '', status: undefined as string | undefined };
    this.current = current;
    this.socket.write(`${command}\r\n`);
    await this.waitFor();
    if (!current.status?.startsWith('+OK')) throw new Error(`POP3 ${command.split(' ')[0]} failed: ${current.status}`);
    return { lines: [current.status], bytes: current.bytes, fetches: 0 };
  }

  protected onData(d: Buffer): void {
    const c = this.current;
    if (!c) return;
    c.bytes += d.length;
    let rest = d;
    if (c.status === undefined) {
      this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, d]) : d;
      const eol = this.pending.indexOf('\r\n');
      if (eol === -1) return;
      c.status = this.pending.toString('latin1', 0, eol);
      rest = this.pending.subarray(eol + 2);
      this.pending = Buffer.alloc(0);
      if (!c.multi || !c.status.startsWith('+OK')) {
        this.current = undefined;
        this.finish();
        return;
      }
      c.tail = '\r\n'; // the status line's CRLF may be the first half of an empty body's terminator
    }
    // The end of a multi-line response is CRLF "." CRLF; keep the last 4 octets to see it across chunks.
    const look = c.tail + rest.toString('latin1', Math.max(0, rest.length - 5));
    c.tail = look.slice(-4);
    if (look.endsWith('\r\n.\r\n')) {
      this.current = undefined;
      this.finish();
    }
  }
}
