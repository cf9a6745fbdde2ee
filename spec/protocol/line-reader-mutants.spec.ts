/**
 * LineReader behaviour pinned down by mutation testing (issue 16): pausing the connection above the high-water mark
 * and resuming it once the buffer drained, the rest of a dropped line arriving in chunks that end in a CR or start
 * with an LF, a refused literal's octets arriving without a line end, and when the whole-line deadline starts
 * (not on silence; on the rest of a dropped line that trickles in). Real loopback sockets; each chunk is written only
 * after the server-side connection delivered the previous one, so the chunk boundaries are the ones named.
 */
import { expect } from 'chai';
import { lineReaderPair, resultText, type LineReaderPair } from '../support/line-reader-pair.js';

type Pair = LineReaderPair;
const pair = lineReaderPair;
const text = resultText;

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
    await p.chunk(`${'y'.repeat(14)}\r\n${'z'.repeat(14)}\r\n`); // 288
    expect(p.flow).to.deep.equal(['pause']);
    // One line consumed: 272, still above the mark, still paused. Two: 256, at the mark: resumed, once.
    expect(text(p.reader.tryReadLine())).to.equal(`line ${'x'.repeat(14)}`);
    expect(p.flow).to.deep.equal(['pause']);
    expect(text(p.reader.tryReadLine())).to.equal(`line ${'x'.repeat(14)}`);
    expect(p.reader.bufferedLength).to.equal(256);
    expect(p.flow).to.deep.equal(['pause', 'resume']);
    for (let i = 2; i < 16; i++) expect(text(await p.reader.readLine())).to.equal(`line ${'x'.repeat(14)}`);
    expect(text(await p.reader.readLine())).to.equal(`line ${'y'.repeat(14)}`);
    expect(text(await p.reader.readLine())).to.equal(`line ${'z'.repeat(14)}`);
    // Waiting for a line with nothing buffered resumes nothing more.
    const next = p.reader.readLine();
    await p.chunk('last\r\n');
    expect(text(await next)).to.equal('line last');
    expect(p.flow).to.deep.equal(['pause', 'resume']);
  });

  it('counts maxLineLength + 2 into the high-water mark: a longest line with its CRLF does not pause', async () => {
    p = await pair(300);
    await p.chunk(`${'x'.repeat(300)}\r\n`);
    expect(p.flow).to.deep.equal([]);
    expect(p.reader.tryReadLine()).to.deep.equal({ kind: 'line', line: Buffer.from('x'.repeat(300)) });
  });

  for (const [how, start] of [
    ['the rest of an over-long line', 'x'.repeat(20)],
    ['the rest of an over-long line ended by a bare LF', `${'x'.repeat(20)}\n`],
  ] as const) {
    it(`drops ${how} as it arrives, buffering and pausing nothing`, async () => {
      p = await pair(16);
      const first = p.reader.readLine();
      await p.chunk(start);
      expect(text(await first)).to.equal('too-long');
      if (!start.endsWith('\n')) {
        const rest = p.reader.readLine();
        await p.chunk('y'.repeat(1000));
        expect(p.reader.bufferedLength).to.equal(0);
        await p.chunk('\r\nNEXT\r\n');
        expect(text(await rest)).to.equal('line NEXT');
      } else {
        await p.chunk('y'.repeat(1000));
        expect(p.reader.bufferedLength).to.equal(0);
        await p.chunk('\r\nNEXT\r\n');
        expect(text(await p.reader.readLine())).to.equal('line NEXT');
      }
      expect(p.flow).to.deep.equal([]);
    });
  }

  it('raises the high-water mark with a longer line limit: a longest SASL-sized line with its CRLF does not pause', async () => {
    p = await pair(64); // high-water mark 256
    expect(p.reader.setMaxLineLength(300)).to.equal(64);
    await p.chunk(`${'x'.repeat(300)}\r\n`);
    expect(p.flow).to.deep.equal([]);
    expect(p.reader.tryReadLine()).to.deep.equal({ kind: 'line', line: Buffer.from('x'.repeat(300)) });
    // Back to 64 octets: the mark stays where it was raised to.
    expect(p.reader.setMaxLineLength(64)).to.equal(300);
    await p.chunk(`${'y'.repeat(300)}\r\n`);
    expect(p.flow).to.deep.equal([]);
    expect(text(p.reader.tryReadLine())).to.equal('too-long');
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

  it('hands octetsAfterDroppedLine the last 64 octets of a dropped line that arrives in small chunks', async () => {
    const tails: string[] = [];
    p = await pair(16, {
      octetsAfterDroppedLine: (tail) => {
        tails.push(tail.toString('latin1'));
        return tail.toString('latin1').endsWith('{5+}') ? 5 : 0;
      },
    });
    const line = `a APPEND INBOX ${'A'.repeat(30)}${'0123456789'.repeat(8)} {5+}`;
    const first = p.reader.readLine();
    await p.chunk(line.slice(0, 45));
    expect(text(await first)).to.equal('too-long');
    const next = p.reader.readLine();
    for (let i = 45; i < line.length; i += 10) await p.chunk(line.slice(i, i + 10));
    // The literal is dropped; the line after it is a command, since 0 octets follow the literal's line.
    await p.chunk('\r\n12345 rest\r\nNEXT\r\n');
    expect(text(await next)).to.equal('line NEXT');
    expect(tails).to.deep.equal([line.slice(-64), ' rest']);
  });

  it('reports a leading bare LF at once and drops only its own line', async () => {
    p = await pair(16);
    await p.chunk('\nNEXT\r\nLAST\r\n');
    expect(text(await p.reader.readLine())).to.equal('bare-lf');
    expect(text(await p.reader.readLine())).to.equal('line LAST');
  });

  it('reports a line of exactly the limit ended by a bare LF as bare-lf, not too-long', async () => {
    p = await pair(16);
    await p.chunk(`${'x'.repeat(16)}\nrest\r\nNEXT\r\n`);
    expect(text(await p.reader.readLine())).to.equal('bare-lf');
    expect(text(await p.reader.readLine())).to.equal('line NEXT');
  });

  it('waits for the CR and the LF of a line of exactly the limit that arrive in separate chunks', async () => {
    p = await pair(16);
    const read = p.reader.readLine();
    await p.chunk('x'.repeat(16));
    await p.chunk('\r');
    expect(p.reader.tryReadLine()).to.equal(undefined);
    await p.chunk('\nNEXT\r\n');
    expect(text(await read)).to.equal(`line ${'x'.repeat(16)}`);
    expect(text(await p.reader.readLine())).to.equal('line NEXT');
  });

  it('gives up on a dropped line only past 1 MiB of it, and then for good', async () => {
    p = await pair(16);
    const mib = 1024 * 1024;
    // A read is always pending, as in a session: the dropped octets are counted as they arrive, never buffered.
    const first = p.reader.readLine();
    const sent = p.chunk('x'.repeat(mib));
    expect(text(await first)).to.equal('too-long');
    let settled = false;
    const rest = p.reader.readLine().then((r) => ((settled = true), r));
    await sent;
    await new Promise((r) => setImmediate(r));
    expect(settled).to.equal(false); // exactly 1 MiB: not yet
    await p.chunk('\r\nok\r\n');
    expect(text(await rest)).to.equal('line ok');
    const again = p.reader.readLine();
    const more = p.chunk('x'.repeat(mib + 1));
    expect(text(await again)).to.equal('too-long');
    expect(text(await p.reader.readLine())).to.equal('runaway');
    await more;
    await p.chunk('ok\r\n');
    expect(text(await p.reader.readLine())).to.equal('runaway');
  });

  it('reads the next line when octetsAfterDroppedLine answers 0', async () => {
    p = await pair(16, { octetsAfterDroppedLine: () => 0 });
    await p.chunk(`${'x'.repeat(20)}\r\nNEXT\r\n`);
    expect(text(await p.reader.readLine())).to.equal('too-long');
    expect(text(await p.reader.readLine())).to.equal('line NEXT');
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

  it('clears the line deadline of a line that arrived in chunks once it is complete', async () => {
    let fired = 0;
    p = await pair(64, { lineTimeoutMs: 60, onLineTimeout: () => fired++ });
    const read = p.reader.readLine();
    await p.chunk('ab');
    await p.chunk('cd');
    await p.chunk('ef\r\n');
    expect(text(await read)).to.equal('line abcdef');
    await new Promise((r) => setTimeout(r, 150)); // longer than the deadline: it must not fire any more
    expect(fired).to.equal(0);
  });

  it('sets no line deadline for lineTimeoutMs 0, nor without onLineTimeout', async () => {
    let fired = 0;
    p = await pair(64, { lineTimeoutMs: 0, onLineTimeout: () => fired++ });
    const read = p.reader.readLine();
    await p.chunk('ab');
    await new Promise((r) => setTimeout(r, 30));
    await p.chunk('cd\r\n');
    expect(text(await read)).to.equal('line abcd');
    expect(fired).to.equal(0);
    await p.close();
    p = await pair(64, { lineTimeoutMs: 30 });
    const second = p.reader.readLine();
    await p.chunk('ab');
    await p.chunk('cd\r\n');
    expect(text(await second)).to.equal('line abcd');
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

  describe('dot bodies and byte counts across chunks', () => {
    /** Reads `gen` one part per chunk: each chunk is delivered, then the next part is taken. */
    async function parts(gen: AsyncGenerator<Buffer>, chunks: readonly string[]): Promise<Array<string | undefined>> {
      const out: Array<string | undefined> = [];
      for (const c of chunks) {
        await p!.chunk(c);
        const r = await gen.next();
        out.push(r.done ? undefined : r.value.toString('latin1'));
      }
      return out;
    }

    it('yields each chunk as it comes, holding back only a CR or CRLF that could start the terminator', async () => {
      p = await pair(64);
      const gen = p.reader.readDotBody();
      expect(await parts(gen, ['abc', '.def\r', '\nghi\r\n', 'jk\n', 'x.y', 'z\rX'])).to.deep.equal([
        'abc',
        '.def', // mid-line: no unstuffing
        '\r\nghi',
        '\r\njk\n',
        'x.y',
        'z\rX', // a CR and another octet cannot start the terminator
      ]);
      // A chunk of just CRLF is held back whole: the next one may start with the terminator's dot.
      await p.chunk('\r\n');
      const held = gen.next();
      await p.chunk('..z\r\n');
      expect((await held).value?.toString('latin1')).to.equal('\r\n');
      expect((await gen.next()).value?.toString('latin1')).to.equal('.z'); // at a line start: unstuffed
      // A line-start dot and one more octet that is not a CR: stuffing, decided without waiting for more.
      const crlf = gen.next();
      await p.chunk('.y');
      expect((await crlf).value?.toString('latin1')).to.equal('\r\n');
      expect((await gen.next()).value?.toString('latin1')).to.equal('y');
      await p.chunk('\r\n.\r\n');
      expect((await gen.next()).value?.toString('latin1')).to.equal('\r\n');
      expect((await gen.next()).done).to.equal(true);
      expect(p.reader.lastBodyComplete).to.equal(true);
    });

    it('ends the body at a terminator split after its dot and after its CR', async () => {
      p = await pair(64);
      const gen = p.reader.readDotBody();
      expect(await parts(gen, ['a\r\n'])).to.deep.equal(['a']);
      // Each chunk reaches a generator that is waiting for more (not suspended at a yield).
      const crlf = gen.next();
      await p.chunk('.');
      expect((await crlf).value?.toString('latin1')).to.equal('\r\n');
      const end = gen.next();
      await p.chunk('\r');
      await p.chunk('\nNEXT\r\n');
      expect((await end).done).to.equal(true);
      expect(p.reader.lastBodyComplete).to.equal(true);
      expect(text(await p.reader.readLine())).to.equal('line NEXT');
    });

    it('takes a line-start dot followed by CR and another octet for stuffing, not for the terminator', async () => {
      p = await pair(64);
      const body = (async () => {
        const got: Buffer[] = [];
        for await (const part of p!.reader.readDotBody()) got.push(part);
        return Buffer.concat(got).toString('latin1');
      })();
      p.client.write('a\r\n.\rb\r\n.\r\n');
      expect(await body).to.equal('a\r\n\rb\r\n');
    });

    it('sets no body deadline for bodyTimeoutMs 0, and clears it after a byte count', async () => {
      let fired = 0;
      p = await pair(64, { bodyTimeoutMs: 0, onBodyTimeout: () => fired++ });
      const gen = p.reader.readDotBody();
      expect(await parts(gen, ['abc'])).to.deep.equal(['abc']);
      await new Promise((r) => setTimeout(r, 30));
      await p.chunk('\r\n.\r\n');
      expect((await gen.next()).value?.toString('latin1')).to.equal('\r\n');
      expect(fired).to.equal(0);
      await p.close();
      p = await pair(64, { bodyTimeoutMs: 60, onBodyTimeout: () => fired++ });
      const exact = p.reader.readExactly(6);
      await p.chunk('abc');
      await p.chunk('def');
      expect((await exact)?.toString()).to.equal('abcdef');
      await new Promise((r) => setTimeout(r, 150)); // longer than the deadline: it must not fire any more
      expect(fired).to.equal(0);
    });
  });
});
