/**
 * Issue 14, authentication throttling across connections: failures counted per client address and per account,
 * growing delays, temporary refusal on every protocol, successful logins never delayed, bounded memory.
 */
import { expect } from 'chai';
import { AuthThrottle, AuthThrottleToken } from '../../lib/protocol/auth-throttle.js';
import { startAll, PASSWORD, type AllProtocols } from '../support/all-protocols.js';
import type { LineClient } from '../support/line-client.js';

describe('protocol: AuthThrottle', () => {
  it('doubles the delay with each failure of the address or account, up to maxDelayMs', () => {
    const t = new AuthThrottle({ maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5, 6, 7].map(() => t.failure('10.0.0.1', 'alice', 100))).to.deep.equal([100, 200, 400, 800, 1000, 1000, 1000]);
    // Another address guessing the same account inherits the account's count.
    expect(t.failure('10.0.0.2', 'ALICE', 100)).to.equal(1000);
    expect(t.failure('10.0.0.2', 'carol', 100)).to.equal(200);
  });

  it('refuses an address past maxFailuresPerAddress, and an account past maxFailuresPerAccount except from addresses it logged in from', () => {
    const t = new AuthThrottle({ maxFailuresPerAddress: 3, maxFailuresPerAccount: 2 });
    t.success('10.0.0.9', 'alice');
    t.failure('10.0.0.1', 'x', 1);
    t.failure('10.0.0.1', 'y', 1);
    expect(t.isRefused('10.0.0.1', 'z')).to.equal(undefined);
    t.failure('10.0.0.1', 'z', 1);
    expect(t.isRefused('10.0.0.1', 'anyone')).to.equal('address');
    t.failure('10.0.0.2', 'alice', 1);
    t.failure('10.0.0.3', 'alice', 1);
    expect(t.isRefused('10.0.0.4', 'alice')).to.equal('account');
    expect(t.isRefused('10.0.0.9', 'alice')).to.equal(undefined); // its owner's address still gets in
    t.success('10.0.0.9', 'alice');
    expect(t.isRefused('10.0.0.4', 'alice')).to.equal(undefined); // forgiven after a successful login
  });

  it('announces its own failures and successes to listeners, and counts events applied from another process without re-announcing', () => {
    const here = new AuthThrottle({ maxFailuresPerAccount: 2 });
    const there = new AuthThrottle({ maxFailuresPerAccount: 2 });
    const heard: unknown[] = [];
    const stop = here.onEvent((e) => {
      heard.push(e);
      there.apply(e);
    });
    let announcedThere = 0;
    there.onEvent(() => announcedThere++);
    here.failure('10.0.0.1', 'alice', 1);
    here.failure('10.0.0.2', 'alice', 1);
    expect(heard).to.deep.equal([
      { kind: 'failure', address: '10.0.0.1', account: 'alice' },
      { kind: 'failure', address: '10.0.0.2', account: 'alice' },
    ]);
    expect(there.isRefused('10.0.0.3', 'Alice')).to.equal('account');
    expect(announcedThere, 'apply does not announce').to.equal(0);
    expect(there.failure('10.0.0.3', 'alice', 100)).to.equal(400); // the third failure anywhere waits 4× the base
    here.success('10.0.0.9', 'alice');
    expect(heard.at(-1)).to.deep.equal({ kind: 'success', address: '10.0.0.9', account: 'alice' });
    expect(there.isRefused('10.0.0.3', 'alice')).to.equal(undefined); // forgiven there too
    expect(there.isRefused('10.0.0.9', 'alice')).to.equal(undefined);
    stop();
    here.failure('10.0.0.1', 'bob', 1);
    expect(heard).to.have.length(3);
  });

  it('forgets failures windowMs after the last one', () => {
    let now = 0;
    const t = new AuthThrottle({ maxFailuresPerAddress: 1, windowMs: 1000, now: () => now });
    t.failure('10.0.0.1', 'a', 1);
    now = 1000;
    expect(t.isRefused('10.0.0.1', 'b')).to.equal('address');
    now = 1001;
    expect(t.isRefused('10.0.0.1', 'b')).to.equal(undefined);
    expect(t.failure('10.0.0.1', 'b', 10)).to.equal(10);
  });

  it('keeps at most maxEntries per table, dropping the least recently failed', () => {
    const t = new AuthThrottle({ maxEntries: 100, maxFailuresPerAddress: 1 });
    t.failure('10.9.9.9', 'first', 1);
    for (let i = 0; i < 5000; i++) t.failure(`10.1.${i >> 8}.${i & 255}`, `user${i}`, 1);
    expect(t.size).to.equal(200);
    expect(t.isRefused('10.9.9.9', 'x')).to.equal(undefined); // evicted
    expect(t.isRefused('10.1.19.135', 'x')).to.equal('address'); // the last one (4999) is kept
  });
});

