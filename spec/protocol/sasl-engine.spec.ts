import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { runSaslExchange, type ContinuationResult } from '../../lib/protocol/sasl/sasl-engine.js';
import { SaslMalformedError, SaslMechanism, type SaslSessionInfo } from '../../lib/protocol/sasl/sasl-mechanism.js';
import { CRAM_MD5 } from '../../lib/protocol/sasl/cram-md5.js';
import { LOGIN } from '../../lib/protocol/sasl/login.js';
import { PLAIN } from '../../lib/protocol/sasl/plain.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { PASSWORD, startAll, type AllProtocols } from '../support/all-protocols.js';
import type { LineClient } from '../support/line-client.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const plain = (user: string, pass: string, authzid = ''): string => b64(`${authzid}\0${user}\0${pass}`);

const SESSION: SaslSessionInfo = {
  peer: { id: 'c1', protocol: 'test', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security: { tls: true, policyErrors: SslPolicyErrors.None } },
  hostname: 'mx.test',
  supportsSharedSecrets: true,
};

/** A frame that answers each challenge with the next scripted result and records the challenges. */
function script(...answers: ContinuationResult[]): { frame: (c: string) => Promise<ContinuationResult>; challenges: string[] } {
  const challenges: string[] = [];
  return {
    challenges,
    frame: async (c) => {
      challenges.push(c);
      return answers.shift() ?? { kind: 'closed' };
    },
  };
}
const line = (text: string): ContinuationResult => ({ kind: 'line', text });

/** A one-step client-first mechanism `X-COLON`: the response is `user:password`. */
const X_COLON: SaslMechanism = {
  name: 'X-COLON',
  acceptsInitialResponse: true,
  isAvailable: () => true,
  start: () => ({
    async next(response) {
      if (response === undefined) return { challenge: Buffer.from('user:password?') };
      const text = response.toString('utf8');
      const i = text.indexOf(':');
      if (i <= 0) throw new SaslMalformedError('X-COLON needs user:password');
      return { done: { username: text.slice(0, i), password: text.slice(i + 1) } };
    },
  }),
};

