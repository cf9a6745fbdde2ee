/**
 * SMTP load drivers for the delivery benchmarks: STARTTLS sessions (no AUTH: mail for a local recipient, as an MX
 * receives it), pipelined transactions in one session, and many concurrent senders.
 */
import { ENVELOPE, SmtpWire } from '../smtp-transaction.bench.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';

/** Greeting, EHLO, STARTTLS, TLS handshake (trusting the dev CA, SNI localhost), EHLO again (RFC 3207 §4.2). */
export async function starttlsSession(port: number, certs: DevCertificates): Promise<SmtpWire> {
  const w = await SmtpWire.connect(port);
  try {
    await w.replies([220]);
    await w.exchange('EHLO client.bench.test\r\n', [250]);
    await w.exchange('STARTTLS\r\n', [220]);
    await w.startTls({ ca: certs.ca.cert, servername: 'localhost' });
    await w.exchange('EHLO client.bench.test\r\n', [250]);
    return w;
  } catch (err) {
    w.destroy();
    throw err;
  }
}

/**
 * One STARTTLS session delivering every message with RFC 2920 pipelining: MAIL+RCPT+DATA as one group, then each
 * body with its `.` and the next envelope (or QUIT) as the next group, so one round trip per message. Every reply
 * code is checked. Resolves the wall time in ms of the transactions (after the handshake).
 */
export async function pipelinedSession(port: number, certs: DevCertificates, messages: readonly Buffer[]): Promise<number> {
  const w = await starttlsSession(port, certs);
  try {
    const t0 = performance.now();
    await w.exchange(ENVELOPE, [250, 250, 354]);
    for (let i = 0; i < messages.length; i++) {
      const last = i === messages.length - 1;
      await w.exchange(Buffer.concat([messages[i], Buffer.from(`.\r\n${last ? 'QUIT\r\n' : ENVELOPE}`, 'latin1')]), last ? [250, 221] : [250, 250, 250, 354]);
    }
    return performance.now() - t0;
  } finally {
    w.destroy();
  }
}

/**
 * `total` whole transactions (connect, STARTTLS, envelope, body, QUIT) by `senders` concurrent clients, each
 * taking the next transaction when its previous one got `221`. Resolves the wall time and each transaction's
 * latency (connect to `221`), in ms.
 */
export async function concurrentSenders(
  port: number,
  certs: DevCertificates,
  senders: number,
  total: number,
  message: Buffer,
): Promise<{ wallMs: number; latencies: number[] }> {
  let next = 0;
  const latencies: number[] = [];
  const body = Buffer.concat([message, Buffer.from('.\r\nQUIT\r\n', 'latin1')]);
  const worker = async (): Promise<void> => {
    // Bounded: each pass takes one of the `total` transactions.
    while (next < total) {
      next++;
      const t = performance.now();
      const w = await starttlsSession(port, certs);
      try {
        await w.exchange(ENVELOPE, [250, 250, 354]);
        await w.exchange(body, [250, 221]);
      } finally {
        w.destroy();
      }
      latencies.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(senders, total) }, worker));
  return { wallMs: performance.now() - t0, latencies };
}
