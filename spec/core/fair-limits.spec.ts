/**
 * Issue 14, fair limits: per-address caps per listener and in total (a client from another address still gets in),
 * the protocol's goodbye over any cap — over TLS on implicit-TLS listeners — with a warn line, the pre-authentication
 * deadline and the whole-command deadline.
 */
import { expect } from 'chai';
import type { ServerLimits } from '../../lib/core/connection-limits.js';
import { startAll, type AllProtocols } from '../support/all-protocols.js';

type Fixture = AllProtocols;

function start(limits: ServerLimits, idleTimeoutMs = 10_000): Promise<Fixture> {
  return startAll({ limits }, idleTimeoutMs);
}

describe('core: fair limits', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('caps connections per client address on a listener with the goodbye and a warn line; another address gets in at once', async () => {
    f = await start({ maxConnectionsPerAddress: 2 });
    for (let i = 0; i < 2; i++) await (await f.connect('imap')).expect(/^\* OK /);
    const third = await f.connect('imap');
    expect(await third.readLine()).to.equal('* BYE Too many connections, try later');
    await third.closed();
    const other = await f.connect('imap', { localAddress: '127.0.0.2' });
    expect(await other.readLine()).to.match(/^\* OK /);
    expect(f.log.find('warn', 'connection refused').map((r) => [r.meta.reason, r.meta.address, r.meta.max])).to.deep.equal([['address-limit', '127.0.0.1', 2]]);
  });

  it('completes the handshake on an implicit-TLS listener and sends the goodbye encrypted', async () => {
    f = await start({ maxConnectionsPerAddress: 1 });
    await (await f.connect('smtps', { tls: true })).expect(/^220 /);
    const refused = await f.connect('smtps', { tls: true });
    expect(await refused.readLine()).to.equal('421 4.3.2 Too many connections, try again later');
    await refused.closed();
    const pop = await f.connect('pop3s', { tls: true });
    expect(await pop.readLine()).to.match(/^\+OK /);
    const popRefused = await f.connect('pop3s', { tls: true });
    expect(await popRefused.readLine()).to.equal('-ERR [SYS/TEMP] too many connections, try later');
  });

  it('caps one address across all listeners, and every connection in total', async () => {
    f = await start({ maxConnectionsPerAddressTotal: 2 });
    await (await f.connect('smtp')).expect(/^220 /);
    await (await f.connect('pop3')).expect(/^\+OK /);
    const third = await f.connect('imap');
    expect(await third.readLine()).to.equal('* BYE Too many connections, try later');
    expect(f.log.find('warn', 'connection refused').map((r) => r.meta.reason)).to.deep.equal(['address-total-limit']);
    await f.close();
    f = await start({ maxConnectionsTotal: 1 });
    await (await f.connect('smtp')).expect(/^220 /);
    const over = await f.connect('pop3', { localAddress: '127.0.0.3' });
    expect(await over.readLine()).to.equal('-ERR [SYS/TEMP] too many connections, try later');
    expect(f.log.find('warn', 'connection refused').map((r) => r.meta.reason)).to.deep.equal(['total-limit']);
  });

  for (const [name, greeting, login, goodbye] of [
    ['imap', /^\* OK /, ['a LOGIN alice "open sesame"', /^a OK /], '* BYE Autologout; not logged in in time'],
    ['pop3', /^\+OK /, ['USER alice', /^\+OK/, 'PASS open sesame', /^\+OK/], '-ERR autologout: not logged in in time'],
    ['smtp', /^220 /, ['EHLO c.test', /^250 /, 'MAIL FROM:<bob@example.com>', /^250 /], '421 4.4.2 No mail transaction or login in time, closing connection'],
  ] as const) {
    it(`${name}: ends a session not logged in by preAuthTimeoutMs, though it keeps talking, and spares one that logged in`, async () => {
      f = await start({ preAuthTimeoutMs: 300 }, 60_000);
      // Logged in (or, for SMTP, in a transaction): past the deadline's reach.
      const good = await f.connect(name === 'smtp' ? 'smtp' : `${name}s`, { tls: name !== 'smtp' });
      await good.expect(greeting);
      for (let i = 0; i < login.length; i += 2) await good.command(login[i] as string, login[i + 1] as RegExp);
      const slow = await f.connect(name);
      await slow.expect(greeting);
      const drip = setInterval(() => slow.send('x'), 50); // keeps the socket busy: no idle timeout
      try {
        expect(await slow.readLine()).to.equal(goodbye);
        await slow.closed();
      } finally {
        clearInterval(drip);
      }
      expect(f.log.find('warn', 'not authenticated in time, closing')).to.have.length(1);
      expect(good.isClosed).to.equal(false);
      const noop = name === 'imap' ? ['n NOOP', /^n OK/] : name === 'pop3' ? ['NOOP', /^\+OK/] : ['NOOP', /^250 /];
      await good.command(noop[0] as string, noop[1] as RegExp);
    });
  }

  it('ends a command line trickled in for longer than commandTimeoutMs with the timeout goodbye', async () => {
    f = await start({ commandTimeoutMs: 300 }, 60_000);
    const c = await f.connect('smtp');
    await c.expect(/^220 /);
    const drip = setInterval(() => c.send('N'), 30);
    try {
      expect(await c.readLine()).to.equal('421 4.4.2 Idle timeout, closing connection');
      await c.closed();
    } finally {
      clearInterval(drip);
    }
    expect(f.log.find('warn', 'line not completed in time, closing').map((r) => r.meta.ms)).to.deep.equal([300]);
  });
});
