import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import { simpleParser } from 'mailparser';
import { MailStore } from '../lib/contracts/mail-store.js';
import { createContainer } from '../lib/di/create-container.js';
import { imapModule } from '../lib/di/imap.module.js';
import { Listener } from '../lib/di/listener.js';
import { memoryModule } from '../lib/di/memory.module.js';
import { iterations, timePerRun } from './harness.js';
import type { NotedResult } from './smtp-transaction.bench.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';

/** Messages in the mailbox (issue 3's follow-up: a client listing a mailbox page by page). */
const MESSAGES = 200;

/**
 * `FETCH 1:200 (ENVELOPE BODYSTRUCTURE)` on one logged-in IMAPS connection, repeated: what a client does to list a
 * mailbox. The 200 messages are a mix of plain text with an encoded-word subject, multipart/alternative, and
 * multipart/mixed with a 20 KB base64 attachment (1 KB … 22 KB each, 1.6 MiB in all). Postern re-parses
 * every message on every FETCH (it keeps no parsed cache), so each round is the whole cost: store snapshot, MIME
 * split, ENVELOPE and BODYSTRUCTURE (RFC 3501 §7.4.2) formatting, the TLS write and the client reading it all.
 *
 * **The reference is not an IMAP server.** No in-process IMAP server on npm is kept up well enough to measure
 * against, so the reference is the cost of parsing the same 200 messages with mailparser's `simpleParser`
 * (text-to-HTML, HTML-to-text and link processing turned off) in the same process: the usual way a Node program
 * learns a message's headers and structure. It does work Postern skips (decoding the attachment and the text
 * parts, charset conversion) and skips work Postern does (formatting the response, TLS, the socket), so read
 * the ratio as "answering ENVELOPE+BODYSTRUCTURE costs about what reading the messages with a common MIME parser
 * costs", not as a like-for-like race.
 *
 * Measured on a 2-core VM: Postern 14–41 ms per FETCH of 200 (0.07–0.2 ms per message, about 105 KiB of
 * response), mailparser 39–65 ms for the same 200, ratio 0.32–0.63. Goal ≤ 1: listing a mailbox must not cost more
 * than parsing it with mailparser; going over means the MIME split or the formatting started copying bodies.
 */
export async function imapFetch(certs: DevCertificates): Promise<NotedResult> {
  const n = iterations(30, 2);
  const messages = testMessages(MESSAGES);
  const parse = async (): Promise<void> => {
    for (const raw of messages) await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
  };
  const ref1 = await timePerRun(n, parse, Math.min(2, n));
  const subject = await measurePostern(certs, messages, n);
  const ref2 = await timePerRun(n, parse, 0);
  const reference = (ref1 + ref2) / 2;
  const total = messages.reduce((sum, m) => sum + m.length, 0);
  return {
    name: `IMAP FETCH ${MESSAGES} ENVELOPE+BODYSTRUCTURE`,
    unit: `${MESSAGES} messages (ms)`,
    subject: subject.ms,
    reference,
    referenceName: 'mailparser parse',
    goal: 1,
    note: `postern: ${(subject.ms / MESSAGES).toFixed(3)} ms per message, ${(subject.bytes / 1024).toFixed(0)} KiB of response for ${(total / 1024 / 1024).toFixed(1)} MiB of mail`,
  };
}

/** Starts Postern's IMAPS listener with the messages in alice's INBOX, logs in, selects, and times the FETCHes. */
async function measurePostern(certs: DevCertificates, messages: readonly Buffer[], n: number): Promise<{ ms: number; bytes: number }> {
  const user = { username: 'alice', password: 'secret', addresses: ['alice@example.com'] };
  const container = createContainer(
    { log: { silent: true }, tls: { certificate: certs.server }, imap: { imap: { port: 0 }, imaps: { port: 0 } } },
    [memoryModule, imapModule],
  );
  try {
    const store = container.get(MailStore);
    await store.users.add(user);
    for (const raw of messages) await store.deliver(user.addresses[0], raw);
    const listener = container.getAll(Listener).find((l) => l.name === 'imaps');
    if (!listener) throw new Error('postern: no imaps listener bound');
    const { port } = await listener.start();
    const client = await ImapWire.connect(port, { ca: certs.ca.cert, servername: 'localhost' });
    try {
      await client.untagged(/^\* OK/);
      await client.command(`LOGIN ${user.username} ${user.password}`);
      const select = await client.command('SELECT INBOX');
      if (!select.includes(`* ${messages.length} EXISTS`)) throw new Error('SELECT did not report every message');
      let bytes = 0;
      const ms = await timePerRun(
        n,
        async () => {
          const reply = await client.command(`FETCH 1:${messages.length} (ENVELOPE BODYSTRUCTURE)`);
          bytes = reply.length;
          if (!reply.includes(`* ${messages.length} FETCH (`)) throw new Error('FETCH did not return every message');
        },
        Math.min(2, n),
      );
      await client.command('LOGOUT');
      return { ms, bytes };
    } finally {
      client.destroy();
    }
  } finally {
    await container.unbindAllAsync();
  }
}

