import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isStreamable } from '../../lib/contracts/mail-store.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { wireChunks, wireChunksOf } from '../../lib/pop3/pop3-message.js';

/** A message with CRLF and bare LF line ends, dot-leading lines, and a last line without a line end. */
function awkward(lines: number): Buffer {
  const parts = ['Subject: big\r\n', '\r\n'];
  for (let i = 0; i < lines; i++) parts.push(i % 3 === 0 ? `.dot line ${i}\n` : `line ${i} ${'z'.repeat(i % 97)}\r\n`);
  parts.push('..last without end');
  return Buffer.from(parts.join(''));
}

async function collect(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return Buffer.concat(out);
}

/** `raw` as a stream of `size`-octet chunks. */
function chunked(raw: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < raw.length; i += size) parts.push(raw.subarray(i, i + size));
  return Readable.from(parts);
}

describe('MaildirMailStore streaming (StreamableMessage) and POP3 RETR from a stream', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-stream-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('gives the same wire octets from a stream cut anywhere as from the whole buffer', async () => {
    const raw = awkward(5000);
    const whole = await collect(wireChunks(raw));
    for (const size of [1, 2, 7, 4096, 65536, raw.length]) {
      expect((await collect(wireChunksOf(chunked(raw, size)))).equals(whole), `chunks of ${size}`).to.equal(true);
    }
  });

  it('streams a stored message in chunks, follows a flag rename, and refuses an expunged one with NO_SUCH_MESSAGE', async () => {
    const store = new MaildirMailStore({ root, fsync: false });
    await store.users.add({ username: 'alice', password: 'x', addresses: ['alice@example.org'] });
    const raw = awkward(40_000); // about 1.9 MB
    const stored = await store.deliver('alice@example.org', raw);
    expect(isStreamable(stored)).to.equal(true);
    if (!isStreamable(stored)) return;
    const view = await store.openUser('alice');
    await view.setFlags('INBOX', [stored.uid], ['\\Seen'], 'add');
    const sizes: number[] = [];
    const out: Buffer[] = [];
    for await (const chunk of await stored.openStream()) {
      sizes.push((chunk as Buffer).length);
      out.push(chunk as Buffer);
    }
    expect(Buffer.concat(out).equals(raw)).to.equal(true);
    expect(Math.max(...sizes)).to.be.at.most(64 * 1024);
    await view.expunge('INBOX', [stored.uid]);
    try {
      await stored.openStream();
      expect.fail('an expunged message must not open');
    } catch (err) {
      expect(err).to.have.property('code', 'NO_SUCH_MESSAGE');
    }
    await view.release();
  });
});
