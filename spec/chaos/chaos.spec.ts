import { expect } from 'chai';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import { Chaos, ChaosConfigError, parseChaosConfig } from '../../lib/chaos/chaos.js';
import { startMailServer, type MailServerOptions, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';

describe('chaos: fault injection for every protocol', () => {
  const servers: RunningMailServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  async function start(options: MailServerOptions = {}): Promise<RunningMailServer> {
    const s = await startMailServer({ users: ['alice:pw@example.test', 'bob:pw@other.test'], allowInsecureAuth: true, ...options });
    servers.push(s);
    return s;
  }
  async function smtp(s: RunningMailServer): Promise<LineClient> {
    const c = await LineClient.connect(s.ports.smtp!);
    await c.expect(/^220 /);
    await c.command('EHLO client.test', /^250 /);
    return c;
  }

  it('onChange: tells every subscriber the parsed rules after set and clear, not after a refused set, until unsubscribed', () => {
    const chaos = new Chaos();
    const seen: unknown[] = [];
    const off = chaos.onChange((config) => seen.push(config));
    chaos.set({ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 later' }], seed: 3 });
    expect(() => chaos.set({ rules: [{ protocol: 'ftp', stage: 'rcpt' }] })).to.throw(ChaosConfigError);
    chaos.clear();
    off();
    chaos.set({ rules: [] });
    expect(seen).to.deep.equal([{ rules: [{ protocol: 'smtp', stage: 'rcpt', action: 'reply', reply: '451 4.3.0 later' }], seed: 3 }, { rules: [] }]);
  });

  it('smtp rcpt: replies 451 to matching recipients only, `times` times, then lets them through', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 try later', times: 1, match: '*@example.test' }] } });
    const c = await smtp(s);
    await c.command('MAIL FROM:<x@sender.test>', /^250 /);
    expect(await c.command('RCPT TO:<bob@other.test>', /^\d/)).to.deep.equal(['250 2.1.5 Recipient <bob@other.test> OK']);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.deep.equal(['451 4.3.0 try later']);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.deep.equal(['250 2.1.5 Recipient <alice@example.test> OK']);
    expect(s.chaos.state.rules[0]?.fired).to.equal(1);
    await c.close();
  });

  it('smtp rcpt: nodemailer sees the injected refusal', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '550 5.1.1 chaos says no' }] } });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.ports.smtp, requireTLS: true, tls: { ca: s.ca, servername: 'localhost' } });
    const err = await t.sendMail({ from: 'x@sender.test', to: 'alice@example.test', subject: 's', text: 't' }).then(
      () => undefined,
      (e: { responseCode?: number; response?: string }) => e,
    );
    t.close();
    expect(err?.responseCode).to.equal(550);
    expect(err?.response).to.equal('550 5.1.1 chaos says no');
  });

  it('smtp data: the body is read, the rule replies instead of 250, nothing is stored', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'data', reply: '554 5.6.0 chaos rejected the body' }] } });
    const c = await smtp(s);
    c.send('MAIL FROM:<x@sender.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
    await c.expect(/^354 /);
    c.send('Subject: x\r\n\r\nhi\r\n.\r\n');
    expect(await c.readLine()).to.equal('554 5.6.0 chaos rejected the body');
    expect(await c.command('NOOP', /^\d/)).to.deep.equal(['250 2.0.0 OK']);
    expect(await s.receivedMessages()).to.deep.equal([]);
    await c.close();
  });

  it('smtp mail: a 421 rule replies and closes the session', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'mail', reply: '421 4.3.2 chaos closing' }] } });
    const c = await smtp(s);
    expect(await c.command('MAIL FROM:<x@sender.test>', /^\d/)).to.deep.equal(['421 4.3.2 chaos closing']);
    await c.closed();
  });

  it('smtp greeting: a reply replaces the greeting and the connection closes', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'greeting', reply: '554 5.3.2 not today' }] } });
    const c = await LineClient.connect(s.ports.smtp!);
    expect(await c.readLine()).to.equal('554 5.3.2 not today');
    await c.closed();
  });

  it('smtp starttls: tls-abort sends 220, then cuts the handshake off', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'starttls', action: 'tls-abort' }] } });
    const c = await smtp(s);
    c.line('STARTTLS');
    expect(await c.readLine()).to.equal('220 2.0.0 Ready to start TLS');
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const t = tls.connect({ socket: c.raw, ca: s.ca, servername: 'localhost' }, () => resolve(new Error('handshake completed')));
      t.once('error', resolve);
    });
    expect(err.code).to.be.oneOf(['ECONNRESET', 'EPIPE']);
  });

  it('imaps: tls-abort drops the implicit-TLS connection before the handshake; other stages are not consumed by it', async () => {
    const s = await start({
      chaos: {
        rules: [
          { protocol: 'imap', stage: 'starttls', reply: 'NO [UNAVAILABLE] no tls today', times: 1 },
          { protocol: 'imap', stage: 'starttls', action: 'tls-abort', times: 1 },
        ],
      },
    });
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const t = tls.connect({ host: '127.0.0.1', port: s.ports.imaps!, ca: s.ca, servername: 'localhost' }, () => resolve(new Error('handshake completed')));
      t.once('error', resolve);
    });
    expect(err.code).to.be.oneOf(['ECONNRESET', 'EPIPE']);
    expect(s.chaos.state.rules.map((r) => r.fired)).to.deep.equal([0, 1]);
    const c = await LineClient.connect(s.ports.imaps!, { tls: { ca: s.ca, servername: 'localhost' } }); // times: 1 spent
    expect(await c.readLine()).to.match(/^\* OK /);
    await c.close();
  });

  it('smtp rcpt: delay holds the reply at least that long, then answers normally', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'rcpt', action: 'delay', delayMs: 300 }] } });
    const c = await smtp(s);
    await c.command('MAIL FROM:<x@sender.test>', /^250 /);
    const t0 = performance.now();
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.deep.equal(['250 2.1.5 Recipient <alice@example.test> OK']);
    expect(performance.now() - t0).to.be.at.least(295); // a lower bound only: the sleep guarantees it
    await c.close();
  });

  it('pop3 login: disconnect drops the connection without a reply', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'pop3', stage: 'login', action: 'disconnect', match: 'alice' }] } });
    const c = await LineClient.connect(s.ports.pop3!);
    await c.expect(/^\+OK/);
    c.line('USER alice');
    await c.closed();
    const lines: string[] = [];
    while (!c.isClosed) lines.push(await c.readLine());
    expect(lines).to.deep.equal([]);
  });

  it('pop3 fetch: -ERR for RETR, the rest of the session works', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'pop3', stage: 'fetch', reply: '-ERR [SYS/TEMP] chaos' }] } });
    await s.store.deliver('alice@example.test', Buffer.from('Subject: a\r\n\r\nbody\r\n'));
    const c = await LineClient.connect(s.ports.pop3!);
    await c.expect(/^\+OK/);
    await c.command('USER alice', /^\+OK/);
    await c.command('PASS pw', /^\+OK/);
    expect(await c.command('RETR 1', /^[+-]/)).to.deep.equal(['-ERR [SYS/TEMP] chaos']);
    expect((await c.command('STAT', /^[+-]/))[0]).to.match(/^\+OK 1 /);
    await c.close();
  });

  it('imap login and fetch: tagged NO replies; imapflow sees the login refusal', async () => {
    const s = await start({
      chaos: {
        rules: [
          { protocol: 'imap', stage: 'login', reply: 'NO [UNAVAILABLE] chaos login', times: 1 },
          { protocol: 'imap', stage: 'fetch', reply: 'NO [UNAVAILABLE] chaos fetch' },
        ],
      },
    });
    await s.store.deliver('alice@example.test', Buffer.from('Subject: a\r\n\r\nbody\r\n'));
    const client = new ImapFlow({ host: '127.0.0.1', port: s.ports.imaps!, secure: true, tls: { ca: s.ca, servername: 'localhost' }, auth: { user: 'alice', pass: 'pw' }, logger: false });
    const failed = await client.connect().then(
      () => undefined,
      (e: { responseText?: string }) => e,
    );
    expect(failed?.responseText).to.equal('chaos login');
    s.chaos.set({
      rules: [
        { protocol: 'imap', stage: 'login', reply: 'NO [UNAVAILABLE] not you', match: 'BOB*' },
        { protocol: 'imap', stage: 'fetch', reply: 'NO [UNAVAILABLE] chaos fetch' },
      ],
    });
    const c = await LineClient.connect(s.ports.imap!);
    await c.expect(/^\* OK/);
    expect(await c.command('a0 LOGIN "bob" pw', /^a0 /)).to.deep.equal(['a0 NO [UNAVAILABLE] not you']); // LOGIN's user name is matched
    expect(await c.command('a1 LOGIN alice pw', /^a1 /)).to.match(/^a1 OK /);
    await c.command('a2 SELECT INBOX', /^a2 /);
    expect(await c.command('a3 FETCH 1 BODY[]', /^a3 /)).to.deep.equal(['a3 NO [UNAVAILABLE] chaos fetch']);
    await c.close();
  });

  it('imap connect: throttle writes the greeting in slices of a tenth of the rate per 100 ms', async () => {
    const s = await start({ chaos: { rules: [{ protocol: 'imap', stage: 'connect', action: 'throttle', bytesPerSecond: 200 }] } });
    const c = await LineClient.connect(s.ports.imap!);
    const chunks: number[] = [];
    c.raw.on('data', (d: Buffer) => chunks.push(d.length));
    const t0 = performance.now();
    const greeting = await c.readLine();
    expect(greeting).to.match(/^\* OK /);
    expect(Math.max(...chunks)).to.be.at.most(20); // 200 B/s → 20-octet slices
    expect(performance.now() - t0).to.be.at.least(Math.floor((greeting.length + 2) / 20) * 100 - 110);
    await c.close();
  });

  it('a seed makes probabilistic rules repeat; rules change at run time and clear() removes them', async () => {
    const draws = async (): Promise<string[]> => {
      const s = await start({ chaos: { rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 maybe', probability: 0.5 }], seed: 7 } });
      const c = await smtp(s);
      await c.command('MAIL FROM:<x@sender.test>', /^250 /);
      const out: string[] = [];
      for (let i = 0; i < 12; i++) out.push((await c.command('RCPT TO:<alice@example.test>', /^\d/))[0]!.slice(0, 3));
      await c.close();
      return out;
    };
    const first = await draws();
    expect(first).to.include('451').and.to.include('250');
    expect(await draws()).to.deep.equal(first);

    const s = await start();
    const c = await smtp(s);
    expect(await c.command('MAIL FROM:<x@sender.test>', /^\d/)).to.match(/^250 /);
    s.chaos.set({ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '452 4.2.2 full' }] });
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.deep.equal(['452 4.2.2 full']);
    s.chaos.clear();
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.match(/^250 /);
    await c.close();
  });

  it('refuses bad rules with a message naming the field', () => {
    const bad = (v: unknown): string => {
      try {
        parseChaosConfig(v);
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(bad({ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: 'OK fine' }] })).to.equal('rules[0].reply: not a smtp refusal (expected ^[45]\\d\\d[ -])');
    expect(bad({ rules: [{ protocol: 'pop3', stage: 'nope', reply: '-ERR x' }] })).to.match(/^rules\[0\]\.stage: expected one of connect, greeting/);
    expect(bad({ rules: [{ protocol: 'smtp', stage: 'rcpt' }] })).to.equal('rules[0]: needs "reply" or "action"');
    expect(bad({ rules: [{ protocol: 'smtp', stage: 'rcpt', action: 'tls-abort' }] })).to.equal('rules[0].action: tls-abort applies to stage "starttls" only');
    expect(bad({ rules: [{ protocol: 'imap', stage: 'login', reply: 'NO x', probability: 2 }] })).to.equal('rules[0].probability: expected a number from 0 to 1');
    expect(bad({ rules: [], extra: 1 })).to.equal('unknown field "extra"');
    expect(bad({ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 a\r\nb' }] })).to.equal('rules[0].reply: expected one line of at most 512 characters');
  });
});
