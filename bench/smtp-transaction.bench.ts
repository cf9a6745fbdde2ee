import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { SMTPServer } from 'smtp-server';
import { MailStore } from '../lib/contracts/mail-store.js';
import { createContainer } from '../lib/di/create-container.js';
import { Listener } from '../lib/di/listener.js';
import { memoryModule } from '../lib/di/memory.module.js';
import { smtpModule } from '../lib/di/smtp.module.js';
import { SMTP_MAX_MESSAGE_SIZE } from '../lib/smtp/smtp-options.js';
import { iterations, type BenchResult } from './harness.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';
import { allMessages, purgeMessages } from '../lib/test-double/store-queries.js';

/** A result with one extra line for people (absolute numbers that the ratio hides). */
export interface NotedResult extends BenchResult {
  readonly note?: string;
}

/**
 * A full submission transaction on loopback, one connection at a time: connect, greeting, EHLO, STARTTLS, TLS
 * handshake, EHLO, AUTH PLAIN with an initial response, MAIL + RCPT + DATA in one pipelined group (RFC 2920 §3.1:
 * DATA ends a group), the 10 KB body + `.` + QUIT in one group (§3.1: message content may start a group, QUIT
 * ends it). Seven round trips plus the handshake, driven by the hand-written {@link SmtpWire} client; every
 * reply code is checked and the stored message count is verified afterwards.
 *
 * Postern (memory store + SMTP module, dev certificate) against nodemailer's `smtp-server` configured the same
 * way: STARTTLS with the same certificate, AUTH PLAIN only, a recipient check and an `onData` that collects the
 * body into one Buffer it keeps, like the memory store keeps the message. Both do no reverse DNS.
 *
 * smtp-server holds every greeting for a fixed 100 ms to catch early talkers (hard-coded in its
 * `SMTPConnection.init`, not an option), while Postern greets at once (issue 3: no fixed delays). So the compared
 * time starts when the greeting has arrived and ends at the `221` to QUIT, for both servers; it covers both
 * EHLOs, STARTTLS with the handshake, AUTH, the envelope and the body. The note line gives Postern's whole
 * transaction, connect to `221`, in absolute ms (issue 3: "completes in a few milliseconds").
 *
 * Measured on a 2-core VM (Node 20, other work running): Postern 2.0–4.5 ms after the greeting against 3.8–6.4 ms
 * for smtp-server (ratio 0.4–0.9, the spread is machine noise; smtp-server's STARTTLS handshake step alone is
 * about 1 ms slower), and 2.3–5.5 ms for Postern's whole transaction. Both negotiate TLS 1.3,
 * TLS_AES_256_GCM_SHA384, X25519. Goal ≤ 1.2: most of a transaction is the TLS handshake, which both servers leave
 * to Node, so Postern losing its lead means its own per-session work (STARTTLS re-wrap and policy evaluation,
 * session reopen, logger child, Received header, store delivery) has grown.
 */
export async function smtpTransaction(certs: DevCertificates): Promise<NotedResult> {
  const n = iterations(150);
  const warmup = Math.min(5, n);
  const message = testMessage(10 * 1024);
  const measure = async (start: typeof startPosternSmtp): Promise<{ afterGreeting: number; whole: number }> => {
    const server = await start(certs);
    try {
      let afterGreeting = 0;
      let whole = 0;
      for (let i = 0; i < warmup + n; i++) {
        const t = await transaction(server.port, certs, message);
        if (i < warmup) continue;
        afterGreeting += t.afterGreeting;
        whole += t.whole;
      }
      const stored = await server.stored();
      if (stored !== warmup + n) throw new Error(`expected ${warmup + n} stored messages, found ${stored}`);
      return { afterGreeting: afterGreeting / n, whole: whole / n };
    } finally {
      await server.stop();
    }
  };
  const ref1 = await measure(startReferenceSmtp);
  const subject = await measure(startPosternSmtp);
  const ref2 = await measure(startReferenceSmtp);
  const reference = (ref1.afterGreeting + ref2.afterGreeting) / 2;
  return {
    name: 'SMTP STARTTLS transaction (10 KB)',
    unit: 'transaction after greeting (ms)',
    subject: subject.afterGreeting,
    reference,
    referenceName: 'smtp-server',
    goal: 1.2,
    note:
      `postern: ${subject.whole.toFixed(2)} ms per whole transaction, connect to 221 ` +
      `(smtp-server: ${((ref1.whole + ref2.whole) / 2).toFixed(2)} ms, including its fixed 100 ms greeting pause)`,
  };
}

/** The bench user; both servers accept exactly this login and address. */
export const BENCH_USER = { username: 'alice', password: 'secret', address: 'alice@example.com' } as const;

