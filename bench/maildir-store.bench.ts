import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirMailStore } from '../lib/backends/maildir/maildir-mail-store.js';
import { iterations, type BenchResult } from './harness.js';

/** A 2 KB message. */
function message(i: number): Buffer {
  const head = `From: a@example.org\r\nTo: alice@example.org\r\nSubject: bench ${i}\r\nMessage-ID: <${i}@bench>\r\n\r\n`;
  return Buffer.from(head + 'x'.repeat(2048 - head.length - 2) + '\r\n');
}

/**
 * In-process Maildir store, durable (fsync on): six batches of N deliveries into one mailbox, `concurrency` at a
 * time, timed per batch. The store's own first batch is the reference: the sixth must cost the same per message
 * (issue #9: nothing per delivery may grow with the mailbox). Then `messages()` + reading every body, per message,
 * against the first batch's delivery cost for scale.
 */
export async function maildirStore(): Promise<BenchResult[]> {
  const perBatch = iterations(1000, 20);
  const results: BenchResult[] = [];
  for (const concurrency of [1, 32]) {
    const root = await mkdtemp(join(tmpdir(), 'postern-bench-maildir-'));
    try {
      const store = new MaildirMailStore({ root });
      await store.users.add({ username: 'alice', password: 'x', addresses: ['alice@example.org'] });
      const batches: number[] = [];
      let n = 0;
      for (let batch = 0; batch < 6; batch++) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < perBatch; i += concurrency) {
          const group = [];
          for (let j = 0; j < concurrency && i + j < perBatch; j++) group.push(store.deliver('alice@example.org', message(n++)));
          await Promise.all(group);
        }
        batches.push(Number(process.hrtime.bigint() - start) / 1e6 / perBatch);
      }
      results.push({
        name: `maildir 6th vs 1st batch, ${concurrency} at once`,
        unit: 'delivery (ms)',
        subject: batches[5]!,
        reference: batches[0]!,
        referenceName: '1st batch',
        goal: 1.1,
      });
      console.log(`  batches (ms per delivery): ${batches.map((b) => b.toFixed(3)).join(', ')}`);
      if (concurrency === 1) {
        const view = await store.openUser('alice');
        const start = process.hrtime.bigint();
        const all = await view.messages('INBOX');
        for (let i = 0; i < all.length; i += 16) await Promise.all(all.slice(i, i + 16).map((m) => m.raw()));
        const read = Number(process.hrtime.bigint() - start) / 1e6 / all.length;
        console.log(`  messages() + raw() of ${all.length}: ${read.toFixed(3)} ms per message`);
        await view.release();
      }
      await store.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  return results;
}
