import type net from 'node:net';
import { connectForGreeting, posternNote, reference } from './servers.js';
import { iterations, type BenchResult } from './harness.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';

/**
 * Memory per idle TLS session after the greeting: heap growth for N connections held open, divided by N.
 * Reference: the same connections on a bare `tls.createServer`. Client sockets live in this process too, and
 * cost the same in both runs. Goal: Postern's session state (connection, reader, session, logger child) stays
 * within 2x of Node's own TLS socket cost. Needs `--expose-gc` for stable numbers.
 */
export async function sessionMemory(certs: DevCertificates): Promise<BenchResult> {
  const n = iterations(400, 5);
  const opts = { ca: certs.ca.cert, servername: 'localhost' };
  const measure = async (start: typeof posternNote): Promise<number> => {
    const server = await start(certs, true);
    const sockets: net.Socket[] = [];
    try {
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < n; i++) sockets.push(await connectForGreeting(server.port, opts));
      gc();
      return (process.memoryUsage().heapUsed - before) / n / 1024;
    } finally {
      for (const s of sockets) s.destroy();
      await server.stop();
    }
  };
  const ref = await measure(reference);
  const subject = await measure(posternNote);
  return { name: 'heap per idle TLS session', unit: 'session (KiB)', subject, reference: ref, referenceName: 'node:tls server', goal: 2 };
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}
