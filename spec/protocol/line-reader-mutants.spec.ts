/**
 * LineReader behaviour pinned down by mutation testing (issue 16): pausing the connection above the high-water mark
 * and resuming it once the buffer drained, the rest of a dropped line arriving in chunks that end in a CR or start
 * with an LF, a refused literal's octets arriving without a line end, and when the whole-line deadline starts
 * (not on silence; on the rest of a dropped line that trickles in). Real loopback sockets; each chunk is written only
 * after the server-side connection delivered the previous one, so the chunk boundaries are the ones named.
 */
import net from 'node:net';
import { expect } from 'chai';
import type { Connection } from '../../lib/core/connection.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { LineReader, type LineReaderOptions, type LineResult } from '../../lib/protocol/line-reader.js';

const log = createLogger({ silent: true });

interface Pair {
  reader: LineReader;
  conn: Connection;
  client: net.Socket;
  /** `pause`/`resume` calls the reader made on the connection, in order. */
  flow: string[];
  /** Writes `text` and resolves once the server-side connection has delivered it (one or more `'data'` events). */
  chunk(text: string): Promise<void>;
  close(): Promise<void>;
}

async function pair(maxLineLength: number, options: LineReaderOptions = {}): Promise<Pair> {
  let accept!: (c: Connection) => void;
  const accepted = new Promise<Connection>((r) => (accept = r));
  const server = new TcpServer({ handle: (c) => accept(c) }, { port: 0, closeTimeoutMs: 100 }, log);
  const { port } = await server.start();
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => undefined);
  const conn = await accepted;
  const flow: string[] = [];
  const pause = conn.pause.bind(conn);
  const resume = conn.resume.bind(conn);
  conn.pause = () => {
    flow.push('pause');
    pause();
  };
  conn.resume = () => {
    flow.push('resume');
    resume();
  };
  const reader = new LineReader(conn, { maxLineLength, highWaterMark: 256, ...options });
  let received = 0;
  let waiting: { until: number; done: () => void } | undefined;
  // Registered after the reader's own listener: by the time this runs, the reader has taken the chunk.
  conn.on('data', (c: Buffer) => {
    received += c.length;
    if (waiting && received >= waiting.until) {
      waiting.done();
      waiting = undefined;
    }
  });
  return {
    reader,
    conn,
    client,
    flow,
    chunk: (text) =>
      new Promise<void>((done) => {
        waiting = { until: received + Buffer.byteLength(text, 'latin1'), done };
        client.write(Buffer.from(text, 'latin1'));
      }),
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}

function text(r: LineResult | undefined): string | undefined {
  return r === undefined ? undefined : r.kind === 'line' ? `line ${r.line.toString('latin1')}` : r.kind;
}

