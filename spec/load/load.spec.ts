/**
 * Issue 14, load and fault suite. Tiny sizes in `npm test`; `npm run load` (LOAD_FULL=1) runs the full ones:
 * 2,000 concurrent TLS sessions over the three protocols, and a slowloris + unauthenticated flood from 127.0.0.1
 * while a well-behaved client on 127.0.0.2 keeps logging in and delivering. Figures are printed (`load: …`) and
 * recorded in bench/RESULTS.md. No wall-clock thresholds: latencies are reported as ratios to a baseline measured
 * in the same run; the assertions are about correctness (everyone served, nothing lost, nothing logged as a bug).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LineClient } from '../support/line-client.js';
import { FULL, loginSession, logout, percentile, pool, report, startLoadServer, total, USERS, type Family, type LoadServer } from './load-harness.js';

const FAMILIES: Family[] = ['smtp', 'pop3', 'imap'];

/** Polls `check` until true (bounded): for counters that settle after sockets close. */
async function settle(check: () => Promise<boolean>, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('load: concurrent TLS sessions', function () {
  this.timeout(FULL ? 600_000 : 60_000);
  let server: LoadServer | undefined;
  after(async () => server?.close());

  it(`holds ${FULL ? 2000 : 60} logged-in TLS sessions across SMTP, POP3 and IMAP at once, then frees them`, async () => {
    const n = FULL ? 2000 : 60;
    // --auth-disabled: each session logs in as its own user (POP3 locks a maildrop per user). Sessions come from 40
    // loopback addresses, within the default per-address caps.
    server = await startLoadServer(['--auth-disabled']);
    const rssBefore = server.rssKiB();
    const started = process.hrtime.bigint();
    const sessions = await pool(n, 200, (i) => loginSession(server!, FAMILIES[i % 3], `load${i}@example.test`, 'x', `127.0.0.${10 + (i % 40)}`));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const rssPeak = server.rssKiB();
    const open = total(await server.scrape(), 'postern_connections_open');
    expect(open).to.equal(n);
    await Promise.all(sessions.map((c, i) => logout(c, FAMILIES[i % 3])));
    expect(await settle(async () => total(await server!.scrape(), 'postern_connections_open') === 0)).to.equal(true);
    const rssAfter = server.rssKiB();
    expect(server.isAlive()).to.equal(true);
    expect(server.errorLines()).to.deep.equal([]);
    report('sessions', { sessions: n, seconds, perSecond: n / seconds, rssBeforeMiB: rssBefore / 1024, rssPeakMiB: rssPeak / 1024, rssAfterMiB: rssAfter / 1024, kibPerSession: (rssPeak - rssBefore) / n });
  });
});

/** Starts the attacker process (see attacker.ts); resolves once it is attacking, with a stop that returns its count. */
async function startAttackers(ports: Record<string, number>, perListener: number): Promise<() => Promise<number>> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./attacker.js', import.meta.url)), JSON.stringify({ ports, perListener })], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => out.includes('attacking\n') && resolve());
    child.once('close', () => reject(new Error('attacker exited early')));
  });
  return async () => {
    const closed = new Promise((r) => child.once('close', r));
    child.kill('SIGTERM');
    await closed;
    return Number(/opened (\d+)/.exec(out)?.[1] ?? 0);
  };
}

describe('load: one address cannot lock others out', function () {
  this.timeout(FULL ? 600_000 : 60_000);
  let server: LoadServer | undefined;
  after(async () => server?.close());

  it('serves a client on 127.0.0.2 through a slowloris and an unauthenticated flood from 127.0.0.1', async () => {
    const iterations = FULL ? 60 : 6;
    const perListener = FULL ? 150 : 8;
    server = await startLoadServer(['--pre-auth-timeout', FULL ? '10' : '2', '--command-timeout', FULL ? '5' : '1']);
    const s = server;

    /** One well-behaved round: deliver over SMTPS with AUTH, then log in over IMAPS and look at the mailbox. */
    let delivered = 0;
    const round = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      const smtp: LineClient = await loginSession(s, 'smtp', 'good', USERS.good, '127.0.0.2');
      await smtp.command('MAIL FROM:<good@example.test>', /^250 /);
      await smtp.command('RCPT TO:<good@example.test>', /^250 /);
      await smtp.command('DATA', /^354 /);
      const [accepted] = await smtp.command(`Subject: round ${delivered}\r\n\r\nhello\r\n.`, /^\d{3} /);
      expect(accepted).to.match(/^250 /);
      delivered++;
      await logout(smtp, 'smtp');
      const imap = await loginSession(s, 'imap', 'good', USERS.good, '127.0.0.2');
      const status = await imap.command('S STATUS INBOX (MESSAGES)', /^S /);
      expect(status[0]).to.equal(`* STATUS "INBOX" (MESSAGES ${delivered})`);
      await logout(imap, 'imap');
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };

    await round(); // warm-up (JIT, first TLS sessions), not measured
    const baseline: number[] = [];
    for (let i = 0; i < iterations; i++) baseline.push(await round());

    const stopAttackers = await startAttackers(s.ports, perListener);
    // Wait until the flood has hit a cap at least once, so the good client runs under real pressure.
    const capped = await settle(async () => total(await s.scrape(), 'postern_connections_refused_total') > 0 || !FULL, 400);
    const underAttack: number[] = [];
    for (let i = 0; i < iterations; i++) underAttack.push(await round());
    const attackerConnections = await stopAttackers();

    const m = await s.scrape();
    expect(s.isAlive()).to.equal(true);
    expect(s.errorLines()).to.deep.equal([]);
    expect(delivered).to.equal(2 * iterations + 1);
    report('fairness', {
      rounds: iterations,
      attackerConnections,
      refused: total(m, 'postern_connections_refused_total'),
      capped: String(capped),
      baselineP50ms: percentile(baseline, 50),
      baselineP99ms: percentile(baseline, 99),
      attackP50ms: percentile(underAttack, 50),
      attackP99ms: percentile(underAttack, 99),
      p99Ratio: percentile(underAttack, 99) / percentile(baseline, 99),
      rssMiB: s.rssKiB() / 1024,
    });
  });
});