/**
 * A minimal IMAP client: sends tagged commands and collects everything up to the tagged reply, which must be OK.
 * Literals are not parsed; the bench messages give the server no reason to send one that could look like a tag.
 */
class ImapWire {
  private text = '';
  private tag = 0;
  private wait: { done: (text: string) => boolean; resolve: (text: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: tls.TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      this.check();
    });
    const fail = (err?: unknown): void => {
      this.failure ??= err instanceof Error ? err : new Error('connection closed by the server');
      const w = this.wait;
      this.wait = undefined;
      w?.reject(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', fail);
  }

  /** Connects with implicit TLS to 127.0.0.1:`port`. */
  static async connect(port: number, options: tls.ConnectionOptions): Promise<ImapWire> {
    const socket = tls.connect({ ...options, host: '127.0.0.1', port });
    const w = new ImapWire(socket);
    await once(socket, 'secureConnect');
    return w;
  }

  /** Waits for a line matching `line` (the greeting) and consumes everything up to it. */
  untagged(line: RegExp): Promise<string> {
    return this.until((text) => text.split('\r\n').some((l) => line.test(l)));
  }

  /** Sends `tag command` and resolves with the whole response once the tagged OK arrived; rejects on NO/BAD. */
  async command(command: string): Promise<string> {
    const tag = `b${++this.tag}`;
    this.socket.write(`${tag} ${command}\r\n`);
    const text = await this.until((t) => t.startsWith(`${tag} `) || t.includes(`\r\n${tag} `));
    const status = text.slice(text.lastIndexOf(`${tag} `)).split(' ')[1];
    if (status !== 'OK') throw new Error(`${command.split(' ')[0]} failed: ${text.slice(-200)}`);
    return text;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until(done: (text: string) => boolean): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.wait = { done, resolve, reject };
      this.check();
    });
  }

  /** Resolves the wait once its condition holds and the buffer ends with a complete line. */
  private check(): void {
    const w = this.wait;
    if (!w || !this.text.endsWith('\r\n') || !w.done(this.text)) return;
    this.wait = undefined;
    const text = this.text;
    this.text = '';
    w.resolve(text);
  }
}

/** `count` messages cycling through three shapes; CRLF line ends, base64 bodies in 76-character lines. */
export function testMessages(count: number): Buffer[] {
  const b64 = (octets: number): string => (randomBytes(octets).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  const text = (i: number): string => `Hello number ${i}.\r\n`.repeat(40);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const head =
      `From: "Bob Example" <bob@example.com>\r\nTo: alice@example.com, "Carol" <carol@example.com>\r\n` +
      `Cc: dave@example.com\r\nDate: Mon, 1 Jan 2024 10:00:${String(i % 60).padStart(2, '0')} +0000\r\n` +
      `Message-ID: <m${i}@example.com>\r\n${i > 0 ? `In-Reply-To: <m${i - 1}@example.com>\r\n` : ''}MIME-Version: 1.0\r\n`;
    let rest: string;
    switch (i % 3) {
      case 0:
        rest = `Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9_${i}?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text(i)}`;
        break;
      case 1:
        rest =
          `Subject: alternative ${i}\r\nContent-Type: multipart/alternative; boundary="alt${i}"\r\n\r\n` +
          `--alt${i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text(i)}\r\n` +
          `--alt${i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>${text(i)}</p>\r\n--alt${i}--\r\n`;
        break;
      default:
        rest =
          `Subject: attachment ${i}\r\nContent-Type: multipart/mixed; boundary="mix${i}"\r\n\r\n` +
          `--mix${i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text(i)}\r\n` +
          `--mix${i}\r\nContent-Type: application/pdf; name="report-${i}.pdf"\r\nContent-Disposition: attachment; filename="report-${i}.pdf"\r\n` +
          `Content-Transfer-Encoding: base64\r\n\r\n${b64(15_000)}\r\n--mix${i}--\r\n`;
    }
    out.push(Buffer.from(head + rest, 'utf8'));
  }
  return out;
}
