import { iterations } from './harness.js';
import { pipelinedSession } from './refs/smtp-load.js';
import { startPosternSmtp, testMessage, type NotedResult } from './smtp-transaction.bench.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';

/**
 * JavaScript heap kept per message stored in the memory store (issue 15: every major collection marks what the store
 * keeps, so its cost per message is what makes throughput fall as the store grows). N 10 KB messages go through one
 * pipelined STARTTLS session into an in-process Postern (memory store, SMTP module, logging off); the heap growth
 * after a full collection, divided by N, is Postern's record of a message: the message record, its envelope record,
 * the view of its octets. The bodies themselves live outside the JavaScript heap (Buffers) and are not counted.
 *
 * Reference: the least any server keeps, one Buffer per message (what smtp-server's `onData` in the transaction
 * bench and the floor server of `smtpHotpath` keep), measured in the same process. Goal ≤ 6x: the store keeps a
 * message's envelope (sender, recipients, HELO, client, TLS facts) and IMAP state (UID, flags, modification
 * sequence, internal date) beside the octets. Needs `--expose-gc`.
 */
export async function storedMessageMemory(certs: DevCertificates): Promise<NotedResult> {
  const n = iterations(5000, 40);
  const message = testMessage(10 * 1024);
  const server = await startPosternSmtp(certs);
  let subject: number;
  try {
    // Warm-up: the code paths compiled, the user's INBOX made, the store's shared strings and lists filled.
    const warm = iterations(200, 40);
    await pipelinedSession(server.port, certs, Array.from({ length: warm }, () => message));
    const before = heapAfterGc();
    await pipelinedSession(server.port, certs, Array.from({ length: n }, () => message));
    subject = (heapAfterGc() - before) / n;
    const stored = await server.stored();
    if (stored !== warm + n) throw new Error(`expected ${warm + n} stored messages, found ${stored}`);
  } finally {
    await server.stop();
  }
  const kept: Buffer[] = [];
  const before = heapAfterGc();
  for (let i = 0; i < n; i++) kept.push(Buffer.concat([message]));
  const reference = (heapAfterGc() - before) / n;
  if (kept.length !== n) throw new Error('reference lost its messages');
  return {
    name: 'heap kept per stored message',
    unit: 'message (bytes)',
    subject,
    reference,
    referenceName: 'one Buffer per message',
    goal: 6,
    note: `postern ${subject.toFixed(0)} B per stored 10 KB message in its JavaScript heap, one Buffer ${reference.toFixed(0)} B (${n} messages)`,
  };
}

/** `heapUsed` after two full collections (the second one sweeps what the first one's finalizers released). */
function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('storedMessageMemory needs node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
