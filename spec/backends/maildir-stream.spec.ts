import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { canReadPrefix, isStreamable } from '../../lib/contracts/mail-store.js';
import { SYNC_IO_MAX_OCTETS } from '../../lib/backends/maildir/folder-files.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { prefixThenRest, wireChunks, wireChunksOf } from '../../lib/pop3/pop3-message.js';
import { startMailServer } from '../../lib/test-double/start-mail-server.js';
import { countingReads, noReads } from '../support/counted-reads.js';
import { LineClient } from '../support/line-client.js';

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
    // Its first octets alone (PrefixReadableMessage), after the rename too: one synchronous read for a few KB, one
    // asynchronous read past SYNC_IO_MAX_OCTETS, all of it when asked for more.
    if (!canReadPrefix(stored)) expect.fail('a Maildir message can be read in part');
    for (const octets of [0, 100, SYNC_IO_MAX_OCTETS + 1, raw.length + 10]) {
      expect((await stored.readPrefix(octets)).equals(raw.subarray(0, octets)), `prefix of ${octets}`).to.equal(true);
    }
    await view.expunge('INBOX', [stored.uid]);
    for (const read of [() => stored.openStream(), () => stored.readPrefix(100)]) {
      try {
        await read();
        expect.fail('an expunged message must not be read');
      } catch (err) {
        expect(err).to.have.property('code', 'NO_SUCH_MESSAGE');
      }
    }
    await view.release();
  });
  it('gives TOP the same octets from a stream cut anywhere as from the whole buffer, and reads no further', async () => {
    const raw = awkward(5000);
    for (const lines of [0, 1, 7, 4999, 10_000]) {
      const whole = await collect(wireChunks(raw, lines));
      for (const size of [1, 7, 4096, raw.length]) {
        expect((await collect(wireChunksOf(chunked(raw, size), lines))).equals(whole), `TOP ${lines}, chunks of ${size}`).to.equal(true);
      }
    }
    // A prefix read first, then the stream from where it stopped (its chunks need not line up with the prefix).
    for (const lines of [2, 300, 10_000]) {
      const whole = await collect(wireChunks(raw, lines));
      for (const [first, size] of [[1000, 7], [4096, 4096], [5000, 65536]] as const) {
        const rest = async (): Promise<Readable> => chunked(raw, size);
        expect((await collect(wireChunksOf(prefixThenRest(raw.subarray(0, first), first, rest), lines))).equals(whole), `TOP ${lines} after ${first}, chunks of ${size}`).to.equal(true);
      }
    }
    // A prefix shorter than asked for is the whole message: no stream is opened.
    const noStream = async (): Promise<Readable> => expect.fail('the whole message was read already');
    expect((await collect(wireChunksOf(prefixThenRest(raw, raw.length + 1, noStream), 10_000))).equals(await collect(wireChunks(raw, 10_000)))).to.equal(true);
    // A header without the blank line after it: TOP adds the blank line (RFC 1939 §7), from a stream too.
    const headerOnly = Buffer.from('Subject: no body\r\n.X-Dot: 1');
    for (const size of [1, 5, 100]) expect((await collect(wireChunksOf(chunked(headerOnly, size), 3))).toString()).to.equal('Subject: no body\r\n..X-Dot: 1\r\n\r\n');
    let pulled = 0;
    async function* pieces(): AsyncGenerator<Buffer> {
      for (let i = 0; i < raw.length; i += 4096, pulled++) yield raw.subarray(i, i + 4096);
    }
    expect((await collect(wireChunksOf(pieces(), 2))).toString()).to.equal('Subject: big\r\n\r\n..dot line 0\r\nline 1 z\r\n');
    expect(pulled).to.equal(0); // the generator stopped within its first piece
  });

  it('answers POP3 TOP of a large message from one read of its start, streaming the rest only for more lines', async function () {
    this.timeout(30_000);
    const server = await startMailServer({ protocols: ['pop3'], store: `maildir:${root}`, users: ['alice:secret@example.org'], allowInsecureAuth: true });
    const client = await LineClient.connect(server.ports.pop3!);
    try {
      const raw = awkward(40_000); // about 1.9 MB
      await server.store.deliver('alice@example.org', raw);
      const reads = noReads();
      const openUser = server.store.openUser.bind(server.store);
      server.store.openUser = async (username) => {
        const view = await openUser(username);
        const messages = view.messages.bind(view);
        view.messages = async (mailbox, options) => (await messages(mailbox, options)).map((m) => countingReads(m, reads));
        return view;
      };
      await client.expect(/^\+OK/);
      await client.command('USER alice', /^\+OK/);
      await client.command('PASS secret', /^\+OK/);
      expect(await client.command('TOP 1 2', /^\.$/)).to.deep.equal(['+OK top of message follows', 'Subject: big', '', '..dot line 0', 'line 1 z', '.']);
      expect(reads).to.deep.equal({ whole: 0, streamed: 0, prefixes: [64 * 1024] });
      // More lines than the first 64 KiB hold: the stream goes on from where the read stopped, octet for octet.
      Object.assign(reads, noReads());
      const top = await client.command('TOP 1 5000', /^\.$/);
      const expected = Buffer.concat([...wireChunks(raw, 5000)]).toString('latin1').split('\r\n').slice(0, -1);
      expect(top.slice(1, -1)).to.deep.equal(expected);
      expect(reads.whole).to.equal(0);
      expect(reads.prefixes).to.deep.equal([64 * 1024]);
      expect(reads.streamed).to.be.within(64 * 1024 + 1, raw.length - 1);
      await client.command('QUIT', /^\+OK/);
    } finally {
      await client.close();
      await server.stop();
    }
  });
});
