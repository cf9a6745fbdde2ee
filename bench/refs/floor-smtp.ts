/**
 * The floor of the SMTP hot-path benchmark: the least work a server can do for the bench's sessions on this machine,
 * with the same certificate, the same node:tls and the same client. It answers the greeting at once, EHLO, STARTTLS
 * (upgrading in place) or implicit TLS, MAIL, RCPT, DATA and QUIT, finds each body's end (`CRLF.CRLF`), keeps the body
 * as one Buffer (as the memory store and the reference do) and writes the replies of one read in one write. It parses
 * nothing else: no addresses, no dot-unstuffing (the bench's base64 bodies have no line starting with a dot), no
 * limits, no logging, no timeouts. It is not a mail server; its rates are the ceiling any server can reach against the
 * bench's client on these cores, so a goal stated as a ratio to smtp-server can be checked for being reachable at all.
 *
 * Run as `node floor-smtp.js CERT KEY PLAIN_PORT SECURE_PORT`; prints `ready` when both ports listen.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const END = Buffer.from('\r\n.\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** One session: line mode for commands, body mode after `354`, replies of one read written together. */
class FloorSession {
  private socket: net.Socket;
  private body = false;
  /** Line mode: an unfinished command line. Body mode: up to the last 4 bytes of the previous chunk. */
  private held = EMPTY;
  private parts: Buffer[] = [];
  private out = '';

  constructor(
    socket: net.Socket,
    private readonly context: tls.SecureContext,
    private readonly kept: Buffer[],
    private secure: boolean,
  ) {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    socket.write('220 floor.bench.test ESMTP\r\n');
  }

  private readonly onData = (chunk: Buffer): void => {
    let at = 0;
    while (at < chunk.length) at = this.body ? this.bodyFrom(chunk, at) : this.lineFrom(chunk, at);
    if (this.out.length > 0) {
      const out = this.out;
      this.out = '';
      this.socket.write(out);
      if (out.endsWith('221 bye\r\n')) this.socket.end();
    }
  };

  /** Consumes body bytes from `at`; on the end marker keeps the body, queues `250` and returns to line mode. */
  private bodyFrom(chunk: Buffer, at: number): number {
    const rest = chunk.subarray(at);
    // The marker may straddle the previous chunk and this one: look at the held tail plus this chunk's start first.
    if (this.held.length > 0) {
      const seam = Buffer.concat([this.held, rest.subarray(0, 4)]);
      const i = seam.indexOf(END);
      if (i !== -1) {
        const inRest = i + END.length - this.held.length;
        this.parts.push(this.held.subarray(0, Math.min(this.held.length, i + 2)), rest.subarray(0, Math.max(0, i + 2 - this.held.length)));
        this.held = EMPTY;
        return at + this.finishBody(inRest);
      }
      this.parts.push(this.held);
      this.held = EMPTY;
    }
    const i = rest.indexOf(END);
    if (i !== -1) {
      this.parts.push(rest.subarray(0, i + 2));
      return at + this.finishBody(i + END.length);
    }
    const keep = Math.min(4, rest.length);
    this.parts.push(rest.subarray(0, rest.length - keep));
    this.held = Buffer.from(rest.subarray(rest.length - keep));
    return chunk.length;
  }

  private finishBody(consumed: number): number {
    this.kept.push(Buffer.concat(this.parts));
    this.parts = [];
    this.body = false;
    this.out += '250 ok\r\n';
    return consumed;
  }

  /** Consumes one command line from `at` (or holds an unfinished one); returns where the next input starts. */
  private lineFrom(chunk: Buffer, at: number): number {
    const eol = chunk.indexOf('\r\n', at, 'latin1');
    if (eol === -1) {
      this.held = Buffer.concat([this.held, chunk.subarray(at)]);
      return chunk.length;
    }
    let line = chunk.toString('latin1', at, eol);
    if (this.held.length > 0) {
      line = this.held.toString('latin1') + line;
      this.held = EMPTY;
    }
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === 'EHLO') this.out += this.secure ? '250-floor.bench.test\r\n250 PIPELINING\r\n' : '250-floor.bench.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n';
    else if (verb === 'MAIL' || verb === 'RCPT') this.out += '250 ok\r\n';
    else if (verb === 'DATA') {
      this.out += '354 go ahead\r\n';
      this.body = true;
    } else if (verb === 'QUIT') this.out += '221 bye\r\n';
    else if (verb === 'STAR' && !this.secure) {
      this.startTls();
      return chunk.length; // plaintext after STARTTLS is dropped (RFC 3207 §4.2)
    } else this.out += '500 unknown\r\n';
    return eol + 2;
  }

  private startTls(): void {
    const plain = this.socket;
    plain.off('data', this.onData);
    plain.write(this.out + '220 go ahead\r\n');
    this.out = '';
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: this.context });
    secure.on('data', this.onData);
    secure.on('error', () => secure.destroy());
    this.socket = secure;
    this.secure = true;
  }
}

function main(): void {
  const [certFile, keyFile, plainPort, securePort] = process.argv.slice(2);
  const options = { cert: readFileSync(certFile!), key: readFileSync(keyFile!), minVersion: 'TLSv1.2' as const };
  const context = tls.createSecureContext(options);
  const kept: Buffer[] = [];
  let ready = 0;
  const listening = (): void => {
    if (++ready === 2) process.stdout.write('ready\n');
  };
  net.createServer((s) => new FloorSession(s, context, kept, false)).listen(Number(plainPort), '127.0.0.1', listening);
  tls.createServer(options, (s) => new FloorSession(s, context, kept, true)).listen(Number(securePort), '127.0.0.1', listening);
  process.on('SIGTERM', () => process.exit(0));
}

main();
