import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import { resumeHandshake, type ResumeResult } from '../support/tls-resume.js';
import { parseCliArgs, UsageError, workerCount } from '../../lib/cli/cli-args.js';
import { workerLimits } from '../../lib/cli/cluster-worker.js';
import { logged, records, runPostern, startPostern, type PosternProcess } from './cli-process.js';

/** GET on 127.0.0.1 over a fresh connection (no keep-alive, so round-robin may pick another worker); resolves the 200 body. */
function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
      })
      .on('error', reject);
  });
}

/** The worker prefix (`w2`) of a connection id (`w2-c1f`). */
const workerOf = (cid: unknown): string => String(cid).split('-')[0]!;

/** An implicit-TLS handshake that offers `session`; resolves whether it was resumed and the session the server handed out. */
function handshake(port: number, ca: string, session?: Buffer): Promise<ResumeResult> {
  return resumeHandshake(port, { ca, session }, 'QUIT\r\n');
}

describe('cli: postern --workers', function () {
  this.timeout(60_000);
  let certs: DevCertificates;
  let dir: string;
  const running: PosternProcess[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-workers-'));
    await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
    await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    // SIGTERM: the primary drains its workers; a primary killed outright would leave them to notice on their own.
    await Promise.all(running.splice(0).map((p) => p.stop('SIGTERM')));
  });

  async function startCluster(extra: string[] = []): Promise<{ p: PosternProcess; pids: number[] }> {
    const store = await mkdtemp(path.join(dir, 'maildir-'));
    const p = startPostern([
      '--workers', '2', '--store', `maildir:${store}`, '--user', 'alice:secret@example.com',
      '--only', 'smtp,smtps', '--smtp-port', '0', '--smtps-port', '0',
      '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem'),
      '--log-format', 'json', '--log-level', 'debug', ...extra,
    ]);
    running.push(p);
    await p.ready(2, 30_000);
    const line = await new Promise<string>((resolve, reject) => {
      const find = (): string | undefined => p.stdout.find((l) => / workers ready /.test(l));
      const t = setInterval(() => {
        const l = find();
        if (l) {
          clearInterval(t);
          resolve(l);
        }
      }, 20);
      void p.exited().then((code) => {
        clearInterval(t);
        reject(new Error(`exited ${code}: ${p.stderr}`));
      });
    });
    const m = /^postern: 2 workers ready \(pids (\d+), (\d+)\)$/.exec(line);
    expect(m, line).to.not.equal(null);
    return { p, pids: [Number(m![1]), Number(m![2])] };
  }

  async function connect(port: number): Promise<LineClient> {
    const c = await LineClient.connect(port);
    clients.push(c);
    return c;
  }

  it('refuses workers on the memory store with one line and exit 2', async () => {
    const r = await runPostern(['--workers', '2']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.equal('postern: error: --workers 2: the memory store lives inside one process; use --store maildir:PATH (or another shared store) (see postern --help)\n');
  });

  it('fails the start with one line and exit 2 when the workers cannot listen (port taken)', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const store = await mkdtemp(path.join(dir, 'maildir-'));
      const r = await runPostern(['--workers', '2', '--store', `maildir:${store}`, '--only', 'smtp', '--smtp-port', String(port), '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem'), '--log-level', 'error', '--log-format', 'json']);
      expect(r.code).to.equal(2);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('postern:'));
      expect(lines).to.deep.equal([`postern: error: smtp: 127.0.0.1:${port} is already in use`]);
      expect(r.stdout).to.not.match(/ready on/);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('splits every connection cap (given or default) between the workers, rounding up, keeping 0 (off) and the deadlines', () => {
    expect(workerLimits(undefined, 2)).to.deep.equal({ maxConnections: 500, maxConnectionsPerAddress: 50, maxConnectionsPerAddressTotal: 150, maxConnectionsTotal: 3000 });
    expect(workerLimits({ maxConnections: 0, maxConnectionsPerAddress: 5, preAuthTimeoutMs: 9 }, 3)).to.deep.equal({
      maxConnections: 0, maxConnectionsPerAddress: 2, maxConnectionsPerAddressTotal: 100, maxConnectionsTotal: 2000, preAuthTimeoutMs: 9,
    });
    expect(workerLimits({ maxConnectionsPerAddress: 1 }, 4).maxConnectionsPerAddress).to.equal(1); // never 0 (that would mean off)
  });

  it('parses --workers N|auto and refuses nonsense', () => {
    const md = ['--store', 'maildir:/tmp/x'];
    expect(parseCliArgs(md).config.workers).to.equal(undefined);
    expect(parseCliArgs(['--workers', 'auto', ...md]).config.workers).to.equal('auto');
    expect(parseCliArgs(['--workers', '3', ...md]).config.workers).to.equal(3);
    expect(workerCount('auto')).to.equal(os.availableParallelism());
    expect(workerCount(undefined)).to.equal(1);
    expect(() => parseCliArgs(['--workers', 'auto'])).to.throw(UsageError, '--workers auto: the memory store lives inside one process');
    expect(parseCliArgs(['--workers', '1']).config.workers).to.equal(1); // one process is fine on any store
    expect(parseCliArgs(['--workers', '2', '--store', 'postgres://u:p@127.0.0.1:5432/mail']).config.workers).to.equal(2);
    const acme = ['--acme-directory', 'https://ca.test/dir', '--acme-email', 'a@b.test', '--acme-domain', 'mx.test'];
    expect(parseCliArgs([...md, ...acme, '--acme-challenge', 'http-01,tls-alpn-01']).config.acme?.challenges).to.deep.equal(['http-01', 'tls-alpn-01']);
    expect(() => parseCliArgs([...md, ...acme, '--acme-challenge', 'dns-01'])).to.throw(UsageError, '--acme-challenge: expected tls-alpn-01 or http-01, got "dns-01"');
    expect(() => parseCliArgs([...md, ...acme, '--only', 'imaps', '--acme-challenge', 'http-01'])).to.throw(
      UsageError,
      '--acme-challenge http-01: the HTTP listener answers it; add http to --only',
    );
    // ACME runs in the primary (spec/cli/workers-acme.spec.ts).
    expect(parseCliArgs(['--workers', '2', ...md, '--acme-directory', 'https://ca.test/dir', '--acme-email', 'a@b.test', '--acme-domain', 'mx.test']).config).to.include({ workers: 2 });
    for (const bad of ['0', '257', 'two', '1.5']) {
      expect(() => parseCliArgs(['--workers', bad, ...md]), bad).to.throw(UsageError, `--workers: expected a number from 1 to 256 or auto, got "${bad}"`);
    }
  });

  // One cluster for the rest, in order (starting one costs seconds): serve, resume, survive a crash, drain.
  let p: PosternProcess;
  let pids: number[];
  /** Records logged since `mark` (the count of records at some earlier point). */
  const since = (mark: number): Array<Record<string, unknown>> => records(p).slice(mark);

  it('serves from two processes sharing the ports, with worker-unique connection ids', async () => {
    ({ p, pids } = await startCluster());
    expect(new Set(pids).size).to.equal(2);
    expect(pids).to.not.include(p.child.pid);
    for (let i = 0; i < 4; i++) {
      const c = await connect(p.ports.smtp!);
      expect(await c.readLine()).to.match(/^220 /);
      await c.command('QUIT', /^221 /);
    }
    const accepted = records(p).filter((r) => r.message === 'connection accepted');
    expect(accepted).to.have.length(4);
    expect(records(p).filter((r) => r.message === 'worker listening').map((r) => r.pid)).to.have.members(pids);
    // Round-robin: both workers took connections, and ids say which one.
    expect(new Set(accepted.map((r) => workerOf(r.cid)))).to.have.length(2);
    for (const r of accepted) expect(String(r.cid)).to.match(/^w\d+-c[0-9a-z]+$/);
  });

  it('resumes a TLS session on whichever worker answers: the primary shares the ticket keys', async () => {
    const mark = records(p).length;
    const first = await handshake(p.ports.smtps!, certs.ca.cert);
    expect(first.reused).to.equal(false);
    const resumed: boolean[] = [];
    for (let i = 0; i < 4; i++) resumed.push((await handshake(p.ports.smtps!, certs.ca.cert, first.session)).reused);
    expect(resumed).to.deep.equal([true, true, true, true]);
    const secured = since(mark).filter((r) => r.message === 'tls established');
    expect(secured).to.have.length(5);
    expect(new Set(secured.map((r) => workerOf(r.cid)))).to.have.length(2);
  });

  it('SIGUSR2 to the primary rotates the ticket keys of every worker: old tickets stop resuming, new ones resume anywhere', async () => {
    const old = await handshake(p.ports.smtps!, certs.ca.cert);
    const mark = records(p).length;
    p.child.kill('SIGUSR2');
    await logged(p, (r) => r.message === 'session ticket keys rotated' && r.role === 'primary');
    for (const pid of pids) await logged(p, (r) => r.message === 'session ticket keys replaced' && r.pid === pid);
    const stale = [await handshake(p.ports.smtps!, certs.ca.cert, old.session), await handshake(p.ports.smtps!, certs.ca.cert, old.session)];
    expect(stale.map((h) => h.reused)).to.deep.equal([false, false]);
    const fresh = await handshake(p.ports.smtps!, certs.ca.cert);
    const resumed: boolean[] = [];
    for (let i = 0; i < 4; i++) resumed.push((await handshake(p.ports.smtps!, certs.ca.cert, fresh.session)).reused);
    expect(resumed).to.deep.equal([true, true, true, true]);
    const secured = since(mark).filter((r) => r.message === 'tls established');
    expect(new Set(secured.map((r) => workerOf(r.cid)))).to.have.length(2);
  });

  it('counts failed logins across workers: once the cluster saw the cap, every worker refuses with 454 4.7.0', async () => {
    const { p } = await startCluster(['--allow-insecure-auth', '--auth-failures-per-account', '2']);
    const wrong = `AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`;
    const attempt = async (): Promise<string> => {
      const c = await connect(p.ports.smtp!);
      await c.expect(/^220 /);
      await c.command('EHLO client.test', /^250 /);
      const [reply] = await c.command(wrong, /^\d{3} /);
      await c.command('QUIT', /^221 /);
      return reply!;
    };
    // Two failures (on whichever workers took them) reach the cap of 2 for the whole cluster.
    expect(await attempt()).to.match(/^535 5\.7\.8 /);
    expect(await attempt()).to.match(/^535 5\.7\.8 /);
    // Round-robin hands the next attempts to both workers: each refuses before checking the password.
    const refusals: string[] = [];
    for (let i = 0; i < 4; i++) refusals.push(await attempt());
    expect(refusals).to.deep.equal(Array(4).fill('454 4.7.0 Too many failed logins, try again later'));
    const refusedBy = records(p).filter((r) => r.message === 'login refused: too many failed logins').map((r) => workerOf(r.cid));
    expect(new Set(refusedBy).size, 'both workers refused').to.equal(2);
    await p.stop('SIGTERM');
  });

  it('gives each worker its share of the connection caps, so the cluster admits about what one process would', async () => {
    const { p } = await startCluster(['--max-connections-per-address', '2']);
    const replies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await connect(p.ports.smtp!);
      replies.push(await c.readLine()); // held open: each admitted connection keeps its slot
    }
    const admitted = replies.filter((r) => r.startsWith('220 ')).length;
    // One slot per worker: 2 without a fixed connection order (1 if the kernel gave both to one worker), never 6.
    expect(admitted).to.be.within(1, 2);
    expect(replies.filter((r) => !r.startsWith('220 '))).to.deep.equal(Array(6 - admitted).fill('421 4.3.2 Too many connections, try again later'));
    await p.stop('SIGTERM');
  });

  it('sums the metrics of every worker: the primary on --metrics-port, and any worker HTTP /metrics through the primary', async () => {
    const { p } = await startCluster(['--only', 'smtp,http', '--http-port', '0', '--metrics-port', '0']);
    const line = p.stdout.find((l) => l.startsWith('postern: metrics ready on '));
    const metricsPort = Number(/^postern: metrics ready on http:\/\/127\.0\.0\.1:(\d+)\/metrics \(all workers\)$/.exec(line ?? '')?.[1]);
    expect(metricsPort, String(line)).to.be.above(0);
    for (let i = 0; i < 4; i++) {
      const c = await connect(p.ports.smtp!);
      expect(await c.readLine()).to.match(/^220 /);
      await c.command('QUIT', /^221 /);
    }
    // Round-robin: each worker counted only some of the four.
    expect(new Set(records(p).filter((r) => r.message === 'connection accepted').map((r) => workerOf(r.cid)))).to.have.length(2);
    const accepted = (text: string): number => Number(/^postern_connections_accepted_total\{listener="smtp"\} (\d+)$/m.exec(text)?.[1]);
    expect(accepted(await httpGet(metricsPort, '/metrics'))).to.equal(4);
    // The HTTP listener runs in every worker; each new connection may land on either, and each answers the sum.
    for (let i = 0; i < 4; i++) expect(accepted(await httpGet(p.ports.http!, '/metrics'))).to.equal(4);
    await p.stop('SIGTERM');
  });

  it('applies chaos rules set through one worker HTTP API on every worker, also on a worker restarted later', async () => {
    const { p } = await startCluster(['--only', 'smtp,http', '--http-port', '0']);
    const greetings = async (n: number): Promise<{ lines: string[]; workers: Set<string> }> => {
      const mark = records(p).length;
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        const c = await connect(p.ports.smtp!);
        const line = await c.readLine();
        lines.push(line);
        if (line.startsWith('220 ')) await c.command('QUIT', /^221 /);
        await c.closed().catch(() => undefined);
      }
      await logged(p, () => records(p).slice(mark).filter((r) => r.message === 'connection accepted').length >= n);
      return { lines, workers: new Set(records(p).slice(mark).filter((r) => r.message === 'connection accepted').map((r) => workerOf(r.cid))) };
    };
    const rules = { rules: [{ protocol: 'smtp', stage: 'greeting', reply: '554 5.3.2 chaos on every worker' }] };
    const put = await fetch(`http://127.0.0.1:${p.ports.http}/api/v1/chaos`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
    expect(put.status).to.equal(200);
    const refused = await greetings(4);
    expect(refused.lines).to.deep.equal(Array(4).fill('554 5.3.2 chaos on every worker'));
    expect(refused.workers.size, 'both workers refused').to.equal(2);
    // A worker started after the change gets the rules from the primary.
    const pids = records(p).filter((r) => r.message === 'worker listening').map((r) => Number(r.pid));
    const mark = records(p).length;
    process.kill(pids[0]!, 'SIGKILL');
    await logged(p, () => records(p).slice(mark).some((r) => r.message === 'worker restarted'));
    const afterRestart = await greetings(4);
    expect(afterRestart.lines).to.deep.equal(Array(4).fill('554 5.3.2 chaos on every worker'));
    expect(afterRestart.workers.size).to.equal(2);
    // DELETE through any worker clears them everywhere.
    const del = await fetch(`http://127.0.0.1:${p.ports.http}/api/v1/chaos`, { method: 'DELETE' });
    expect(del.status).to.equal(204);
    const served = await greetings(4);
    for (const line of served.lines) expect(line).to.match(/^220 /);
    expect(served.workers.size).to.equal(2);
    await p.stop('SIGTERM');
  });

  it('restarts a worker killed with SIGKILL and keeps serving', async () => {
    process.kill(pids[0]!, 'SIGKILL');
    const crash = await logged(p, (r) => r.message === 'worker exited unexpectedly: restarting');
    expect(crash).to.include({ level: 'error', pid: pids[0], signal: 'SIGKILL', restartInMs: 100 });
    const back = await logged(p, (r) => r.message === 'worker restarted');
    expect(back.pid).to.be.a('number').and.not.oneOf(pids);
    const mark = records(p).length;
    for (let i = 0; i < 2; i++) {
      const c = await connect(p.ports.smtp!);
      expect(await c.readLine()).to.match(/^220 /);
      await c.command('QUIT', /^221 /);
    }
    // Both the survivor and the new worker take connections again.
    expect(new Set(since(mark).filter((r) => r.message === 'connection accepted').map((r) => workerOf(r.cid)))).to.have.length(2);
  });

  it('drains every worker on SIGTERM: live sessions get their 421 goodbye, exit 0', async () => {
    const mark = records(p).length;
    const sessions = [await connect(p.ports.smtp!), await connect(p.ports.smtp!)];
    for (const c of sessions) {
      await c.readLine();
      await c.command('EHLO client.example', /^250 /);
    }
    const workers = new Set(since(mark).filter((r) => r.message === 'connection accepted').map((r) => workerOf(r.cid)));
    expect(workers).to.have.length(2);
    const code = p.stop('SIGTERM');
    for (const c of sessions) {
      expect(await c.readLine()).to.equal('421 4.3.2 Service shutting down, closing connection');
      await c.closed();
    }
    expect(await code).to.equal(0);
    expect(p.stdout.at(-1)).to.equal('postern: stopped');
    running.splice(running.indexOf(p), 1);
  });
});
