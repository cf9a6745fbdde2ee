import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { writeDevCertificates, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';

const SAMPLE = fileURLToPath(new URL('../../samples/mail-server.js', import.meta.url));

/** The sample as a child process: its stdout lines, and its exit. */
interface Running {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line matching `re` (or rejects when the process exits first / after `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [SAMPLE, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const f of listeners) f();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exited = false;
  void exit.then(() => {
    exited = true;
    for (const f of listeners) f();
  });
  return {
    child,
    lines,
    exit,
    waitFor: (re, ms = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = lines.find((l) => re.test(l));
          if (hit === undefined && !exited) return;
          listeners.delete(check);
          clearTimeout(timer);
          if (hit !== undefined) resolve(hit);
          else reject(new Error(`sample exited before printing ${re}; stdout ${JSON.stringify(lines)}; stderr ${stderr}`));
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no line matching ${re} after ${ms} ms; stdout ${JSON.stringify(lines)}; stderr ${stderr}`));
        }, ms);
        listeners.add(check);
        check();
      }),
  };
}

describe('samples: mail-server.ts (the server npm start runs)', function () {
  this.timeout(30_000);
  let certs: DevCertificates;
  let dir: string;
  let running: Running | undefined;

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(join(tmpdir(), 'postern-sample-'));
    await writeDevCertificates(dir, certs);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await running.exit;
    }
    running = undefined;
  });

  const port = (line: string): number => Number(/:(\d+) \(/.exec(line)?.[1]);

  it('prints six ready lines, delivers over STARTTLS, serves POP3S, and exits 0 on SIGTERM', async () => {
    running = launch(['--any-port'], { POSTERN_CERTS: dir });
    await running.waitFor(/^mail-server: imaps ready/);
    expect(running.lines).to.have.length(6);
    expect(running.lines.map((l) => l.replace(/:\d+ /, ':N '))).to.deep.equal([
      'mail-server: smtp ready on 127.0.0.1:N (STARTTLS)',
      'mail-server: smtps ready on 127.0.0.1:N (implicit TLS)',
      'mail-server: pop3 ready on 127.0.0.1:N (STARTTLS)',
      'mail-server: pop3s ready on 127.0.0.1:N (implicit TLS)',
      'mail-server: imap ready on 127.0.0.1:N (STARTTLS)',
      'mail-server: imaps ready on 127.0.0.1:N (implicit TLS)',
    ]);
    const smtp = port(await running.waitFor(/ smtp ready/));
    const pop3s = port(await running.waitFor(/ pop3s ready/));

    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp,
      requireTLS: true,
      auth: { user: 'alice', pass: 'secret' },
      tls: { ca: certs.ca.cert, servername: 'localhost' },
    });
    try {
      const info = await transport.sendMail({ from: 'app@example.test', to: 'alice@example.test', subject: 'sample', text: 'hello from the sample spec' });
      expect(info.accepted).to.deep.equal(['alice@example.test']);
    } finally {
      transport.close();
    }

    const pop = await LineClient.connect(pop3s, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
    try {
      await pop.expect(/^\+OK/);
      await pop.command('USER alice', /^\+OK/);
      await pop.command('PASS secret', /^\+OK/);
      expect(await pop.command('STAT', /^/)).to.match(/^\+OK 1 \d+$/);
      const retr = await pop.command('RETR 1', /^\.$/);
      expect(retr[0]).to.match(/^\+OK/);
      expect(retr).to.include('Subject: sample');
      expect(retr).to.include('hello from the sample spec');
      await pop.command('QUIT', /^\+OK/);
    } finally {
      await pop.close();
    }

    running.child.kill('SIGTERM');
    expect(await running.exit).to.deep.equal({ code: 0, signal: null });
    expect(running.lines.at(-1)).to.equal('mail-server: stopped');
  });

  it('honours a port offset given as PORT_OFFSET', async () => {
    // Offsets whose ports (3025–3995 + offset) stay below Linux's ephemeral range (32768–60999), where the suite's own
    // port-0 listeners and client sockets live; another offset is tried when one of its ports is taken anyway.
    let offset = 0;
    let first = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      offset = 10_000 + ((process.pid + attempt * 3_001) % 15_000);
      running = launch([], { POSTERN_CERTS: dir, PORT_OFFSET: String(offset) });
      first = await running.waitFor(/^mail-server: (smtp ready|.*is already in use)/).catch((err: Error) => err.message);
      if (first.startsWith('mail-server: smtp ready')) break;
      expect(first).to.match(/is already in use/);
      await running.exit;
    }
    expect(first, 'five offsets in a row had a port in use').to.match(/^mail-server: smtp ready/);
    expect(port(first)).to.equal(3025 + offset);
    const server = running!; // launched at least once by the loop
    await server.waitFor(/ imaps ready/);
    expect(port(server.lines[5]!)).to.equal(3993 + offset);
    server.child.kill('SIGINT');
    expect(await server.exit).to.deep.equal({ code: 0, signal: null });
  });
});
