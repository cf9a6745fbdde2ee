import { once } from 'node:events';
import tls from 'node:tls';
import pg from 'pg';
import { PostgresMailStore } from '../lib/backends/postgres/postgres-mail-store.js';
import { MailStore } from '../lib/contracts/mail-store.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';
import { createContainer } from '../lib/di/create-container.js';
import { imapModule } from '../lib/di/imap.module.js';
import { Listener } from '../lib/di/listener.js';
import { postgresModule } from '../lib/di/postgres.module.js';
import { postgresMissing, startPostgresCluster } from '../spec/support/postgres-cluster.js';
import { iterations } from './harness.js';
import type { NotedResult } from './smtp-transaction.bench.js';

/**
 * IMAP IDLE notification latency across nodes: node A (a `PostgresMailStore` of its own, as another process would
 * have) delivers one message; the time until an IMAPS client IDLEing on node B reads `* N EXISTS`. That path is the
 * delivery statement and its COMMIT on A, PostgreSQL's NOTIFY, B's LISTEN session, B's IMAP session re-reading the
 * mailbox, and TLS.
 *
 * **Reference:** the same delivery made through node B's own store, measured in the same run on the same database:
 * the identical SQL and session work without the hop between nodes (B learns of its own change synchronously).
 * The ratio is what crossing nodes adds. The floor of any PostgreSQL notification (one client's NOTIFY until a
 * LISTENing client has it) is measured too and printed. The test cluster runs with fsync off, so commit flushes are
 * in neither number.
 *
 * Goal ≤ 2 at p50 and p99 (the hop is one NOTIFY and must not dominate), and in absolute terms far below the one
 * second the issue asks for. The IMAP session re-reads the whole mailbox's metadata on each change, so both grow
 * with the mailbox (here it grows from 5 to 5 + 2n messages).
 */
export async function postgresIdle(certs: DevCertificates): Promise<readonly NotedResult[]> {
  const missing = postgresMissing();
  if (missing !== undefined) {
    console.log(`IDLE latency across nodes: skipped (${missing})`);
    return [];
  }
  const n = iterations(100, 5);
  const cluster = await startPostgresCluster();
  try {
    const url = await cluster.createDatabase();
    const floor = await notifyLatencies(url, n);
    const { across, local } = await idleLatencies(url, certs, n);
    const p = (values: number[], q: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * q) / 100))]!;
    const ms = (values: number[]): string => `p50 ${p(values, 50).toFixed(2)} ms, p99 ${p(values, 99).toFixed(2)} ms`;
    const result = (q: number): NotedResult => ({
      name: `IDLE latency across nodes p${q}`,
      unit: 'notification (ms)',
      subject: p(across, q),
      reference: p(local, q),
      referenceName: 'same node',
      goal: 2,
      note: `across nodes ${ms(across)}; same node ${ms(local)}; bare LISTEN/NOTIFY ${ms(floor)}; ${n} deliveries each`,
    });
    return [result(50), result(99)];
  } finally {
    await cluster.stop();
  }
}

function since(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** NOTIFY on one connection until the LISTENing one receives it, `n` times. */
async function notifyLatencies(url: string, n: number): Promise<number[]> {
  const [sender, listener] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
  await Promise.all([sender.connect(), listener.connect()]);
  try {
    await listener.query('LISTEN bench_reference');
    const times: number[] = [];
    for (let i = 0; i < n + 5; i++) {
      const received = once(listener, 'notification');
      const start = process.hrtime.bigint();
      await sender.query(`NOTIFY bench_reference, '${i}'`);
      await received;
      if (i >= 5) times.push(since(start)); // the first five warm up
    }
    return times;
  } finally {
    await Promise.all([sender.end(), listener.end()]);
  }
}

/**
 * An IDLE session on node B; deliveries alternate between node A and node B's own store (so both see the same
 * mailbox sizes); each is timed until the session reads its `* N EXISTS`.
 */
async function idleLatencies(url: string, certs: DevCertificates, n: number): Promise<{ across: number[]; local: number[] }> {
  const nodeA = new PostgresMailStore({ url });
  const nodeB = createContainer({ log: { silent: true }, tls: { certificate: certs.server }, imap: { imap: { port: 0 }, imaps: { port: 0 } } }, [
    postgresModule(url),
    imapModule,
  ]);
  let socket: tls.TLSSocket | undefined;
  try {
    await nodeA.users.add({ username: 'alice', password: 'secret', addresses: ['alice@example.com'] });
    const storeB = nodeB.get(MailStore);
    const listener = nodeB.getAll(Listener).find((l) => l.name === 'imaps');
    if (!listener) throw new Error('postern: no imaps listener bound');
    const { port } = await listener.start();
    socket = tls.connect({ host: '127.0.0.1', port, ca: certs.ca.cert, servername: 'localhost' });
    const lines = lineReader(socket);
    await lines(/^\* OK/);
    socket.write('a LOGIN alice secret\r\n');
    await lines(/^a OK/);
    socket.write('b SELECT INBOX\r\n');
    await lines(/^b OK/);
    socket.write('c IDLE\r\n');
    await lines(/^\+ /);
    const across: number[] = [];
    const local: number[] = [];
    const warmup = 5;
    for (let i = 1; i <= warmup + 2 * n; i++) {
      const fromA = i % 2 === 0;
      const start = process.hrtime.bigint();
      const seen = lines(new RegExp(`^\\* ${i} EXISTS$`));
      await (fromA ? nodeA : storeB).deliver('alice@example.com', Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
      await seen;
      if (i > warmup) (fromA ? across : local).push(since(start));
    }
    socket.write('DONE\r\n');
    await lines(/^c OK/);
    return { across, local };
  } finally {
    socket?.destroy();
    await nodeB.unbindAllAsync();
    await nodeA.close();
  }
}

/** Returns a function that resolves the next line matching a pattern (earlier lines are dropped); bounded by 10 s. */
function lineReader(socket: tls.TLSSocket): (pattern: RegExp) => Promise<string> {
  let buffer = '';
  let waiter: { pattern: RegExp; resolve: (line: string) => void } | undefined;
  const scan = (): void => {
    let i: number;
    while (waiter && (i = buffer.indexOf('\r\n')) !== -1) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (waiter.pattern.test(line)) {
        const w = waiter;
        waiter = undefined;
        w.resolve(line);
      }
    }
  };
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    scan();
  });
  return (pattern) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within 10 s`)), 10_000);
      waiter = {
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      scan();
    });
}
