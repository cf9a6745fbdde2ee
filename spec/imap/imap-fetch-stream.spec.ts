/** FETCH of a large message as a streamed literal (Maildir store), checked byte for byte with a raw TLS client. */
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { imapModule } from '../../lib/di/imap.module.js';
import { maildirModule } from '../../lib/di/maildir.module.js';
import type { StoredMessage } from '../../lib/contracts/mail-store.js';
import { LITERAL_STREAM_FROM_OCTETS, streamedFetch } from '../../lib/imap/imap-fetch-stream.js';
import { buildFetchItems, parseFetchAttributes } from '../../lib/imap/imap-fetch.js';
import { serializeImap } from '../../lib/imap/imap-format.js';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import { countingReads, noReads, type Reads } from '../support/counted-reads.js';
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

/** A message of `text` (or only an attachment when undefined) and then a base64 attachment of about `size` octets. */
function withAttachment(text: string | undefined, size: number): Buffer {
  const data = Buffer.alloc(Math.ceil((size * 3) / 4), 7).toString('base64').replace(/.{76}/g, '$&\r\n');
  const first = text === undefined ? [] : ['--m', 'Content-Type: text/plain; charset=utf-8', '', text];
  const lines = ['From: <bob@example.com>', 'Subject: report', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="m"', '', ...first];
  lines.push('--m', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="data.bin"', '');
  return Buffer.from([...lines, data, '--m--', ''].join('\r\n'), 'utf8');
}

/** `message` with what is read of it counted. */
function counted(message: StoredMessage): { message: StoredMessage; reads: Reads } {
  const reads = noReads();
  return { message: countingReads(message, reads), reads };
}

/** Where `marker` ends in `raw`. */
function endOf(raw: Buffer, marker: string): number {
  const at = raw.indexOf(marker);
  if (at < 0) throw new Error(`no ${marker} in the message`);
  return at + Buffer.byteLength(marker);
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
  it('makes PREVIEW of a large message from the start of its text part, not the attachment after it', async () => {
    const text = 'Quarterly numbers attached, the summary is below.';
    const large = withAttachment(text, LITERAL_STREAM_FROM_OCTETS * 4);
    const { message, reads } = counted(await h.store.deliver(ALICE.addresses[0], large));
    const items = await buildFetchItems(message, parseFetchAttributes(parseCommandText('t FETCH 1 UID').args[1], {}), { preview: true });
    expect(serializeImap(items).toString()).to.equal(`(UID 1 PREVIEW "${text}")`);
    // The file up to the text part's end, never the 1 MB message.
    expect(reads).to.deep.equal({ whole: 0, streamed: 0, prefixes: [endOf(large, text)] });
    // No readable text at all: the cached structure says so, and nothing of the file is read.
    const bare = counted(await h.store.deliver(ALICE.addresses[0], withAttachment(undefined, LITERAL_STREAM_FROM_OCTETS * 2)));
    expect(serializeImap(await buildFetchItems(bare.message, parseFetchAttributes(parseCommandText('t FETCH 2 UID').args[1], {}), { preview: true })).toString()).to.equal('(UID 2 PREVIEW "")');
    expect(bare.reads).to.deep.equal({ whole: 0, streamed: 0, prefixes: [] });
    // On the wire, beside the streamed literal of the whole message.
    const [, , fetch] = await rawSession(h.securePort, h.certs.ca.cert, [`LOGIN alice "${ALICE.password}"`, 'EXAMINE INBOX', 'FETCH 1 (BODY.PEEK[] PREVIEW)']);
    const expected = Buffer.concat([Buffer.from(`* 1 FETCH (BODY[] {${large.length}}\r\n`), large, Buffer.from(` PREVIEW "${text}")\r\nT2 OK`)]);
    expect(fetch!.subarray(0, expected.length).equals(expected)).to.equal(true);
  });
  it('answers a message list (header sections, ENVELOPE, BODYSTRUCTURE, PREVIEW) and a text part of a large message from the start of its file', async () => {
    const large = withAttachment('Numbers attached.', LITERAL_STREAM_FROM_OCTETS * 4);
    const delivered = await h.store.deliver(ALICE.addresses[0], large);
    const { message, reads } = counted(delivered);
    // The same message read whole: what every item must equal.
    const whole: StoredMessage = { uid: delivered.uid, internalDate: delivered.internalDate, size: delivered.size, flags: delivered.flags, modseq: delivered.modseq, raw: async () => large };
    const atts = '(UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT MIME-VERSION)] BODY.PEEK[HEADER.FIELDS.NOT (FROM)] BODY.PEEK[HEADER]<10.20> RFC822.HEADER)';
    const req = parseFetchAttributes(parseCommandText(`t FETCH 1 ${atts}`).args[1], {});
    const got = serializeImap(await buildFetchItems(message, req, { preview: true })).toString();
    expect(got).to.equal(serializeImap(await buildFetchItems(whole, req, { preview: true })).toString());
    expect(got).to.include('BODY[HEADER.FIELDS (SUBJECT MIME-VERSION)] {38}\r\nSubject: report\r\nMIME-Version: 1.0\r\n\r\n');
    // The header, then up to the text part's end for PREVIEW: never the 1 MB message.
    expect(reads).to.deep.equal({ whole: 0, streamed: 0, prefixes: [endOf(large, '\r\n\r\n'), endOf(large, 'Numbers attached.')] });
    // The text beside the attachment, its MIME header, ranges: up to where the last of them ends, in one read.
    const parts = counted(delivered);
    // Sections that name nothing (a part 3, the header of a part that is no message) are NIL, as from the whole message.
    const partAtts = '(BODY.PEEK[1] BODY.PEEK[1.MIME] BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[]<0.100> BODY.PEEK[TEXT]<2.30> BODY.PEEK[2]<0.10> BODY.PEEK[3] BODY.PEEK[2.HEADER])';
    const partReq = parseFetchAttributes(parseCommandText(`t FETCH 1 ${partAtts}`).args[1], {});
    const partGot = serializeImap(await buildFetchItems(parts.message, partReq)).toString();
    expect(partGot).to.equal(serializeImap(await buildFetchItems(whole, partReq)).toString());
    expect(partGot).to.include('BODY[1] {17}\r\nNumbers attached. BODY[1.MIME]');
    expect(partGot).to.include(' BODY[3] NIL BODY[2.HEADER] NIL)');
    expect(parts.reads).to.deep.equal({ whole: 0, streamed: 0, prefixes: [endOf(large, 'filename="data.bin"\r\n\r\n') + 10] });
    // The whole text (or the whole message) reaches the end: read whole, as before.
    const text = counted(delivered);
    await buildFetchItems(text.message, parseFetchAttributes(parseCommandText('t FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])').args[1], {}));
    expect(text.reads).to.deep.equal({ whole: 1, streamed: 0, prefixes: [] });
    const [, , fetch] = await rawSession(h.securePort, h.certs.ca.cert, [`LOGIN alice "${ALICE.password}"`, 'EXAMINE INBOX', 'FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])']);
    expect(fetch!.toString('latin1')).to.match(/^\* 1 FETCH \(UID 1 BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{19\}\r\nSubject: report\r\n\r\n\)\r\nT2 OK /);
  });
});