describe('protocol: failed logins throttled across connections and protocols', () => {
  let f: AllProtocols | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  async function imapLogin(c: LineClient, password: string): Promise<string> {
    await c.expect(/^\* OK /);
    const lines = await c.command(`a LOGIN alice "${password}"`, /^a /);
    return lines[lines.length - 1];
  }

  it('refuses every protocol from an address after maxFailuresPerAddress failures spread over connections, and lets another address in', async () => {
    f = await startAll({ authThrottle: { maxFailuresPerAddress: 3, maxFailuresPerAccount: 0 } });
    expect(await imapLogin(await f.connect('imaps', { tls: true }), 'wrong')).to.equal('a NO [AUTHENTICATIONFAILED] Authentication failed');
    const pop = await f.connect('pop3s', { tls: true });
    await pop.expect(/^\+OK/);
    await pop.command('USER bob', /^\+OK/);
    expect(await pop.command('PASS wrong', /^-ERR/)).to.deep.equal(['-ERR [AUTH] authentication failed']);
    const smtp = await f.connect('smtps', { tls: true });
    await smtp.expect(/^220 /);
    await smtp.command('EHLO c.test', /^250 /);
    const plain = (u: string, p: string): string => Buffer.from(`\0${u}\0${p}`).toString('base64');
    expect(await smtp.command(`AUTH PLAIN ${plain('carol', 'x')}`, /^\d{3} /)).to.deep.equal(['535 5.7.8 Authentication credentials invalid']);
    // The right password now gets the temporary refusal, on every protocol, without being checked.
    expect(await smtp.command(`AUTH PLAIN ${plain('alice', PASSWORD)}`, /^\d{3} /)).to.deep.equal(['454 4.7.0 Too many failed logins, try again later']);
    expect(await imapLogin(await f.connect('imaps', { tls: true }), PASSWORD)).to.equal('a NO [UNAVAILABLE] Too many failed logins, try again later');
    await pop.command('USER alice', /^\+OK/);
    expect(await pop.command(`PASS ${PASSWORD}`, /^-ERR/)).to.deep.equal(['-ERR [AUTH] too many failed logins, try again later']);
    expect(f.log.find('warn', 'login refused: too many failed logins').map((r) => r.meta.by)).to.deep.equal(['address', 'address', 'address']);
    // A client on another loopback address is not affected.
    expect(await imapLogin(await f.connect('imaps', { tls: true, localAddress: '127.0.0.2' }), PASSWORD)).to.match(/^a OK /);
  });

  it('refuses an account attacked from many addresses, except from an address its owner logged in from', async () => {
    f = await startAll({ authThrottle: { maxFailuresPerAddress: 0, maxFailuresPerAccount: 2 } });
    expect(await imapLogin(await f.connect('imaps', { tls: true, localAddress: '127.0.0.5' }), PASSWORD)).to.match(/^a OK /);
    expect(await imapLogin(await f.connect('imaps', { tls: true, localAddress: '127.0.0.2' }), 'x')).to.match(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await imapLogin(await f.connect('imaps', { tls: true, localAddress: '127.0.0.3' }), 'y')).to.match(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await imapLogin(await f.connect('imaps', { tls: true, localAddress: '127.0.0.4' }), PASSWORD)).to.equal('a NO [UNAVAILABLE] Too many failed logins, try again later');
    expect(await imapLogin(await f.connect('imaps', { tls: true, localAddress: '127.0.0.5' }), PASSWORD)).to.match(/^a OK /);
  });

  it('grows the delay of failed logins across connections and never delays a successful one', async () => {
    f = await startAll({ authThrottle: { maxFailuresPerAddress: 0, maxFailuresPerAccount: 0 } });
    for (let i = 0; i < 3; i++) await imapLogin(await f.connect('imaps', { tls: true }), 'wrong');
    expect(await imapLogin(await f.connect('imaps', { tls: true }), PASSWORD)).to.match(/^a OK /);
    expect(f.log.find('info', 'auth failed').map((r) => r.meta.delayMs)).to.deep.equal([5, 10, 20]);
    expect(f.log.find('info', 'auth succeeded')).to.have.length(1);
    expect(f.container.get(AuthThrottleToken)).to.be.instanceOf(AuthThrottle); // one shared service
  });
});
