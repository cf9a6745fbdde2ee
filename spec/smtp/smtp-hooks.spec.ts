import { expect } from 'chai';
import type { Readable } from 'node:stream';
import type { Container } from 'inversify';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { SmtpHooks, type SmtpAuthInfo, type SmtpHooks as Hooks } from '../../lib/smtp/smtp-backend.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { SmtpServer } from '../../lib/smtp/smtp-server.js';
import { AuthThrottleToken } from '../../lib/protocol/auth-throttle.js';
import { LineClient } from '../support/line-client.js';
import { plainAuth, startSmtp, storedTexts, upgrade, type SmtpFixture } from './smtp-harness.js';

describe('smtp: hooks refuse with their own codes', () => {
  let f: SmtpFixture;
  afterEach(async () => {
    await f?.close();
  });

  const withHooks = (...hooks: Hooks[]) => ({
    setup: (ct: Container) => {
      for (const h of hooks) ct.bind(SmtpHooks).toConstantValue(h);
    },
  });

  it('onConnect: the refusal replaces the greeting and the connection closes', async () => {
    const onConnect = async (peer: PeerInfo): Promise<void> => {
      if (peer.remoteAddress.includes('127.0.0.1')) throw new SmtpReplyError(554, '5.7.1', 'No SMTP service for you');
    };
    f = await startSmtp(withHooks({ onConnect }));
    const c = await LineClient.connect(f.port);
    expect(await c.readLine()).to.equal('554 5.7.1 No SMTP service for you');
    await c.closed();
  });

  it('onMailFrom and onRcptTo: refusals keep the state, every hook runs in binding order', async () => {
    const calls: string[] = [];
    f = await startSmtp(
      withHooks(
        {
          onMailFrom: async (from) => {
            calls.push(`a:${from}`);
            if (from.startsWith('spammer')) throw new SmtpReplyError(550, '5.7.1', 'Sender blocked');
          },
          onRcptTo: async (to) => {
            if (to.startsWith('alice')) throw new SmtpReplyError(450, '4.2.0', 'Mailbox busy, try later');
          },
        },
        { onMailFrom: async (from) => void calls.push(`b:${from}`) },
      ),
    );
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<spammer@x.test>', /^\d/)).to.deep.equal(['550 5.7.1 Sender blocked']);
    expect(await c.command('RCPT TO:<alice@example.com>', /^5/)).to.match(/^503 /);
    expect(await c.command('MAIL FROM:<bob@x.test>', /^\d/)).to.match(/^250 /);
    expect(await c.command('RCPT TO:<alice@example.com>', /^\d/)).to.deep.equal(['450 4.2.0 Mailbox busy, try later']);
    expect(calls).to.deep.equal(['a:spammer@x.test', 'a:bob@x.test', 'b:bob@x.test']);
  });

  it('onAuth: a refusal leaves the session unauthenticated', async () => {
    const onAuth = async (info: SmtpAuthInfo): Promise<void> => {
      if (info.username === 'alice') throw new SmtpReplyError(535, '5.7.8', 'Account locked');
    };
    f = await startSmtp({ ...withHooks({ onAuth }), smtp: { requireAuth: true } });
    const c = await f.ehlo();
    await upgrade(c, f);
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^\d/)).to.deep.equal(['535 5.7.8 Account locked']);
    expect(await c.command('MAIL FROM:<alice@example.com>', /^\d/)).to.deep.equal(['530 5.7.0 Authentication required']);
  });

  it('onAuth: a refused login is no success for the failed-login throttle (the account failures are not forgiven)', async () => {
    const onAuth = async (): Promise<void> => {
      throw new SmtpReplyError(535, '5.7.8', 'Account locked');
    };
    f = await startSmtp({ ...withHooks({ onAuth }), smtp: { requireAuth: true }, config: { authThrottle: { maxFailuresPerAccount: 2 } } });
    const throttle = f.container.get(AuthThrottleToken);
    throttle.failure('192.0.2.1', 'alice', 0); // one guess from elsewhere: 1 of 2
    const c = await f.ehlo();
    await upgrade(c, f);
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^\d/)).to.deep.equal(['535 5.7.8 Account locked']);
    throttle.failure('192.0.2.1', 'alice', 0); // 2 of 2 — had the hook-refused login counted as a success, it would be 1
    expect(throttle.isRefused('192.0.2.1', 'alice')).to.equal('account');
  });

  it('onData: reads the stream and refuses; nothing is stored and the session goes on', async () => {
    f = await startSmtp(
      withHooks({
        onData: async (body: Readable, env) => {
          let text = '';
          for await (const chunk of body) text += (chunk as Buffer).toString();
          expect(env.rcptTo).to.deep.equal(['alice@example.com']);
          expect(text).to.match(/^Received: from client\.test/);
          if (text.includes('VIAGRA')) throw new SmtpReplyError(554, '5.7.1', 'Message looks like spam');
        },
      }),
    );
    const c = await f.ehlo();
    const send = async (body: string): Promise<string> => {
      c.send('MAIL FROM:<bob@x.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
      await c.expect(/^354 /);
      c.send(body + '\r\n.\r\n');
      return c.readLine();
    };
    expect(await send('Subject: buy\r\n\r\nVIAGRA')).to.equal('554 5.7.1 Message looks like spam');
    expect(await storedTexts(f.store)).to.deep.equal([]);
    expect(await send('Subject: hello\r\n\r\nhi')).to.match(/^250 /);
    expect(await storedTexts(f.store)).to.have.length(1);
  });

  it('a 421 from onMailFrom is sent and the session closes (RFC 5321 §3.8)', async () => {
    f = await startSmtp(withHooks({ onMailFrom: async () => Promise.reject(new SmtpReplyError(421, '4.3.2', 'Going down')) }));
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@x.test>', /^\d/)).to.deep.equal(['421 4.3.2 Going down']);
    await c.closed();
  });

  it('a 421 from onRcptTo closes the session with nothing stored', async () => {
    f = await startSmtp(withHooks({ onRcptTo: async () => Promise.reject(new SmtpReplyError(421, '4.7.0', 'Try again later')) }));
    const c = await f.ehlo();
    c.send('MAIL FROM:<bob@x.test>\r\nRCPT TO:<alice@example.com>\r\n');
    expect(await c.readLine()).to.match(/^250 /);
    expect(await c.readLine()).to.equal('421 4.7.0 Try again later');
    await c.closed();
    expect(await storedTexts(f.store)).to.deep.equal([]);
  });

  it('a 421 from onData after the body closes the session with nothing stored', async () => {
    f = await startSmtp(withHooks({ onData: async () => Promise.reject(new SmtpReplyError(421, '4.3.0', 'Queue full')) }));
    const c = await f.ehlo();
    c.send('MAIL FROM:<bob@x.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
    await c.expect(/^354 /);
    c.send('Subject: x\r\n\r\nhi\r\n.\r\n');
    expect(await c.readLine()).to.equal('421 4.3.0 Queue full');
    await c.closed();
    expect(await storedTexts(f.store)).to.deep.equal([]);
  });

  it('hooks set at run time apply to a live session at its next command, and can be removed', async () => {
    f = await startSmtp();
    const server = f.container.get(SmtpServer);
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@x.test>', /^\d/)).to.match(/^250 /);
    server.setRuntimeHooks([{ onRcptTo: async () => Promise.reject(new SmtpReplyError(550, '5.7.1', 'Switched off')) }]);
    expect(await c.command('RCPT TO:<alice@example.com>', /^\d/)).to.deep.equal(['550 5.7.1 Switched off']);
    server.setRuntimeHooks([]);
    expect(await c.command('RCPT TO:<alice@example.com>', /^\d/)).to.match(/^250 2\.1\.5 /);
  });

  it('a hook that never settles does not hold the session past its idle timeout: 421 4.4.2 and close; the server stops', async () => {
    f = await startSmtp({ ...withHooks({ onRcptTo: () => new Promise<void>(() => undefined) }), smtp: { idleTimeoutMs: 300 } });
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@x.test>', /^\d/)).to.match(/^250 /);
    c.send('RCPT TO:<alice@example.com>\r\n');
    expect(await c.readLine()).to.match(/^421 4\.4\.2 /);
    await c.closed();
    expect(await storedTexts(f.store)).to.deep.equal([]);
  });

  it('a hook that throws a plain Error is a bug: 451 4.3.0, its text never on the wire', async () => {
    const onMailFrom = async (): Promise<void> => {
      throw new Error('database password is hunter2');
    };
    f = await startSmtp(withHooks({ onMailFrom }));
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@x.test>', /^\d/)).to.deep.equal(['451 4.3.0 Internal error, try again later']);
  });
});