/** A started SMTP server (STARTTLS on a plain port) with the count of messages it has kept. */
export interface RunningSmtp {
  readonly port: number;
  /** Messages stored so far (to check that every transaction really delivered). */
  stored(): Promise<number>;
  /** Drops the kept messages (memory benchmarks run several transfers on one server). */
  purge(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Postern's SMTP listener: `createContainer` with the memory store and SMTP modules, STARTTLS port on 0, the dev
 * server certificate, logging silenced and {@link BENCH_USER} added. `stop()` closes the listener and unbinds the
 * container.
 */
export async function startPosternSmtp(certs: DevCertificates): Promise<RunningSmtp> {
  const container = createContainer(
    {
      log: { silent: true },
      tls: { certificate: certs.server },
      smtp: { hostname: 'mx.bench.test', smtp: { port: 0 }, smtps: { port: 0, enabled: false } },
    },
    [memoryModule, smtpModule],
  );
  const store = container.get(MailStore);
  await store.users.add({ username: BENCH_USER.username, password: BENCH_USER.password, addresses: [BENCH_USER.address] });
  const listener = container.getAll(Listener).find((l) => l.name === 'smtp');
  if (!listener) throw new Error('postern: no smtp listener bound');
  const { port } = await listener.start();
  return {
    port,
    stored: async () => (await allMessages(store)).length,
    purge: () => purgeMessages(store),
    stop: async () => {
      await listener.close();
      await container.unbindAllAsync();
    },
  };
}

/**
 * The reference: nodemailer's `smtp-server` with STARTTLS on the same certificate (TLS 1.2 minimum like Postern),
 * AUTH PLAIN only, a recipient lookup, and an `onData` that collects the stream into one Buffer and keeps it.
 */
export async function startReferenceSmtp(certs: DevCertificates): Promise<RunningSmtp> {
  let kept: Buffer[] = [];
  const server = new SMTPServer({
    name: 'mx.bench.test',
    logger: false,
    disableReverseLookup: true,
    key: certs.server.key,
    cert: certs.server.cert,
    minVersion: 'TLSv1.2',
    authMethods: ['PLAIN'],
    size: SMTP_MAX_MESSAGE_SIZE,
    onAuth(auth, _session, callback) {
      if (auth.username === BENCH_USER.username && auth.password === BENCH_USER.password) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, callback) {
      if (address.address.toLowerCase() === BENCH_USER.address) callback();
      else callback(Object.assign(new Error('No such user here'), { responseCode: 550 }));
    },
    onData(stream, _session, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => parts.push(chunk));
      stream.on('error', (err: Error) => callback(err));
      stream.on('end', () => {
        kept.push(Buffer.concat(parts));
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as net.AddressInfo;
  return {
    port,
    stored: async () => kept.length,
    purge: async () => {
      kept = [];
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Connects and runs everything before MAIL: greeting, then {@link submit}. The caller owns the returned client
 * and destroys it.
 */
export async function submissionSession(port: number, certs: DevCertificates): Promise<SmtpWire> {
  const w = await SmtpWire.connect(port);
  try {
    await w.replies([220]);
    await submit(w, certs);
    return w;
  } catch (err) {
    w.destroy();
    throw err;
  }
}

/**
 * After the greeting: EHLO, STARTTLS, handshake (trusting the dev CA, SNI localhost), EHLO again (RFC 3207 §4.2),
 * AUTH PLAIN with an initial response (RFC 4954 §4, RFC 4616).
 */
async function submit(w: SmtpWire, certs: DevCertificates): Promise<void> {
  await w.exchange('EHLO client.bench.test\r\n', [250]);
  await w.exchange('STARTTLS\r\n', [220]);
  await w.startTls({ ca: certs.ca.cert, servername: 'localhost' });
  await w.exchange('EHLO client.bench.test\r\n', [250]);
  const plain = Buffer.from(`\0${BENCH_USER.username}\0${BENCH_USER.password}`).toString('base64');
  await w.exchange(`AUTH PLAIN ${plain}\r\n`, [235]);
}

/** MAIL + RCPT + DATA as one pipelined group (RFC 2920 §3.1: DATA is last in its group). */
export const ENVELOPE = `MAIL FROM:<bob@example.com>\r\nRCPT TO:<${BENCH_USER.address}>\r\nDATA\r\n`;

/**
 * One whole transaction; rejects when any reply code differs from the expected one. Returns the ms from the
 * greeting to the `221`, and from the connect to the `221`.
 */
async function transaction(port: number, certs: DevCertificates, message: Buffer): Promise<{ afterGreeting: number; whole: number }> {
  const t0 = performance.now();
  const w = await SmtpWire.connect(port);
  try {
    await w.replies([220]);
    const t1 = performance.now();
    await submit(w, certs);
    await w.exchange(ENVELOPE, [250, 250, 354]);
    await w.exchange(Buffer.concat([message, Buffer.from('.\r\nQUIT\r\n')]), [250, 221]);
    const t2 = performance.now();
    return { afterGreeting: t2 - t1, whole: t2 - t0 };
  } finally {
    w.destroy();
  }
}

/**
 * A message of about `size` octets: a few header fields and base64-like lines of 76 characters with CRLF
 * (RFC 2045 §6.8), so no line starts with a dot and nothing needs stuffing. Ends with CRLF.
 */
export function testMessage(size: number): Buffer {
  const head = 'From: bob@example.com\r\nTo: alice@example.com\r\nSubject: bench\r\nMessage-ID: <bench@example.com>\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const lines = Math.max(1, Math.ceil((size - head.length) / 78));
  const b64 = randomBytes(Math.ceil((lines * 76 * 3) / 4)).toString('base64');
  const body = Buffer.allocUnsafe(lines * 78);
  for (let i = 0; i < lines; i++) {
    body.write(b64.slice(i * 76, i * 76 + 76), i * 78, 'latin1');
    body.write('\r\n', i * 78 + 76, 'latin1');
  }
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/**
 * A minimal lockstep SMTP client: writes a group of commands, then waits for one final reply line per command
 * (continuation lines `250-…` are skipped) and checks each code. The socket can be swapped for its TLS wrapper
 * after STARTTLS. Any socket error or an early close rejects the pending wait.
 */
export class SmtpWire {
  private pending = '';
  private readonly finals: string[] = [];
  private waiter: { count: number; resolve: (lines: string[]) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private socket: net.Socket) {
    this.attach(socket);
  }

  /** Opens a plaintext connection to 127.0.0.1:`port` with TCP_NODELAY. */
  static async connect(port: number): Promise<SmtpWire> {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const w = new SmtpWire(socket);
    await once(socket, 'connect');
    return w;
  }

  /** Waits for one final reply per expected code, in order. */
  async replies(codes: readonly number[]): Promise<string[]> {
    const lines = await this.next(codes.length);
    lines.forEach((line, i) => {
      if (!line.startsWith(`${codes[i]} `)) throw new Error(`expected ${codes[i]}, got "${line}"`);
    });
    return lines;
  }

  /** Writes `data` and waits for the replies. */
  exchange(data: string | Buffer, codes: readonly number[]): Promise<string[]> {
    this.socket.write(data);
    return this.replies(codes);
  }

  /** Writes `data` in slices of `slice` octets, waiting for `drain` whenever the socket's buffer is full. */
  async writeAll(data: Buffer, slice = 64 * 1024, onSlice?: () => void): Promise<void> {
    for (let at = 0; at < data.length; at += slice) {
      if (!this.socket.write(data.subarray(at, at + slice))) await once(this.socket, 'drain');
      onSlice?.();
    }
  }

  /** Runs the client side of the TLS handshake over the current socket; replies are then read from TLS. */
  async startTls(options: tls.ConnectionOptions): Promise<void> {
    this.detach(this.socket);
    const secure = tls.connect({ ...options, socket: this.socket });
    this.socket = secure;
    this.attach(secure);
    await once(secure, 'secureConnect');
  }

  /** Destroys the socket (and the one under a TLS wrapper). */
  destroy(): void {
    this.socket.destroy();
  }

  private next(count: number): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.finals.length >= count) return Promise.resolve(this.finals.splice(0, count));
    return new Promise((resolve, reject) => {
      this.waiter = { count, resolve, reject };
    });
  }

  private readonly onData = (data: Buffer): void => {
    this.pending += data.toString('latin1');
    let eol: number;
    while ((eol = this.pending.indexOf('\r\n')) !== -1) {
      const line = this.pending.slice(0, eol);
      this.pending = this.pending.slice(eol + 2);
      if (line[3] !== '-') this.finals.push(line);
    }
    const w = this.waiter;
    if (w && this.finals.length >= w.count) {
      this.waiter = undefined;
      w.resolve(this.finals.splice(0, w.count));
    }
  };

  private readonly onEnd = (err?: Error): void => {
    this.failure ??= err instanceof Error ? err : new Error('connection closed by the server');
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  };

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('error', this.onEnd);
    s.on('close', this.onEnd);
  }

  private detach(s: net.Socket): void {
    s.off('data', this.onData);
    s.off('error', this.onEnd);
    s.off('close', this.onEnd);
  }
}
