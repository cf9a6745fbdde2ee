import { expect } from 'chai';
import type net from 'node:net';
import type { Connection } from '../../lib/core/connection.js';
import type { LineReader } from '../../lib/protocol/line-reader.js';
import { lineReaderPair } from '../support/line-reader-pair.js';

const pair = lineReaderPair;

async function collect(gen: AsyncGenerator<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts).toString('latin1');
}

/** Writes `text` one byte per write, awaiting each, to exercise every chunk boundary. */
async function trickle(s: net.Socket, text: string): Promise<void> {
  for (const ch of text) await new Promise<void>((r) => s.write(ch, () => r()));
}

describe('protocol: LineReader', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  afterEach(async () => p?.close());

  it('splits on CRLF only: a bare LF is reported at once and its whole line (to the CRLF) is dropped', async () => {
    p = await pair();
    p.client.write('one\r\ntwo\n');
    expect(await p.reader.readLine()).to.deep.include({ kind: 'line' });
    // Reported while the client has sent no CRLF after the bare LF.
    expect(await p.reader.readLine()).to.deep.equal({ kind: 'bare-lf' });
    p.client.write('RSET, never a command\r\nthree\r\n');
    const third = await p.reader.readLine();
    expect(third.kind === 'line' && third.line.toString()).to.equal('three');
  });

  /** Reads `count` results as plain values (lines as latin1 text). */
  async function results(reader: LineReader, count: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = await reader.readLine();
      out.push(r.kind === 'line' ? `line ${JSON.stringify(r.line.toString('latin1'))}` : r.kind);
    }
    return out;
  }

  // The same bytes in one write and one byte per write must read the same: every chunk boundary (a CR at the end of a
  // chunk, an over-long line whose CR and LF arrive apart, a line of exactly the limit) is crossed by the trickle.
  const boundaryCases: Array<[string, string, string[]]> = [
    ['CRs inside and at the end of lines', 'a\rb\r\n\r\r\nc\r\n', ['line "a\\rb"', 'line "\\r"', 'line "c"']],
    ['an over-long line then short ones', `${'x'.repeat(20)}\r\nok\r\n${'y'.repeat(16)}\r\nz\r\n`, ['too-long', 'line "ok"', `line "${'y'.repeat(16)}"`, 'line "z"']],
    ['an over-long line ending in CR CR LF', `${'x'.repeat(17)}\r\r\nnext\r\n`, ['too-long', 'line "next"']],
    ['a line of exactly the limit plus a CR', `${'w'.repeat(16)}\r\r\nv\r\n`, ['too-long', 'line "v"']],
    ['a bare LF', 'p\nq\r\nr\r\n', ['bare-lf', 'line "r"']],
  ];
  for (const [name, input, expected] of boundaryCases) {
    it(`reads ${name} the same in one write and one byte at a time`, async () => {
      p = await pair(16);
      p.client.write(input);
      expect(await results(p.reader, expected.length)).to.deep.equal(expected);
      await p.close();
      p = await pair(16);
      const reading = results(p.reader, expected.length);
      await trickle(p.client, input);
      expect(await reading).to.deep.equal(expected);
    });
  }

  it('reports an over-long line as soon as it crosses the limit, before its CRLF, then drops its rest', async () => {
    p = await pair(16);
    p.client.write('x'.repeat(17));
    expect(await p.reader.readLine()).to.deep.equal({ kind: 'too-long' });
    p.client.write('y'.repeat(5000) + '\r');
    p.client.write('\nnext\r\n');
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('next');
  });

  it('accepts a line of exactly the limit whose CR and LF come one at a time', async () => {
    p = await pair(16);
    p.client.write('x'.repeat(16));
    const reading = p.reader.readLine();
    await trickle(p.client, '\r\n');
    const r = await reading;
    expect(r.kind === 'line' && r.line.length).to.equal(16);
  });

  it('asks octetsAfterDroppedLine at the end of a dropped line and drops the data it names, then the rest of that line', async () => {
    const tails: string[] = [];
    p = await pair(16, {
      octetsAfterDroppedLine: (tail) => {
        tails.push(tail.toString());
        return tail.toString().endsWith('{5+}') ? 5 : undefined;
      },
    });
    p.client.write('a APPEND INBOX xxxxxxxxx {5+}\r\nb NOOP rest\r\nc NOOP\r\n');
    expect(await p.reader.readLine()).to.deep.equal({ kind: 'too-long' });
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('c NOOP');
    expect(tails).to.deep.equal(['a APPEND INBOX xxxxxxxxx {5+}'.slice(-64), 'P rest']);
  });

  it("reports runaway when octetsAfterDroppedLine answers 'end'", async () => {
    p = await pair(16, { octetsAfterDroppedLine: () => 'end' });
    p.client.write('x'.repeat(20) + '{99999999999+}\r\nb NOOP\r\n');
    expect(await p.reader.readLine()).to.deep.equal({ kind: 'too-long' });
    expect(await p.reader.readLine()).to.deep.equal({ kind: 'runaway' });
  });

  it('dropCommandRest drops raw octets, CRLFs included, then the rest of their line', async () => {
    p = await pair();
    p.reader.dropCommandRest(8);
    p.client.write('b NOOP\r\n tail\r\nc NOOP\r\n');
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('c NOOP');
  });

  it('assembles lines split across many chunks', async () => {
    p = await pair();
    await trickle(p.client, 'HELLO there\r\n');
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('HELLO there');
  });

  it('reports an over-long line once, skips it to its CRLF, and goes on', async () => {
    p = await pair(16);
    p.client.write('x'.repeat(1000) + '\r\nnext\r\n');
    expect((await p.reader.readLine()).kind).to.equal('too-long');
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('next');
  });

  it('gives up on a line whose CRLF never comes, with bounded buffering', async () => {
    p = await pair(16);
    const junk = Buffer.alloc(64 * 1024, 0x41);
    let result: string | undefined;
    const reading = p.reader.readLine().then((r) => (result = r.kind));
    for (let i = 0; i < 20 && result === undefined; i++) {
      await new Promise<void>((r) => p.client.write(junk, () => r()));
      expect(p.reader.bufferedLength).to.be.lessThan(70 * 1024);
    }
    await reading;
    expect(result).to.equal('too-long');
    result = undefined;
    const dropping = p.reader.readLine().then((r) => (result = r.kind));
    for (let i = 0; i < 40 && result === undefined; i++) {
      await new Promise<void>((r) => p.client.write(junk, () => r()));
      expect(p.reader.bufferedLength).to.be.lessThan(70 * 1024);
    }
    await dropping;
    expect(result).to.equal('runaway');
  });

  it('unstuffs a dot body and stops only at CRLF.CRLF, across chunk boundaries', async () => {
    p = await pair();
    const body = collect(p.reader.readDotBody());
    await trickle(p.client, 'a\r\n..b\r\n.c\n.\nd\r\n.\r\nAFTER\r\n');
    expect(await body).to.equal('a\r\n.b\r\nc\n.\nd\r\n'); // RFC 5321 §4.5.2: a line's first dot goes
    expect(p.reader.lastBodyComplete).to.equal(true);
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('AFTER');
  });

  it('ends an empty body at a lone dot', async () => {
    p = await pair();
    p.client.write('.\r\nNEXT\r\n');
    expect(await collect(p.reader.readDotBody())).to.equal('');
    expect(p.reader.lastBodyComplete).to.equal(true);
  });

  it('keeps a body complete when the peer closes right after the dot, and not when it closes before', async () => {
    p = await pair();
    p.client.end('whole\r\n.\r\n');
    expect(await collect(p.reader.readDotBody())).to.equal('whole\r\n');
    expect(p.reader.lastBodyComplete).to.equal(true);
    await p.close();
    p = await pair();
    p.client.end('half a message\r\n');
    await collect(p.reader.readDotBody());
    expect(p.reader.lastBodyComplete).to.equal(false);
  });

  it('reads exact byte counts, then lines again', async () => {
    p = await pair();
    p.client.write('12345\r\n67890LINE\r\n');
    expect((await p.reader.readExactly(12))?.toString()).to.equal('12345\r\n67890');
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('LINE');
  });

  it('discards what is buffered (the STARTTLS rule) and reports how much', async () => {
    p = await pair();
    p.client.write('CMD\r\nINJECTED\r\n');
    await p.reader.readLine();
    await new Promise((r) => setImmediate(r));
    expect(p.reader.discardBuffered()).to.equal('INJECTED\r\n'.length);
    p.client.write('CLEAN\r\n');
    const r = await p.reader.readLine();
    expect(r.kind === 'line' && r.line.toString()).to.equal('CLEAN');
  });

  for (const kind of ['dot body', 'byte count'] as const) {
    it(`bounds a ${kind} that trickles in, byte after byte, with the body deadline`, async () => {
      let fired = 0;
      const holder: { conn?: Connection } = {};
      p = await pair(64, {
        bodyTimeoutMs: 150,
        onBodyTimeout: () => {
          fired++;
          holder.conn?.destroy('idle-timeout');
        },
      });
      holder.conn = p.conn;
      const body = collect(kind === 'dot body' ? p.reader.readDotBody() : p.reader.readBytes(1_000_000));
      const trickle = setInterval(() => p.client.write('x'), 10); // each byte restarts any idle timer
      try {
        await body;
      } finally {
        clearInterval(trickle);
      }
      expect(fired).to.equal(1);
      expect(p.reader.lastBodyComplete).to.equal(false);
    });
  }

  it('clears the body deadline once the body is complete', async () => {
    let fired = 0;
    p = await pair(64, { bodyTimeoutMs: 50, onBodyTimeout: () => fired++ });
    p.client.write('quick\r\n.\r\n');
    await collect(p.reader.readDotBody());
    await new Promise((r) => setTimeout(r, 100)); // longer than the deadline: it must not fire any more
    expect(fired).to.equal(0);
  });

  it('reports closed when the peer goes away', async () => {
    p = await pair();
    p.client.end();
    expect((await p.reader.readLine()).kind).to.equal('closed');
  });

  describe('line deadline (slowloris)', () => {
    let drip: NodeJS.Timeout | undefined;
    afterEach(() => clearInterval(drip));

    it('calls onLineTimeout when a line is still incomplete after lineTimeoutMs, although bytes keep arriving', async () => {
      let fired!: () => void;
      const timedOut = new Promise<void>((r) => (fired = r));
      const started = Date.now();
      p = await pair(64, { lineTimeoutMs: 150, onLineTimeout: () => fired() });
      // One byte every 20 ms: the socket is never idle for 150 ms, but the line never completes.
      drip = setInterval(() => p.client.write('x'), 20);
      const read = p.reader.readLine();
      await timedOut;
      expect(Date.now() - started).to.be.at.least(140);
      clearInterval(drip);
      p.client.end();
      expect(await read).to.deep.equal({ kind: 'closed' });
    });
  });
});
