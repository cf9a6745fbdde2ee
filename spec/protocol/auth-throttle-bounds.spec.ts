/**
 * The bounds of AuthThrottle that the integration specs do not reach (found by mutation testing, issue 16): the
 * delay's exponent cap and floor, the remembered good addresses per account, eviction after successful logins,
 * expiry measured from the last event, and caps turned off with 0.
 */
import { expect } from 'chai';
import { AuthThrottle } from '../../lib/protocol/auth-throttle.js';

describe('protocol: AuthThrottle bounds', () => {
  it('stops doubling after 20 doublings even below maxDelayMs', () => {
    const t = new AuthThrottle({ maxDelayMs: 2 ** 40, maxFailuresPerAddress: 0, maxFailuresPerAccount: 0 });
    const delays = Array.from({ length: 23 }, () => t.failure('10.0.0.1', 'a', 1));
    expect(delays.slice(19)).to.deep.equal([2 ** 19, 2 ** 20, 2 ** 20, 2 ** 20]);
  });

  it('never answers faster than the base delay, even when maxDelayMs is smaller', () => {
    const t = new AuthThrottle({ maxDelayMs: 100 });
    expect([t.failure('10.0.0.1', 'a', 500), t.failure('10.0.0.1', 'a', 500)]).to.deep.equal([500, 500]);
  });

  it('remembers the 8 addresses that logged in most recently per account, refreshing one that logs in again', () => {
    const t = new AuthThrottle({ maxFailuresPerAccount: 1, maxFailuresPerAddress: 0 });
    for (let i = 1; i <= 8; i++) t.success(`10.0.0.${i}`, 'alice');
    t.success('10.0.0.1', 'alice'); // now the most recent
    t.success('10.0.0.9', 'alice'); // pushes out the oldest: 10.0.0.2
    t.failure('10.9.9.9', 'alice', 1);
    expect(t.isRefused('10.0.0.2', 'alice')).to.equal('account');
    for (const i of [1, 3, 4, 5, 6, 7, 8, 9]) expect(t.isRefused(`10.0.0.${i}`, 'alice'), `10.0.0.${i}`).to.equal(undefined);
  });

  it('keeps at most maxEntries accounts after successful logins too', () => {
    const t = new AuthThrottle({ maxEntries: 2 });
    for (const u of ['u1', 'u2', 'u3']) t.success('10.0.0.1', u);
    expect(t.size).to.equal(2);
  });

  it('drops an expired entry when it is read', () => {
    let now = 0;
    const t = new AuthThrottle({ windowMs: 1000, now: () => now });
    t.failure('10.0.0.1', 'a', 1);
    expect(t.size).to.equal(2);
    now = 1001;
    expect(t.isRefused('10.0.0.1', 'a')).to.equal(undefined);
    expect(t.size).to.equal(0);
  });

  it('measures the window from the last failure, not the first', () => {
    let now = 0;
    const t = new AuthThrottle({ maxFailuresPerAddress: 2, windowMs: 1000, now: () => now });
    t.failure('10.0.0.1', 'a', 1);
    now = 900;
    t.failure('10.0.0.1', 'b', 1);
    now = 1500;
    expect(t.isRefused('10.0.0.1', 'c')).to.equal('address');
  });

  it('forgets a good address windowMs after its last successful login, not before', () => {
    let now = 500;
    const t = new AuthThrottle({ maxFailuresPerAccount: 1, maxFailuresPerAddress: 0, windowMs: 1000, now: () => now });
    t.success('10.0.0.5', 'alice');
    now = 1200;
    t.failure('10.0.0.6', 'alice', 1);
    expect(t.isRefused('10.0.0.5', 'alice')).to.equal(undefined); // success at 500 is still within the window
    now = 2600;
    t.failure('10.0.0.6', 'alice', 1); // the entry of 1200 expired: a fresh one, without the good address
    expect(t.isRefused('10.0.0.5', 'alice')).to.equal('account');
  });

  it('never refuses when both caps are 0', () => {
    const t = new AuthThrottle({ maxFailuresPerAddress: 0, maxFailuresPerAccount: 0 });
    for (let i = 0; i < 50; i++) t.failure('10.0.0.1', 'alice', 1);
    expect(t.isRefused('10.0.0.1', 'alice')).to.equal(undefined);
  });
});
