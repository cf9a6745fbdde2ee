/**
 * A real loopback pair for the LineReader specs: the server side wrapped in a Connection + LineReader (high-water
 * mark 256 unless `options` says otherwise), the client a raw socket.
 */
import net from 'node:net';
import type { Connection } from '../../lib/core/connection.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { LineReader, type LineReaderOptions, type LineResult } from '../../lib/protocol/line-reader.js';

const log = createLogger({ silent: true });

/** The two ends and what the specs observe of them. */
export interface LineReaderPair {
  reader: LineReader;
  conn: Connection;
  client: net.Socket;
  /** `pause`/`resume` calls the reader made on the connection, in order. */
  flow: string[];
  /** Writes `text` and resolves once the server-side connection has delivered it (one or more `'data'` events). */
  chunk(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts a TcpServer on port 0, connects a client and wraps the accepted connection in a LineReader. */
export async function lineReaderPair(maxLineLength = 64, options: LineReaderOptions = {}): Promise<LineReaderPair> {
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

/** A result as one comparable string: `line <text>` or the kind (`too-long`, `bare-lf`, `closed`, …). */
export function resultText(r: LineResult | undefined): string | undefined {
  return r === undefined ? undefined : r.kind === 'line' ? `line ${r.line.toString('latin1')}` : r.kind;
}
