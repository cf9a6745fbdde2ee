/** FETCH of a large message as a streamed literal (Maildir store), checked byte for byte with a raw TLS client. */
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import { LITERAL_STREAM_FROM_OCTETS, streamedFetch } from '../../lib/imap/imap-fetch-stream.js';
import { parseFetchAttributes } from '../../lib/imap/imap-fetch.js';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import { ALICE, message, startImap, type ImapHarness } from './imap-harness.js';

/** A message of about `size` octets with CRLF lines, some starting with a dot. */
function big(size: number): Buffer {
  const lines = [message('big').replace(/\r\n\r\n.*$/s, ''), ''];
  for (let i = 0, length = 0; length < size; i++) {
    const line = i % 5 === 0 ? `.dot ${i}` : `line ${i} ${'x'.repeat(i % 70)}`;
    lines.push(line);
    length += line.length + 2;
  }
  return Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');
}

/** Sends tagged commands over implicit TLS and collects the raw octets up to each tagged reply. */
async function rawSession(port: number, ca: string, commands: string[]): Promise<Buffer[]> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  let data = Buffer.alloc(0);
  let waiting: { tag: string; resolve: (b: Buffer) => void } | undefined;
  const check = (): void => {
    if (!waiting) return;
    const at = data.indexOf(`\r\n${waiting.tag} `);
    const end = at < 0 ? -1 : data.indexOf('\r\n', at + 2);
    if (end < 0) return;
    const out = data.subarray(0, end + 2);
    data = data.subarray(end + 2);
    const w = waiting;
    waiting = undefined;
    w.resolve(out);
  };
  socket.on('data', (d: Buffer) => {
    data = Buffer.concat([data, d]);
    check();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  const replies: Buffer[] = [];
  try {
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    for (const [i, command] of commands.entries()) {
      const tag = `T${i}`;
      replies.push(
        await new Promise<Buffer>((resolve) => {
          waiting = { tag, resolve };
          socket.write(`${tag} ${command}\r\n`);
          check();
        }),
      );
    }
  } finally {
    socket.end();
    await closed;
  }
  return replies;
}

describe('imap: FETCH streams a large whole message as its literal (Maildir store)', () => {
  let h: ImapHarness;
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-imap-stream-'));
    h = await startImap({}, {}, [maildirModule(root), imapModule]);
  });
  afterEach(async () => {
    await h.close();
    await rm(root, { recursive: true, force: true });
  });

  it('streams only BODY[], BODY.PEEK[] and RFC822 of the whole message, beside attributes that need no octets', () => {
    const split = (text: string): ReturnType<typeof streamedFetch> => streamedFetch(parseFetchAttributes(parseCommandText(`A FETCH 1 ${text}`).args[1]));
    expect(split('(UID BODY.PEEK[] FLAGS)')).to.deep.include({ itemIndex: 2, name: 'BODY[]' });
    expect(split('RFC822')).to.deep.include({ itemIndex: 0, name: 'RFC822' });
    expect(split('(BODY[] BODY[TEXT])')).to.equal(undefined);
    expect(split('BODY[]<0.10>')).to.equal(undefined);
    expect(split('(BODY[] RFC822.HEADER)')).to.equal(undefined);
    expect(split('(BODY[] RFC822)')).to.equal(undefined);
    expect(split('BINARY[]')).to.equal(undefined);
  });

  it('closes the connection when the file no longer holds the size announced in the literal (streamed, not read whole)', async () => {
    const large = big(LITERAL_STREAM_FROM_OCTETS + 10);
    await h.deliver(large);
    const dir = join(root, 'mail', 'alice', 'new');
    const [file] = await readdir(dir);
    await appendFile(join(dir, file!), 'grown by another tool\r\n');
    const c = await h.loginAlice();
    await c.command('S EXAMINE INBOX', /^S OK/);
    c.send('F FETCH 1 BODY.PEEK[]\r\n');
    expect(await c.readLine()).to.equal(`* 1 FETCH (BODY[] {${large.length}}`);
    await c.closed();
  });

  it('sends the exact octets with the other items in request order, for a large and a small message', async () => {
    const large = big(LITERAL_STREAM_FROM_OCTETS * 3 + 123);
    const small = Buffer.from(message('small'), 'latin1');
    await h.deliver(large);
    await h.deliver(small);
    const [, , fetch, rfc822] = await rawSession(h.securePort, h.certs.ca.cert, [
      `LOGIN alice "${ALICE.password}"`,
      'SELECT INBOX',
      'FETCH 1:2 (UID BODY.PEEK[] RFC822.SIZE)',
      'UID FETCH 1 RFC822',
    ]);
    const expected = Buffer.concat([
      Buffer.from(`* 1 FETCH (UID 1 BODY[] {${large.length}}\r\n`),
      large,
      Buffer.from(` RFC822.SIZE ${large.length})\r\n* 2 FETCH (UID 2 BODY[] {${small.length}}\r\n`),
      small,
      Buffer.from(` RFC822.SIZE ${small.length})\r\nT2 OK`),
    ]);
    expect(fetch!.subarray(0, expected.length).equals(expected)).to.equal(true);
    // RFC822 sets \Seen (RFC 3501 §6.4.5): FLAGS follow the literal.
    const head = Buffer.from(`* 1 FETCH (UID 1 RFC822 {${large.length}}\r\n`);
    expect(rfc822!.subarray(0, head.length).equals(head)).to.equal(true);
    expect(rfc822!.subarray(head.length, head.length + large.length).equals(large)).to.equal(true);
    expect(rfc822!.subarray(head.length + large.length).toString('latin1')).to.match(/^ FLAGS \(\\Seen( \\Recent)?\)\)\r\nT3 OK/);
  });
});