describe('protocol: the one SASL engine', () => {
  describe('runSaslExchange (go-sasl Server.Next shape)', () => {
    it('runs PLAIN with an initial response without any challenge, and with an empty challenge without one', async () => {
      const none = script();
      expect(await runSaslExchange(PLAIN, SESSION, plain('alice', 'pw', 'alice'), none.frame)).to.deep.equal({
        kind: 'done',
        credentials: { username: 'alice', authzid: 'alice', password: 'pw' },
      });
      expect(none.challenges).to.deep.equal([]);
      const one = script(line(plain('alice', 'pw')));
      expect(await runSaslExchange(PLAIN, SESSION, undefined, one.frame)).to.deep.equal({ kind: 'done', credentials: { username: 'alice', authzid: undefined, password: 'pw' } });
      expect(one.challenges).to.deep.equal(['']);
    });

    it('asks LOGIN for Username: and Password:, or only Password: after an initial response', async () => {
      const full = script(line(b64('bob')), line(b64('pw')));
      expect(await runSaslExchange(LOGIN, SESSION, undefined, full.frame)).to.deep.include({ kind: 'done' });
      expect(full.challenges).to.deep.equal([b64('Username:'), b64('Password:')]);
      const ir = script(line(b64('pw')));
      expect(await runSaslExchange(LOGIN, SESSION, b64('bob'), ir.frame)).to.deep.equal({ kind: 'done', credentials: { username: 'bob', password: 'pw' } });
      expect(ir.challenges).to.deep.equal([b64('Password:')]);
    });

    it('refuses an initial response to CRAM-MD5, and checks its digest through verifyWithSecret', async () => {
      expect(await runSaslExchange(CRAM_MD5, SESSION, b64('x'), script().frame)).to.deep.equal({ kind: 'malformed', reason: 'initial-response', detail: 'CRAM-MD5 takes no initial response' });
      let challenge = '';
      const outcome = await runSaslExchange(CRAM_MD5, SESSION, undefined, async (c) => {
        challenge = Buffer.from(c, 'base64').toString();
        return line(b64(`alice ${createHmac('md5', 'tanstaaf').update(challenge).digest('hex')}`));
      });
      expect(challenge).to.match(/^<[0-9a-f]{16}\.\d+@mx\.test>$/);
      if (outcome.kind !== 'done') throw new Error(JSON.stringify(outcome));
      expect(outcome.credentials.username).to.equal('alice');
      expect(outcome.credentials.verifyWithSecret?.('tanstaaf')).to.equal(true);
      expect(outcome.credentials.verifyWithSecret?.('wrong')).to.equal(false);
    });

    it('maps `*`, `=`, bad base64, a malformed message and how the reader ended to outcomes', async () => {
      expect(await runSaslExchange(PLAIN, SESSION, '*', script().frame)).to.deep.equal({ kind: 'aborted', reason: 'cancelled' });
      expect(await runSaslExchange(PLAIN, SESSION, '=', script().frame)).to.deep.equal({ kind: 'malformed', reason: 'message', detail: 'malformed PLAIN message' });
      expect(await runSaslExchange(PLAIN, SESSION, '!!', script().frame)).to.deep.equal({ kind: 'malformed', reason: 'base64', detail: 'invalid base64' });
      expect(await runSaslExchange(PLAIN, SESSION, undefined, script(line('Zm9v=')).frame)).to.deep.equal({ kind: 'malformed', reason: 'base64', detail: 'invalid base64' });
      for (const kind of ['cancelled', 'too-long', 'bare-lf', 'closed'] as const) {
        expect(await runSaslExchange(LOGIN, SESSION, undefined, script({ kind }).frame)).to.deep.equal({ kind: 'aborted', reason: kind });
      }
    });

    it('bounds a mechanism that never finishes', async () => {
      const endless: SaslMechanism = { ...X_COLON, name: 'X-ENDLESS', start: () => ({ next: async () => ({ challenge: Buffer.from('more') }) }) };
      let asked = 0;
      const outcome = await runSaslExchange(endless, SESSION, undefined, async () => {
        asked++;
        return line('');
      });
      expect(outcome).to.deep.equal({ kind: 'malformed', reason: 'message', detail: 'X-ENDLESS exchange too long' });
      expect(asked).to.equal(11);
    });
  });

  describe('framed by SMTP (334), POP3 (+) and IMAP (+) alike', () => {
    let all: AllProtocols | undefined;
    afterEach(async () => {
      await all?.close();
      all = undefined;
    });

    async function smtp(): Promise<LineClient> {
      const c = await all!.connect('smtps', { tls: true });
      await c.expect(/^220 /);
      await c.command('EHLO client.test', /^250 /);
      return c;
    }
    async function pop3(): Promise<LineClient> {
      const c = await all!.connect('pop3s', { tls: true });
      await c.expect(/^\+OK/);
      return c;
    }
    async function imap(): Promise<LineClient> {
      const c = await all!.connect('imaps', { tls: true });
      await c.expect(/^\* OK/);
      return c;
    }

    it('offers the same mechanisms in EHLO, CAPA and CAPABILITY (CRAM-MD5 in IMAP too; no EXTERNAL without a client certificate)', async () => {
      all = await startAll();
      const s = await all.connect('smtps', { tls: true });
      await s.expect(/^220 /);
      expect(await s.command('EHLO client.test', /^250 /)).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
      const p = await pop3();
      expect(await p.command('CAPA', /^\.$/)).to.include('SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
      const i = await imap();
      const caps = (await i.command('a CAPABILITY', /^a OK/))[0];
      expect(caps.split(' ').filter((w) => w.startsWith('AUTH='))).to.deep.equal(['AUTH=PLAIN', 'AUTH=LOGIN', 'AUTH=CRAM-MD5', 'AUTH=SCRAM-SHA-256']);
    });

    it('logs in with CRAM-MD5 over IMAP, which had no CRAM-MD5 before the engine was shared', async () => {
      all = await startAll();
      const i = await imap();
      const [cont] = await i.command('a AUTHENTICATE CRAM-MD5', /^\+ /);
      const challenge = Buffer.from(cont.slice(2), 'base64').toString();
      expect(challenge).to.match(/^<[0-9a-f]{16}\.\d+@localhost>$/);
      const answer = await i.command(b64(`alice ${createHmac('md5', PASSWORD).update(challenge).digest('hex')}`), /^a /);
      expect(answer.at(-1)).to.match(/^a OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
    });

    it('names the `imap: { hostname }` host in IMAP CRAM-MD5 challenges', async () => {
      all = await startAll({ imap: { hostname: 'imap.example.test' } });
      const [cont] = await (await imap()).command('a AUTHENTICATE CRAM-MD5', /^\+ /);
      expect(Buffer.from(cont.slice(2), 'base64').toString()).to.match(/^<[0-9a-f]{16}\.\d+@imap\.example\.test>$/);
    });

    it('accepts an initial response everywhere (SMTP AUTH, POP3 AUTH RFC 5034, IMAP SASL-IR)', async () => {
      all = await startAll();
      expect(await (await smtp()).command(`AUTH PLAIN ${plain('alice', PASSWORD)}`, /^\d{3} /)).to.deep.equal(['235 2.7.0 Authentication successful']);
      expect((await (await pop3()).command(`AUTH PLAIN ${plain('alice', PASSWORD)}`, /^[+-]/))[0]).to.match(/^\+OK maildrop locked and ready/);
      expect((await (await imap()).command(`a AUTHENTICATE PLAIN ${plain('alice', PASSWORD)}`, /^a /)).at(-1)).to.match(/^a OK \[CAPABILITY .*\] Logged in$/);
    });

    it('answers a `*` cancel with 501 5.7.0, -ERR and BAD, and the session goes on', async () => {
      all = await startAll();
      const s = await smtp();
      await s.command('AUTH LOGIN', /^334 /);
      expect(await s.command('*', /^\d{3} /)).to.deep.equal(['501 5.7.0 Authentication cancelled']);
      expect(await s.command(`AUTH PLAIN ${plain('alice', PASSWORD)}`, /^\d{3} /)).to.deep.equal(['235 2.7.0 Authentication successful']);
      const p = await pop3();
      await p.command('AUTH LOGIN', /^\+ /);
      expect(await p.command('*', /^[+-]/)).to.deep.equal(['-ERR authentication cancelled']);
      expect((await p.command(`AUTH PLAIN ${plain('alice', PASSWORD)}`, /^[+-]/))[0]).to.match(/^\+OK maildrop/);
      const i = await imap();
      await i.command('a AUTHENTICATE LOGIN', /^\+ /);
      expect(await i.command('*', /^a /)).to.deep.equal(['a BAD Authentication cancelled']);
      expect((await i.command(`b AUTHENTICATE PLAIN ${plain('alice', PASSWORD)}`, /^b /)).at(-1)).to.match(/^b OK /);
    });

    it('answers an over-long response line at the limit the same way in all three, and the session goes on', async () => {
      all = await startAll();
      const long = 'A'.repeat(70_000);
      const s = await smtp();
      await s.command('AUTH PLAIN', /^334 /);
      expect(await s.command(long, /^\d{3} /)).to.deep.equal(['500 5.5.6 Authentication exchange line is too long']);
      expect(await s.command('NOOP', /^\d{3} /)).to.deep.equal(['250 2.0.0 OK']);
      const p = await pop3();
      await p.command('AUTH PLAIN', /^\+ /);
      expect(await p.command(long, /^[+-]/)).to.deep.equal(['-ERR response too long']);
      expect(await p.command('NOOP', /^[+-]/)).to.deep.equal(['-ERR command not valid in this state']);
      const i = await imap();
      await i.command('a AUTHENTICATE PLAIN', /^\+ /);
      expect(await i.command(long, /^a /)).to.deep.equal(['a BAD Response too long']);
      expect(await i.command('b NOOP', /^b /)).to.deep.equal(['b OK NOOP completed']);
    });

    it('reads SASL responses up to 12288 octets (RFC 4954 §4) though SMTP and POP3 command lines stop at 1024', async () => {
      all = await startAll();
      // A PLAIN response of exactly 12288 octets: a long (wrong) password, so the exchange ends in a refusal of the
      // credentials, not of the line.
      const response = plain('alice', 'p'.repeat(9200));
      expect(response.length).to.be.within(12_200, 12_288);
      const s = await smtp();
      expect(await s.command(`AUTH PLAIN ${response}`, /^\d{3} /)).to.deep.equal(['500 5.5.2 Line too long']);
      await s.command('AUTH PLAIN', /^334 /);
      expect(await s.command(response, /^\d{3} /)).to.deep.equal(['535 5.7.8 Authentication credentials invalid']);
      await s.command('AUTH PLAIN', /^334 /);
      expect(await s.command(`${response}${'A'.repeat(12_289 - response.length)}`, /^\d{3} /)).to.deep.equal(['500 5.5.6 Authentication exchange line is too long']);
      // The command-line limit is back after the exchange.
      expect(await s.command(`NOOP ${'x'.repeat(1100)}`, /^\d{3} /)).to.deep.equal(['500 5.5.2 Line too long']);
      const p = await pop3();
      await p.command('AUTH PLAIN', /^\+ /);
      expect(await p.command(response, /^[+-]/)).to.deep.equal(['-ERR [AUTH] authentication failed']);
    });

    it('adds a mechanism bound once as a SaslMechanism to SMTP, POP3 and IMAP', async () => {
      // One more binding in the multi-binding registry, nothing else.
      all = await startAll({}, 10_000, [new ContainerModule(({ bind }) => void bind(SaslMechanism).toConstantValue(X_COLON))]);
      const s = await all.connect('smtps', { tls: true });
      await s.expect(/^220 /);
      expect(await s.command('EHLO client.test', /^250 /)).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 X-COLON');
      expect(await s.command(`AUTH X-COLON ${b64(`alice:${PASSWORD}`)}`, /^\d{3} /)).to.deep.equal(['235 2.7.0 Authentication successful']);
      const p = await pop3();
      expect((await p.command('AUTH X-COLON', /^\+ /))[0]).to.equal(`+ ${b64('user:password?')}`);
      expect((await p.command(b64(`alice:${PASSWORD}`), /^[+-]/))[0]).to.match(/^\+OK maildrop/);
      const i = await imap();
      expect(await i.command(`a AUTHENTICATE X-COLON ${b64('nocolon')}`, /^a /)).to.deep.equal(['a BAD X-COLON needs user:password']);
      expect((await i.command(`b AUTHENTICATE X-COLON ${b64(`alice:${PASSWORD}`)}`, /^b /)).at(-1)).to.match(/^b OK /);
    });
  });
});

