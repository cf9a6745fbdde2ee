import tls from 'node:tls';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import { ALICE, message, startImap, type ImapHarness } from '../imap-harness.js';

/** A raw IMAP client over implicit TLS that can switch to raw DEFLATE in both directions (RFC 4978). */
class DeflateClient {
  private text = '';
  private inflate?: zlib.InflateRaw;
  private deflate?: zlib.DeflateRaw;
  private waiter?: () => void;
  closed = false;

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => (this.inflate ? this.inflate.write(chunk) : this.take(chunk)));
    socket.on('close', () => {
      const done = (): void => {
        this.closed = true;
        this.waiter?.();
      };
      // Inflating is asynchronous: the last replies come out of the inflater after the socket closed.
      if (this.inflate) this.inflate.end(done);
      else done();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, ca: string): Promise<DeflateClient> {
    const socket = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    return new DeflateClient(socket);
  }

  private take(chunk: Buffer): void {
    this.text += chunk.toString('latin1');
    this.waiter?.();
  }

  compress(): void {
    this.inflate = zlib.createInflateRaw();
    this.inflate.on('data', (c: Buffer) => this.take(c));
    this.deflate = zlib.createDeflateRaw();
    this.deflate.on('data', (c: Buffer) => this.socket.write(c));
  }

  send(data: string | Buffer): void {
    if (!this.deflate) {
      this.socket.write(data);
      return;
    }
    this.deflate.write(data);
    this.deflate.flush(zlib.constants.Z_SYNC_FLUSH);
  }

  /** Waits for a line matching `re`; resolves every line read up to it. */
  async until(re: RegExp): Promise<string[]> {
    for (;;) {
      const lines = this.text.split('\r\n');
      const i = lines.slice(0, -1).findIndex((l) => re.test(l));
      if (i >= 0) {
        this.text = lines.slice(i + 1).join('\r\n');
        return lines.slice(0, i + 1);
      }
      if (this.closed) throw new Error(`closed before ${re}: ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}

describe('IMAP COMPRESS=DEFLATE (RFC 4978)', () => {
  let h: ImapHarness;
  let client: DeflateClient | undefined;

  beforeEach(async () => {
    h = await startImap({ maxLineLength: 1024 });
    await h.deliver(message('hello'));
  });
  afterEach(async () => {
    client?.socket.destroy();
    await h.close();
  });

  async function login(): Promise<DeflateClient> {
    client = await DeflateClient.connect(h.securePort, h.certs.ca.cert);
    await client.until(/^\* OK /);
    client.send(`l LOGIN ${ALICE.username} "${ALICE.password}"\r\n`);
    expect((await client.until(/^l /)).pop()).to.match(/^l OK .*COMPRESS=DEFLATE/);
    client.send('c COMPRESS DEFLATE\r\n');
    expect(await client.until(/^c /)).to.deep.equal(['c OK DEFLATE active']);
    client.compress();
    return client;
  }

  it('answers in the clear, then runs every command compressed both ways', async () => {
    const c = await login();
    c.send('s SELECT INBOX\r\nf FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]\r\n');
    expect((await c.until(/^s /)).pop()).to.match(/^s OK \[READ-WRITE\]/);
    const fetched = await c.until(/^f /);
    expect(fetched.join('\n')).to.contain('Subject: hello');
    c.send('x COMPRESS DEFLATE\r\n');
    expect(await c.until(/^x /)).to.deep.equal(['x NO [COMPRESSIONACTIVE] Compression is already active']);
    c.send('y LOGOUT\r\n');
    expect(await c.until(/^y /)).to.deep.equal(['* BYE Postern IMAP logging out', 'y OK LOGOUT completed']);
  });

  it('applies the line limit to the inflated input: a tiny compressed line of 4 MiB is refused and the session closed', async () => {
    const c = await login();
    // ~4 KiB on the wire, 4 MiB once inflated, without a line end.
    c.send(Buffer.alloc(4 * 1024 * 1024, 0x61));
    const lines = await c.until(/^\* BYE /);
    expect(lines.pop()).to.equal('* BYE Line too long');
  });

  it('refuses COMPRESS with another mechanism', async () => {
    client = await DeflateClient.connect(h.securePort, h.certs.ca.cert);
    await client.until(/^\* OK /);
    client.send(`l LOGIN ${ALICE.username} "${ALICE.password}"\r\nc COMPRESS GZIP\r\n`);
    await client.until(/^l /);
    expect(await client.until(/^c /)).to.deep.equal(['c BAD COMPRESS DEFLATE']);
  });

  it('is used by imapflow when offered', async () => {
    const commands: string[] = [];
    const flow = new ImapFlow({
      host: '127.0.0.1',
      port: h.securePort,
      secure: true,
      auth: { user: ALICE.username, pass: ALICE.password },
      tls: { ca: [h.certs.ca.cert] },
      logger: { debug: (o: { msg?: string }) => void commands.push(o.msg ?? ''), info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    flow.on('error', () => undefined);
    await flow.connect();
    try {
      const box = await flow.mailboxOpen('INBOX');
      expect(box.exists).to.equal(1);
      const m = await flow.fetchOne('1', { envelope: true });
      expect(m && m.envelope?.subject).to.equal('hello');
      expect(commands.some((l) => /compress/i.test(l))).to.equal(true);
    } finally {
      await flow.logout();
    }
  });
});
