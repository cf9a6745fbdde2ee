import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ContainerModule } from 'inversify';
import type { DevCertificates } from '../lib/core/dev-certificates.js';
import { MailStore } from '../lib/contracts/mail-store.js';
import { createContainer } from '../lib/di/create-container.js';
import { Listener } from '../lib/di/listener.js';
import { maildirModule } from '../lib/di/maildir.module.js';
import { postgresModule } from '../lib/di/postgres.module.js';
import { smtpModule } from '../lib/di/smtp.module.js';
import { postgresMissing, startPostgresCluster } from '../spec/support/postgres-cluster.js';
import { iterations } from './harness.js';
import type { NotedResult } from './smtp-transaction.bench.js';

/** Concurrent SMTP senders (the figure). */
const SENDERS = 32;

/**
 * Durable delivery through SMTP at 32 concurrent senders into the PostgreSQL store: 32 plaintext sessions on
 * loopback each send their share of the messages (MAIL, RCPT and DATA pipelined, RFC 2920, then a 2 KB body), and
 * every `250` means committed. The cluster runs with PostgreSQL's durable defaults (fsync on, synchronous_commit on),
 * so concurrent commits share WAL flushes (group commit).
 *
 * **Reference:** the same senders and messages into Postern's Maildir store with fsync on (file, then directory,
 * before `250`), in the same run on the same disk: the durable single-node store Postern already ships. The ratio is
 * what a shared database costs (or saves) per message against local files. The Postfix reference belongs to
 * another benchmark module that was not on main when this was written.
 *
 * Goal ≤ 1.5: the store that scales out may cost a little more per message than local files, not much more.
 * Measured on a loaded 2-core VM: postgres ~290 messages/s, Maildir (with its group commit) ~300, ratio ~1.0.
 */
export async function postgresDelivery(certs: DevCertificates): Promise<readonly NotedResult[]> {
  const missing = postgresMissing();
  if (missing !== undefined) {
    console.log(`durable delivery at ${SENDERS} senders: skipped (${missing})`);
    return [];
  }
  const perSender = iterations(40, 2);
  const cluster = await startPostgresCluster({ durable: true });
  const dir = await mkdtemp(path.join(tmpdir(), 'postern-bench-maildir-'));
  try {
    const url = await cluster.createDatabase();
    const maildir1 = await deliveryCost(maildirModule(path.join(dir, 'a')), certs, perSender);
    const postgres = await deliveryCost(postgresModule(url, { poolSize: SENDERS }), certs, perSender);
    const maildir2 = await deliveryCost(maildirModule(path.join(dir, 'b')), certs, perSender);
    const reference = (maildir1 + maildir2) / 2;
    return [
      {
        name: `durable delivery, ${SENDERS} senders`,
        unit: 'message (ms of wall time)',
        subject: postgres,
        reference,
        referenceName: 'Maildir fsync',
        goal: 1.5,
        note: `postgres ${(1000 / postgres).toFixed(0)} messages/s, Maildir ${(1000 / reference).toFixed(0)} messages/s (${SENDERS * perSender} messages each)`,
      },
    ];
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts SMTP over `store`, sends SENDERS × perSender messages concurrently, resolves wall-clock ms per message. */
async function deliveryCost(store: ContainerModule, certs: DevCertificates, perSender: number): Promise<number> {
  const container = createContainer({ log: { silent: true }, tls: { certificate: certs.server }, smtp: { smtp: { port: 0 }, smtps: { port: 0 } } }, [store, smtpModule]);
  try {
    await container.get(MailStore).users.add({ username: 'alice', password: 'secret', addresses: ['alice@example.com'] });
    const listener = container.getAll(Listener).find((l) => l.name === 'smtp');
    if (!listener) throw new Error('postern: no smtp listener bound');
    const { port } = await listener.start();
    const body = `Subject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(26);
    await send(port, 2, body); // warm-up: connections, pool, first statements
    const start = process.hrtime.bigint();
    await Promise.all(Array.from({ length: SENDERS }, () => send(port, perSender, body)));
    return Number(process.hrtime.bigint() - start) / 1e6 / (SENDERS * perSender);
  } finally {
    await container.unbindAllAsync();
  }
}

/** One SMTP session sending `count` messages; rejects on any reply other than the expected one. */
async function send(port: number, count: number, body: string): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  let buffer = '';
  const waiting: Array<{ code: string; resolve: () => void; reject: (err: Error) => void }> = [];
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    let i: number;
    while ((i = buffer.indexOf('\r\n')) !== -1) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (line[3] === '-') continue; // a multi-line reply continues
      const w = waiting.shift();
      if (!w) continue;
      if (line.startsWith(w.code)) w.resolve();
      else w.reject(new Error(`expected ${w.code}, got ${line}`));
    }
  });
  const reply = (code: string): Promise<void> => new Promise((resolve, reject) => waiting.push({ code, resolve, reject }));
  try {
    await reply('220');
    socket.write('EHLO bench.test\r\n');
    await reply('250');
    for (let n = 0; n < count; n++) {
      const replies = [reply('250'), reply('250'), reply('354')];
      socket.write('MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
      await Promise.all(replies);
      const done = reply('250');
      socket.write(body + '.\r\n');
      await done;
    }
    const bye = reply('221');
    socket.write('QUIT\r\n');
    await bye;
  } finally {
    socket.destroy();
  }
}
