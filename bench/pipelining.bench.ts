import type net from 'node:net';
import { connectForGreeting, posternNote, reference } from './servers.js';
import { iterations, type BenchResult } from './harness.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';

/**
 * Command throughput: a client pipelines batches of 100 `ECHO` lines and waits for the 100 replies. Postern's
 * engine (bounded CRLF framing, command table, ordered replies flushed once per batch) against a naive reference
 * loop. The reference is a synchronous split loop with no limits, so the floor is high: Postern's async handler per
 * command (guards, error budget, awaitable hooks) measured ~3.4x, about 1.5 µs per command on a 2-core VM. Goal:
 * stay within 4x, so a regression in the hot path (per-line logging, copies, extra writes) shows up at once.
 */
export async function pipelining(certs: DevCertificates): Promise<BenchResult> {
  const batches = iterations(300, 3);
  const batch = Array.from({ length: 100 }, (_, i) => `ECHO line-${i}\r\n`).join('');
  const measure = async (start: typeof posternNote): Promise<number> => {
    const server = await start(certs, false);
    const s = await connectForGreeting(server.port);
    try {
      const t0 = process.hrtime.bigint();
      for (let b = 0; b < batches; b++) await roundTrip(s, batch, 100);
      return Number(process.hrtime.bigint() - t0) / 1e3 / (batches * 100);
    } finally {
      s.destroy();
      await server.stop();
    }
  };
  const ref1 = await measure(reference);
  const subject = await measure(posternNote);
  const ref2 = await measure(reference);
  return { name: 'pipelined commands', unit: 'command (µs)', subject, reference: (ref1 + ref2) / 2, referenceName: 'naive loop', goal: 4 };
}

function roundTrip(s: net.Socket, data: string, replies: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const onData = (d: Buffer): void => {
      for (const byte of d) if (byte === 0x0a) seen++;
      if (seen >= replies) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.write(data);
  });
}
