import { connectForGreeting, posternNote, reference } from './servers.js';
import { iterations, timePerRun, type BenchResult } from './harness.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';

/**
 * Implicit-TLS accept → handshake → greeting, one connection at a time. Reference: `tls.createServer` writing the
 * same greeting. Goal: Postern's in-place wrapping, policy evaluation and session set-up add at most 30 %.
 */
export async function tlsHandshake(certs: DevCertificates): Promise<BenchResult> {
  const n = iterations(300);
  const opts = { ca: certs.ca.cert, servername: 'localhost' };
  const measure = async (start: typeof posternNote): Promise<number> => {
    const server = await start(certs, true);
    try {
      return await timePerRun(n, async () => {
        const s = await connectForGreeting(server.port, opts);
        s.destroy();
      });
    } finally {
      await server.stop();
    }
  };
  const ref1 = await measure(reference);
  const subject = await measure(posternNote);
  const ref2 = await measure(reference);
  return { name: 'implicit TLS handshake + greeting', unit: 'connection (ms)', subject, reference: (ref1 + ref2) / 2, referenceName: 'node:tls server', goal: 1.3 };
}
