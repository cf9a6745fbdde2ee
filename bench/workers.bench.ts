import { execFile, spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DevCertificates } from '../lib/core/dev-certificates.js';
import { SMOKE, iterations } from './harness.js';
import { BENCH_USER, submissionSession, testMessage, type NotedResult } from './smtp-transaction.bench.js';

/** The server key for the workers run: `rsa` (default, RSA-2048 made by openssl) or `ec` (the dev CA's P-256 leaf). */
const KEY = process.env.BENCH_WORKERS_KEY === 'ec' ? 'ec' : 'rsa';
const execFileAsync = promisify(execFile);

/** The `postern` executable built next to this file. */
const POSTERN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));

/**
 * `postern --workers 2` against `postern --workers 1`, the real command on a Maildir store (the memory store cannot
 * be shared by processes; Maildir writes and fsyncs every message): SMTP STARTTLS submission transactions (greeting,
 * EHLO, STARTTLS + handshake, EHLO, AUTH PLAIN, MAIL/RCPT/DATA, 10 KB body, QUIT) from `concurrency` clients at
 * once, wall-clock time per transaction. Runs 1, 2, 1 workers and averages the two single-process runs.
 *
 * Each client delivers to its own mailbox (one mailbox takes one delivery at a time), and the Maildir lives on
 * tmpfs (`/dev/shm` when present), where fsync returns at once: on this VM's disk every fsync takes ~17 ms and the
 * kernel serialises them, so both runs would measure the disk (~9 tx/s either way, measured), not the workers.
 *
 * The clients run in this process, on the same cores as the servers, so the ratio understates what two workers
 * give on a machine where the clients are elsewhere. Goal ≤ 0.625 (≥ 1.6x transactions/s with two workers, issue
 * #10); on the 2-core CI VM shared with other jobs the client's own CPU makes that hard to reach.
 *
 * Measured here (2 cores, load average 13–24 from other jobs): 8–16 tx/s with two workers, 8–20 with one, ratio
 * 0.89–1.09 over three runs (the two single-process runs of one bench differed by 2x); on a disk-backed Maildir
 * ~9 tx/s either way (fsync-bound). The numbers say nothing about scaling until the machine is quiet; rerun
 * `BENCH_ONLY=workers npm run bench` on an idle host.
 */
export async function workersThroughput(devCerts: DevCertificates): Promise<NotedResult> {
  const total = iterations(400, 6);
  const concurrency = SMOKE ? 2 : 32;
  const dir = await mkdtemp(path.join(await memoryBackedTmp(), 'postern-bench-workers-'));
  try {
    let certs = devCerts;
    if (KEY === 'rsa') {
      // RSA-2048: the server's signature costs ~30x the client's verification, which moves the handshake's cost to
      // the server (with the dev CA's P-256 key the client's two ECDSA verifications cost more than the server's one
      // signature). Measured on the quiet VM at 15:50 UTC, 30 Nov 2026: still 1.04x (359 vs 345 tx/s), because the
      // 32 clients share this one JavaScript thread, which alone needs about a core at that rate.
      await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]);
      const cert = await readFile(path.join(dir, 'cert.pem'), 'utf8');
      certs = { ...devCerts, ca: { ...devCerts.ca, cert } }; // the clients trust the self-signed RSA certificate
    } else {
      await writeFile(path.join(dir, 'cert.pem'), devCerts.server.cert);
      await writeFile(path.join(dir, 'key.pem'), devCerts.server.key);
    }
    const one1 = await run(1, dir, certs, total, concurrency);
    const two = await run(2, dir, certs, total, concurrency);
    const one2 = await run(1, dir, certs, total, concurrency);
    const one = (one1 + one2) / 2;
    return {
      name: `workers: 2 vs 1, STARTTLS tx @${concurrency} (${KEY === 'rsa' ? 'RSA-2048' : 'P-256'})`,
      unit: 'transaction (ms wall)',
      subject: 1000 / two,
      reference: 1000 / one,
      referenceName: '--workers 1',
      goal: 0.625,
      note: `--workers 2: ${two.toFixed(0)} tx/s, --workers 1: ${one.toFixed(0)} tx/s (${one1.toFixed(0)}, ${one2.toFixed(0)}); speed-up ${(two / one).toFixed(2)}x on ${os.availableParallelism()} cores`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts the command with `workers`, runs `total` transactions `concurrency` at a time, stops it; resolves tx/s. */
async function run(workers: number, dir: string, certs: DevCertificates, total: number, concurrency: number): Promise<number> {
  const store = await mkdtemp(path.join(dir, `maildir-${workers}-`));
  const child = spawn(
    process.execPath,
    [
      POSTERN, '--workers', String(workers), '--store', `maildir:${store}`,
      '--user', `${BENCH_USER.username}:${BENCH_USER.password}@${BENCH_USER.address.split('@')[1]}`,
      ...Array.from({ length: concurrency }, (_, k) => ['--user', `rcpt${k}:x@example.com`]).flat(),
      '--only', 'smtp', '--smtp-port', '0', '--cert', path.join(dir, 'cert.pem'), '--key', path.join(dir, 'key.pem'), '--log-level', 'warn',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /smtp ready on [^\s]+:(\d+) /.exec(out);
        // With workers, the primary prints the ready lines once every worker listens.
        if (m) resolve(Number(m[1]));
      });
      void exited.then((code) => reject(new Error(`postern --workers ${workers} exited with ${code}: ${out}`)));
    });
    const message = testMessage(10 * 1024);
    const one = async (k: number): Promise<void> => {
      const w = await submissionSession(port, certs);
      try {
        await w.exchange(`MAIL FROM:<${BENCH_USER.address}>\r\nRCPT TO:<rcpt${k}@example.com>\r\nDATA\r\n`, [250, 250, 354]);
        await w.exchange(Buffer.concat([message, Buffer.from('.\r\nQUIT\r\n')]), [250, 221]);
      } finally {
        w.destroy();
      }
    };
    for (let k = 0; k < concurrency; k++) await one(k); // warm-up: JIT, sessions, every Maildir folder
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, k) => {
        while (next < total) {
          next++;
          await one(k);
        }
      }),
    );
    return (total / (performance.now() - start)) * 1000;
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) throw new Error(`postern --workers ${workers} stopped with exit code ${code}`);
  }
}

/** `/dev/shm` (tmpfs) when it exists, else the ordinary temporary directory. */
async function memoryBackedTmp(): Promise<string> {
  try {
    await access('/dev/shm');
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}
