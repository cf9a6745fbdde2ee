/**
 * LineReader edges the main spec does not reach (issue 16, found by reading the mutants): the pipelined fast path
 * (`tryReadLine`, `hasBufferedLine`) while a refused line is being dropped, the tail handed to
 * `octetsAfterDroppedLine` when a long line trickles in, a bare LF ending an over-long line, `discardBuffered` in the
 * middle of a drop, `runaway` staying final, a deadline set after construction, and short reads at close.
 * Real loopback sockets, as in line-reader.spec.ts.
 */
import type net from 'node:net';
import { expect } from 'chai';
import { lineReaderPair, resultText, type LineReaderPair } from '../support/line-reader-pair.js';
import { waitUntil } from '../support/wait-until.js';

type Pair = LineReaderPair;
const pair = lineReaderPair;
const text = resultText;

/** Writes and waits until the reader has buffered `octets` (bounded: the bytes are on loopback). */
async function arrive(p: Pair, text: string, octets: number): Promise<void> {
  p.client.write(text);
  await waitUntil(() => p.reader.bufferedLength >= octets, `${octets} buffered octets`);
  expect(p.reader.bufferedLength).to.equal(octets);
}

async function trickle(s: net.Socket, text: string): Promise<void> {
  for (const ch of text) await new Promise<void>((r) => s.write(ch, () => r()));
}


describe('protocol: LineReader edges', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it('serves pipelined lines from tryReadLine, and neither it nor hasBufferedLine sees lines while a refused one is dropped', async () => {
    p = await pair(16);
    p.client.write('one\r\n');
    expect(text(await p.reader.readLine())).to.equal('line one');
    await arrive(p, 'two\r\nthr', 8);
    expect(p.reader.hasBufferedLine()).to.equal(true);
    expect(text(p.reader.tryReadLine())).to.equal('line two');
    expect(p.reader.hasBufferedLine()).to.equal(false);
    expect(p.reader.tryReadLine()).to.equal(undefined);
    await arrive(p, 'x'.repeat(20), 23);
    expect(text(p.reader.tryReadLine())).to.equal('too-long');
    // Dropping the rest of that line: the CRLF that ends it is not a line for the fast path.
    await arrive(p, '\r\nfour\r\n', 31);
    expect(p.reader.hasBufferedLine()).to.equal(false);
    expect(p.reader.tryReadLine()).to.equal(undefined);
    expect(text(await p.reader.readLine())).to.equal('line four');
  });

  for (const [how, send] of [
    ['in one write', (s: net.Socket, t: string) => Promise.resolve(void s.write(t))],
    ['one byte at a time', trickle],
  ] as const) {
    it(`hands octetsAfterDroppedLine the last 64 octets of a long dropped line sent ${how}`, async () => {
      const tails: string[] = [];
      p = await pair(16, {
        octetsAfterDroppedLine: (tail) => {
          tails.push(tail.toString('latin1'));
          return tail.toString('latin1').endsWith('{5+}') ? 5 : undefined;
        },
      });
      const line = `a APPEND INBOX ${'A'.repeat(80)}${'B'.repeat(40)} {5+}`;
      const results: Promise<Array<string | undefined>> = (async () => [text(await p.reader.readLine()), text(await p.reader.readLine())])();
      await send(p.client, `${line}\r\n12345 rest\r\nnext\r\n`);
      expect(await results).to.deep.equal(['too-long', 'line next']);
      expect(tails).to.deep.equal([line.slice(-64), ' rest']);
    });
  }

  it('reports a bare LF that ends an over-long line as too-long, and drops the rest to the CRLF', async () => {
    p = await pair(16);
    p.client.write(`${'x'.repeat(20)}\nrest\r\nok\r\n`);
    expect(text(await p.reader.readLine())).to.equal('too-long');
    expect(text(await p.reader.readLine())).to.equal('line ok');
  });

  it('stops dropping at discardBuffered: the first line after a TLS upgrade is read whole', async () => {
    p = await pair(16);
    p.client.write('x'.repeat(20));
    expect(text(await p.reader.readLine())).to.equal('too-long');
    p.reader.discardBuffered();
    p.client.write('CLEAN\r\n');
    expect(text(await p.reader.readLine())).to.equal('line CLEAN');
    p.reader.dropCommandRest(100);
    p.reader.discardBuffered();
    p.client.write('AGAIN\r\n');
    expect(text(await p.reader.readLine())).to.equal('line AGAIN');
  });

  it('keeps answering runaway once a dropped line could not be resynchronized', async () => {
    p = await pair(16, { octetsAfterDroppedLine: () => 'end' });
    p.client.write(`${'x'.repeat(20)}\r\n`);
    expect(text(await p.reader.readLine())).to.equal('too-long');
    expect(text(await p.reader.readLine())).to.equal('runaway');
    await arrive(p, 'ok\r\n', 4);
    expect(p.reader.tryReadLine()).to.equal(undefined);
    expect(text(await p.reader.readLine())).to.equal('runaway');
  });

  it('applies a line deadline set after construction once the line has started', async () => {
    let fired!: () => void;
    const timedOut = new Promise<void>((r) => (fired = r));
    p = await pair(64, { onLineTimeout: () => fired() });
    p.reader.setLineTimeout(50);
    const read = p.reader.readLine();
    p.client.write('never ends');
    await timedOut;
    p.client.end();
    expect(text(await read)).to.equal('closed');
  });

  it('answers undefined from readExactly when the peer leaves early, and says it is closed', async () => {
    p = await pair(64);
    expect(p.reader.isClosed).to.equal(false);
    p.client.end('abc');
    expect(await p.reader.readExactly(5)).to.equal(undefined);
    expect(p.reader.isClosed).to.equal(true);
  });

  it('does not take a dot, or a dot and CR, cut off by a close for the terminator', async () => {
    for (const end of ['.', '.\r']) {
      p = await pair(64);
      const parts: Buffer[] = [];
      p.client.end(`abc\r\n${end}`);
      for await (const part of p.reader.readDotBody()) parts.push(part);
      expect(p.reader.lastBodyComplete, JSON.stringify(end)).to.equal(false);
      expect(Buffer.concat(parts).toString('latin1').startsWith('abc\r\n')).to.equal(true);
      await p.close();
      p = undefined;
    }
  });
});