describe('protocol: LineReader (mutation testing)', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it('pauses the connection once more than the high-water mark is buffered, once, and resumes it when the buffer is back at the mark', async () => {
    p = await pair(64);
    const line = 'x'.repeat(14) + '\r\n'; // 16 octets
    await p.chunk(line.repeat(16)); // 256: at the mark, not above it
    expect(p.reader.bufferedLength).to.equal(256);
    expect(p.flow).to.deep.equal([]);
    await p.chunk('y'.repeat(14) + '\r\n'); // 272
    expect(p.flow).to.deep.equal(['pause']);
    // Consuming one line brings the buffer back to 256, at the mark: resumed then, and only once.
    expect(text(p.reader.tryReadLine())).to.equal(`line ${'x'.repeat(14)}`);
    expect(p.reader.bufferedLength).to.equal(256);
    expect(p.flow).to.deep.equal(['pause', 'resume']);
    for (let i = 1; i < 16; i++) expect(text(await p.reader.readLine())).to.equal(`line ${'x'.repeat(14)}`);
    expect(text(await p.reader.readLine())).to.equal(`line ${'y'.repeat(14)}`);
    expect(p.flow).to.deep.equal(['pause', 'resume']);
  });

  it('pauses for more than the mark that arrives in several chunks, and resumes when an over-long line is dropped', async () => {
    p = await pair(64);
    await p.chunk('a'.repeat(200) + '\r\n');
    expect(p.flow).to.deep.equal([]);
    await p.chunk('b'.repeat(60) + '\r\n'); // 264
    expect(p.flow).to.deep.equal(['pause']);
    expect(text(await p.reader.readLine())).to.equal('too-long');
    expect(p.flow).to.deep.equal(['pause', 'resume']);
    expect(text(await p.reader.readLine())).to.equal(`line ${'b'.repeat(60)}`);
  });

  it('resumes at discardBuffered when the dropped data was above the mark', async () => {
    p = await pair(64);
    await p.chunk('z\r\n'.repeat(100)); // 300
    expect(p.flow).to.deep.equal(['pause']);
    expect(p.reader.discardBuffered()).to.equal(300);
    expect(p.flow).to.deep.equal(['pause', 'resume']);
    await p.chunk('next\r\n');
    expect(text(await p.reader.readLine())).to.equal('line next');
  });

  it('keeps a CR that ends a chunk of a dropped line: its LF in the next chunk ends the line', async () => {
    p = await pair(16);
    const first = p.reader.readLine();
    await p.chunk('x'.repeat(20));
    expect(text(await first)).to.equal('too-long');
    const next = p.reader.readLine();
    await p.chunk('more of it\r');
    await p.chunk('\nNEXT\r\n');
    expect(text(await next)).to.equal('line NEXT');
  });

  it('does not take a CR that is followed by more of the dropped line for a line end', async () => {
    p = await pair(16);
    const first = p.reader.readLine();
    await p.chunk('x'.repeat(20));
    expect(text(await first)).to.equal('too-long');
    const next = p.reader.readLine();
    await p.chunk('\r');
    await p.chunk('still the same line');
    // A bare LF then: still inside the dropped line, which ends at the CRLF after DROPPED.
    await p.chunk('\nDROPPED\r\nNEXT\r\n');
    expect(text(await next)).to.equal('line NEXT');
  });

  it('drops a refused literal that arrives without a line end as octets, then the rest of its line', async () => {
    const tails: string[] = [];
    p = await pair(16, { octetsAfterDroppedLine: (tail) => void tails.push(tail.toString('latin1')) });
    p.reader.dropCommandRest(10);
    const next = p.reader.readLine();
    await p.chunk('0123456789');
    await p.chunk(' rest\r\nNEXT\r\n');
    expect(text(await next)).to.equal('line NEXT');
    expect(tails).to.deep.equal([' rest']);
  });

  it('does not start the line deadline on silence: a line sent after longer than the deadline is read', async () => {
    let fired = 0;
    p = await pair(64, { lineTimeoutMs: 40, onLineTimeout: () => fired++ });
    const read = p.reader.readLine();
    // Silence for longer than the deadline (the idle timer's business, not the line deadline's).
    await new Promise((r) => setTimeout(r, 120));
    p.client.write('late\r\n');
    expect(text(await read)).to.equal('line late');
    expect(fired).to.equal(0);
  });

  it('starts the line deadline while the rest of a dropped line trickles in, though nothing is buffered', async () => {
    let fired!: () => void;
    const timedOut = new Promise<void>((r) => (fired = r));
    p = await pair(16, { lineTimeoutMs: 100, onLineTimeout: () => fired() });
    p.client.write('x'.repeat(20));
    expect(text(await p.reader.readLine())).to.equal('too-long');
    const read = p.reader.readLine();
    const drip = setInterval(() => p?.client.write('x'), 10);
    try {
      await timedOut;
    } finally {
      clearInterval(drip);
    }
    expect(p.reader.bufferedLength).to.equal(0);
    p.client.end();
    expect(text(await read)).to.equal('closed');
  });
});
