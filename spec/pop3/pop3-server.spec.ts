import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { Authenticator } from '../../lib/contracts/authenticator.js';
import { MailStore, MailStoreError } from '../../lib/contracts/mail-store.js';
import { DEFAULT_WAIT_MS, LineClient } from '../support/line-client.js';
import { ALICE, message, startPop3, type Pop3Harness } from './pop3-harness.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('pop3: server', () => {
  let h: Pop3Harness;
  afterEach(async () => {
    await h?.close();
  });

  describe('greeting, CAPA and STLS', () => {
    beforeEach(async () => {
      h = await startPop3();
    });

    it('greets with +OK and an APOP timestamp when the authenticator knows shared secrets', async () => {
      const c = await h.connect();
      expect(await c.readLine()).to.match(/^\+OK Postern POP3 server ready <\d+\.[0-9a-f]+\.\d+@localhost>$/);
    });

    it('lists STLS but neither USER nor SASL before TLS', async () => {
      const c = await h.connect();
      await c.readLine();
      const lines = await c.command('CAPA', /^\.$/);
      expect(lines[0]).to.match(/^\+OK/);
      expect(lines).to.include.members(['STLS', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'IMPLEMENTATION Postern']);
      expect(lines.some((l) => l === 'USER' || l.startsWith('SASL'))).to.equal(false);
    });

    it('recomputes CAPA after STLS: no STLS, USER and SASL PLAIN LOGIN offered', async () => {
      const c = await h.connect();
      await c.readLine();
      await c.command('STLS', /^\+OK/);
      const s = await c.startTls(h.trust());
      expect(s.getProtocol()).to.match(/^TLSv1\.[23]$/);
      const lines = await c.command('CAPA', /^\.$/);
      expect(lines).to.not.include('STLS');
      expect(lines).to.include('USER');
      expect(lines).to.include('SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
    });

    it('never executes plaintext pipelined after STLS (STLS\\r\\nSTAT\\r\\n in one write)', async () => {
      const c = await h.connect();
      await c.readLine();
      c.send('STLS\r\nSTAT\r\n');
      expect(await c.readLine()).to.equal('+OK begin TLS negotiation');
      await c.startTls(h.trust());
      expect(c.pending).to.equal('');
      // The next reply must be to NOOP-like CAPA, not to the injected STAT.
      const lines = await c.command('CAPA', /^\.$/);
      expect(lines[0]).to.match(/^\+OK capability/);
    });

    it('closes without a plaintext reply when the STLS handshake fails', async () => {
      const c = await h.connect();
      await c.readLine();
      expect(await c.command('STLS', /^[+-]/)).to.deep.equal(['+OK begin TLS negotiation']);
      c.send('this is not a ClientHello\r\n');
      await c.closed();
      expect(c.pending).to.equal('');
    });

    it('refuses STLS once TLS is active', async () => {
      const c = await h.connectTls();
      await c.readLine();
      expect((await c.command('STLS', /^[+-]/))[0]).to.match(/^-ERR /);
    });

    it('refuses USER, PASS, APOP and AUTH before TLS with -ERR [AUTH]', async () => {
      const c = await h.connect();
      await c.readLine();
      for (const cmd of [`USER ${ALICE.username}`, `PASS ${ALICE.password}`, 'APOP alice 0123456789abcdef0123456789abcdef', 'AUTH PLAIN']) {
        expect((await c.command(cmd, /^[+-]/))[0]).to.match(/^-ERR \[AUTH\] /);
      }
    });

    it('permits USER/PASS in plaintext with allowInsecureAuth and then lists USER', async () => {
      await h.close();
      h = await startPop3({}, { allowInsecureAuth: true });
      const c = await h.connect();
      await c.readLine();
      expect(await c.command('CAPA', /^\.$/)).to.include('USER');
      await c.command(`USER ${ALICE.username}`, /^\+OK/);
      expect((await c.command(`PASS ${ALICE.password}`, /^[+-]/))[0]).to.match(/^\+OK /);
    });

    it('serves the implicit-TLS port with the same session code', async () => {
      const c = await h.connectTls();
      expect(await c.readLine()).to.match(/^\+OK /);
      const lines = await c.command('CAPA', /^\.$/);
      expect(lines).to.include('USER').and.not.include('STLS');
    });
  });

  describe('authentication', () => {
    beforeEach(async () => {
      h = await startPop3();
      await h.deliver(message('one'));
    });

    async function ready(): Promise<LineClient> {
      const c = await h.connectTls();
      await c.readLine();
      return c;
    }

    it('logs in with USER/PASS (password with a space) and reports the maildrop', async () => {
      const c = await ready();
      await c.command('USER alice', /^\+OK/);
      expect((await c.command(`PASS ${ALICE.password}`, /^[+-]/))[0]).to.match(/^\+OK .*1 messages/);
    });

    it('refuses a wrong password with -ERR [AUTH] after the delay and stays in AUTHORIZATION', async () => {
      const c = await ready();
      await c.command('USER alice', /^\+OK/);
      expect((await c.command('PASS wrong', /^[+-]/))[0]).to.match(/^-ERR \[AUTH\] /);
      expect((await c.command('STAT', /^[+-]/))[0]).to.match(/^-ERR /);
      await c.command('USER alice', /^\+OK/);
      expect((await c.command(`PASS ${ALICE.password}`, /^[+-]/))[0]).to.match(/^\+OK/);
    });

    it('closes after too many failed logins', async () => {
      const c = await ready();
      for (let i = 0; i < 3; i++) {
        await c.command('USER alice', /^\+OK/);
        expect((await c.command('PASS nope', /^[+-]/))[0]).to.match(/^-ERR \[AUTH\]/);
      }
      await c.closed();
    });

    it('delays a failed login without blocking other sessions', async () => {
      await h.close();
      // Event order, not a stopwatch: a whole other session is served while the failed login waits. The delay is
      // long enough for a loaded machine to do that first; timers never fire early, so the lower bound holds too.
      const delayMs = DEFAULT_WAIT_MS * 0.4; // 2 s, and within the client's wait for the reply
      h = await startPop3({ failedLoginDelayMs: delayMs });
      const slow = await ready();
      await slow.command('USER alice', /^\+OK/);
      const started = Date.now();
      slow.line('PASS wrong');
      const fast = await ready();
      await fast.command('USER alice', /^\+OK/);
      expect(await fast.command(`PASS ${ALICE.password}`, /^[+-]/)).to.have.length(1).and.to.match(/^\+OK/);
      expect(slow.pending).to.equal(''); // the failed login is still waiting
      expect(await slow.readLine()).to.equal('-ERR [AUTH] authentication failed');
      expect(Date.now() - started).to.be.at.least(delayMs - 10);
    });

    it('refuses PASS without USER', async () => {
      const c = await ready();
      expect((await c.command('PASS x', /^[+-]/))[0]).to.equal('-ERR USER first');
    });

    it('AUTH PLAIN with an initial response', async () => {
      const c = await ready();
      const reply = await c.command(`AUTH PLAIN ${b64(`\0alice\0${ALICE.password}`)}`, /^[+-]/);
      expect(reply[0]).to.match(/^\+OK /);
    });

    it('AUTH PLAIN without an initial response uses a "+ " continuation', async () => {
      const c = await ready();
      expect(await c.command('AUTH PLAIN', /^\+ /)).to.deep.equal(['+ ']);
      expect((await c.command(b64(`\0alice\0${ALICE.password}`), /^[+-]/))[0]).to.match(/^\+OK /);
    });

    it('AUTH cancelled with * and bad base64 refused', async () => {
      const c = await ready();
      await c.command('AUTH PLAIN', /^\+ /);
      expect((await c.command('*', /^[+-]/))[0]).to.equal('-ERR authentication cancelled');
      expect((await c.command('AUTH PLAIN !!!notbase64', /^[+-]/))[0]).to.match(/^-ERR /);
      expect((await c.command('AUTH XOAUTH9', /^[+-]/))[0]).to.match(/^-ERR unsupported mechanism/);
      expect((await c.command(`AUTH PLAIN ${b64('\0alice\0bad')}`, /^[+-]/))[0]).to.match(/^-ERR \[AUTH\]/);
    });

    it('AUTH LOGIN', async () => {
      const c = await ready();
      expect(await c.command('AUTH LOGIN', /^\+ /)).to.deep.equal(['+ VXNlcm5hbWU6']);
      expect(await c.command(b64('alice'), /^\+ /)).to.deep.equal(['+ UGFzc3dvcmQ6']);
      expect((await c.command(b64(ALICE.password), /^[+-]/))[0]).to.match(/^\+OK /);
    });

    it('AUTH alone lists the mechanisms', async () => {
      const c = await ready();
      expect(await c.command('AUTH', /^\.$/)).to.deep.equal(['+OK SASL mechanisms follow', 'PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', '.']);
    });

    it('APOP with the greeting timestamp', async () => {
      const c = await h.connectTls();
      const greeting = await c.readLine();
      const ts = /<[^>]+>/.exec(greeting)?.[0] ?? '';
      const bad = createHash('md5').update(ts + 'wrong').digest('hex');
      expect((await c.command(`APOP alice ${bad}`, /^[+-]/))[0]).to.match(/^-ERR \[AUTH\]/);
      const good = createHash('md5').update(ts + ALICE.password).digest('hex');
      expect((await c.command(`APOP alice ${good}`, /^[+-]/))[0]).to.match(/^\+OK /);
    });

    it('refuses a second session on the same maildrop with -ERR [IN-USE], until the first ends', async () => {
      const first = await h.loginAlice();
      const second = await ready();
      await second.command('USER alice', /^\+OK/);
      expect((await second.command(`PASS ${ALICE.password}`, /^[+-]/))[0]).to.match(/^-ERR \[IN-USE\] /);
      await first.command('QUIT', /^\+OK/);
      await first.closed();
      await second.command('USER alice', /^\+OK/);
      expect((await second.command(`PASS ${ALICE.password}`, /^[+-]/))[0]).to.match(/^\+OK /);
    });
  });

  describe('custom authenticators', () => {
    const withAuthenticator = (authenticator: Authenticator): Promise<Pop3Harness> =>
      startPop3({}, {}, undefined, (container) => {
        container.rebind(Authenticator).toConstantValue(authenticator);
      });

    it('offers neither APOP nor CRAM-MD5 without shared secrets', async () => {
      h = await withAuthenticator({ supportsSharedSecrets: false, authenticate: async (r) => ({ ok: true, username: r.username }) });
      const c = await h.connectTls();
      expect(await c.readLine()).to.equal('+OK Postern POP3 server ready');
      expect(await c.command('CAPA', /^\.$/)).to.include('SASL PLAIN LOGIN');
      expect(await c.command('APOP alice 0123456789abcdef0123456789abcdef', /^[+-]/)).to.deep.equal(['-ERR APOP not supported']);
      expect((await c.command('AUTH CRAM-MD5', /^[+-]/))[0]).to.match(/^-ERR unsupported mechanism/);
    });

    it('answers a temporary failure with [SYS/TEMP] and an authenticator bug generically, staying usable', async () => {
      let calls = 0;
      h = await withAuthenticator({
        supportsSharedSecrets: false,
        authenticate: async () => {
          calls++;
          if (calls === 1) return { ok: false, reason: 'temporary-failure' };
          throw new Error('secret backend detail');
        },
      });
      const c = await h.connectTls();
      await c.readLine();
      await c.command('USER alice', /^\+OK/);
      expect(await c.command('PASS x', /^[+-]/)).to.deep.equal(['-ERR [SYS/TEMP] authentication temporarily unavailable']);
      await c.command('USER alice', /^\+OK/);
      expect(await c.command('PASS x', /^[+-]/)).to.deep.equal(['-ERR [SYS/TEMP] internal server error']);
      expect(await c.command('CAPA', /^\.$/)).to.include('TOP');
    });

    it('gives a user another Authenticator accepts a maildrop (the store is the one user directory, issue 12)', async () => {
      h = await withAuthenticator({ supportsSharedSecrets: false, authenticate: async () => ({ ok: true, username: 'ghost' }) });
      const c = await h.connectTls();
      await c.readLine();
      await c.command('USER ghost', /^\+OK/);
      expect(await c.command('PASS x', /^[+-]/)).to.deep.equal(['+OK maildrop locked and ready, 0 messages (0 octets)']);
      expect(await h.store.users.find('ghost')).to.equal('ghost');
    });

    it('answers [SYS/PERM] when the store has no maildrop for an accepted user', async () => {
      const ghost: Authenticator = { supportsSharedSecrets: false, authenticate: async () => ({ ok: true, username: 'ghost' }) };
      h = await startPop3({}, {}, undefined, (container) => {
        container.rebind(Authenticator).toConstantValue(ghost);
        const store = container.get(MailStore);
        const open = store.openUser.bind(store);
        store.openUser = async (user) => (user === 'ghost' ? Promise.reject(new MailStoreError('NO_SUCH_USER', 'no such user')) : open(user));
      });
      const c = await h.connectTls();
      await c.readLine();
      await c.command('USER ghost', /^\+OK/);
      expect(await c.command('PASS x', /^[+-]/)).to.deep.equal(['-ERR [SYS/PERM] no maildrop for this user']);
    });
  });

  describe('transaction', () => {
    beforeEach(async () => {
      h = await startPop3();
      await h.deliver(message('one'));
      await h.deliver(message('two', 'line\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n'));
      await h.deliver(message('three', 'a\r\nb\r\nc\r\nd\r\n'));
    });

    it('STAT, LIST and LIST n give exact octet counts', async () => {
      const c = await h.loginAlice();
      const sizes = (await allMessages(h.store)).map((m) => m.message.size);
      const total = sizes.reduce((a, b) => a + b, 0);
      expect(await c.command('STAT', /^[+-]/)).to.deep.equal([`+OK 3 ${total}`]);
      expect(await c.command('LIST', /^\.$/)).to.deep.equal([`+OK 3 messages (${total} octets)`, `1 ${sizes[0]}`, `2 ${sizes[1]}`, `3 ${sizes[2]}`, '.']);
      expect(await c.command('LIST 2', /^[+-]/)).to.deep.equal([`+OK 2 ${sizes[1]}`]);
    });

    it('RETR sends the message byte-stuffed, byte for byte after un-stuffing', async () => {
      const c = await h.loginAlice();
      const lines = await c.command('RETR 2', /^\.$/);
      const stored = (await (await allMessages(h.store))[1].message.raw()).toString('latin1');
      expect(lines[0]).to.equal(`+OK ${Buffer.byteLength(stored)} octets`);
      expect(lines).to.include('..starts with a dot').and.include('...two dots').and.include('..');
      const unstuffed = lines.slice(1, -1).map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n') + '\r\n';
      expect(unstuffed).to.equal(stored);
    });

    it('TOP sends the header, the blank line and n body lines', async () => {
      const c = await h.loginAlice();
      const lines = await c.command('TOP 3 2', /^\.$/);
      expect(lines).to.deep.equal(['+OK top of message follows', 'From: bob@example.com', 'To: alice@example.com', 'Subject: three', '', 'a', 'b', '.']);
      expect((await c.command('TOP 3 0', /^\.$/)).slice(-2)).to.deep.equal(['', '.']);
      expect((await c.command('TOP 3', /^[+-]/))[0]).to.match(/^-ERR /);
      expect((await c.command('TOP 3 -1', /^[+-]/))[0]).to.match(/^-ERR /);
    });

    it('UIDL is stable across sessions and survives deletions of other messages', async () => {
      const c = await h.loginAlice();
      const first = await c.command('UIDL', /^\.$/);
      expect(first).to.have.length(5);
      for (const l of first.slice(1, -1)) expect(l).to.match(/^\d+ \d+\.\d+$/);
      expect(await c.command('UIDL 2', /^[+-]/)).to.deep.equal([`+OK ${first[2]}`]);
      await c.command('DELE 1', /^\+OK/);
      await c.command('QUIT', /^\+OK/);
      await c.closed();
      const again = await h.loginAlice();
      const second = await again.command('UIDL', /^\.$/);
      expect(second.slice(1, -1).map((l) => l.split(' ')[1])).to.deep.equal(first.slice(2, -1).map((l) => l.split(' ')[1]));
    });

    it('DELE is undone by RSET', async () => {
      const c = await h.loginAlice();
      await c.command('DELE 1', /^\+OK/);
      expect((await c.command('STAT', /^[+-]/))[0]).to.match(/^\+OK 2 /);
      expect((await c.command('RETR 1', /^[+-]/))[0]).to.equal('-ERR message already deleted');
      expect((await c.command('DELE 1', /^[+-]/))[0]).to.equal('-ERR message already deleted');
      expect(await c.command('LIST', /^\.$/)).to.have.length(4);
      expect((await c.command('RSET', /^[+-]/))[0]).to.match(/^\+OK maildrop has 3 messages/);
      await c.command('QUIT', /^\+OK .*0 messages deleted/);
      expect(await allMessages(h.store)).to.have.length(3);
    });

    it('applies DELE only at QUIT (UPDATE state)', async () => {
      const c = await h.loginAlice();
      await c.command('DELE 2', /^\+OK/);
      expect(await allMessages(h.store)).to.have.length(3);
      expect(await c.command('QUIT', /^[+-]/)).to.deep.equal(['+OK Postern POP3 server signing off (1 messages deleted)']);
      await c.closed();
      const left = await allMessages(h.store);
      expect(left).to.have.length(2);
      expect((await left[1].message.raw()).toString()).to.contain('Subject: three');
    });

    it('a dropped connection (no QUIT) deletes nothing and releases the lock', async () => {
      const c = await h.loginAlice();
      await c.command('DELE 1', /^\+OK/);
      await c.command('DELE 2', /^\+OK/);
      await c.close();
      await h.lockReleased('alice');
      const again = await h.loginAlice();
      expect((await again.command('STAT', /^[+-]/))[0]).to.match(/^\+OK 3 /);
    });

    it('keeps message numbers of the login snapshot while new mail arrives', async () => {
      const c = await h.loginAlice();
      await h.deliver(message('four'));
      expect((await c.command('STAT', /^[+-]/))[0]).to.match(/^\+OK 3 /);
      expect((await c.command('LIST 4', /^[+-]/))[0]).to.equal('-ERR no such message');
      await c.command('QUIT', /^\+OK/);
      const again = await h.loginAlice();
      expect((await again.command('STAT', /^[+-]/))[0]).to.match(/^\+OK 4 /);
    });

    it('answers NOOP and pipelined commands in order', async () => {
      const c = await h.loginAlice();
      c.send('NOOP\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\n');
      const lines = await c.expect(/^\+OK 1 \d+\.\d+$/);
      expect(lines).to.have.length(4);
      expect(lines[0]).to.equal('+OK');
    });
  });

  describe('bad input', () => {
    beforeEach(async () => {
      h = await startPop3({ maxBadCommands: 30 });
      await h.deliver(message('one'));
    });

    it('refuses unknown commands and commands in the wrong state, and stays usable', async () => {
      const c = await h.connectTls();
      await c.readLine();
      expect(await c.command('FOO', /^[+-]/)).to.deep.equal(['-ERR unknown command']);
      expect(await c.command('', /^[+-]/)).to.deep.equal(['-ERR unknown command']);
      expect(await c.command('STAT', /^[+-]/)).to.deep.equal(['-ERR command not valid in this state']);
      expect(await c.command('__proto__', /^[+-]/)).to.deep.equal(['-ERR unknown command']);
      await c.command('USER alice', /^\+OK/);
      await c.command(`PASS ${ALICE.password}`, /^\+OK/);
      expect(await c.command('USER alice', /^[+-]/)).to.deep.equal(['-ERR command not valid in this state']);
      expect(await c.command('STLS', /^[+-]/)).to.deep.equal(['-ERR command not valid in this state']);
      expect((await c.command('STAT', /^[+-]/))[0]).to.match(/^\+OK 1 /);
    });

    it('refuses bad message numbers: 0, negative, non-numeric, out of range, huge, missing or extra arguments', async () => {
      const c = await h.loginAlice();
      for (const arg of ['0', '-1', 'abc', '1.5', '01', '99999999999999999999', '1 2']) {
        const [reply] = await c.command(`RETR ${arg}`, /^[+-]/);
        expect(reply, arg).to.match(/^-ERR /);
      }
      expect(await c.command('RETR 2', /^[+-]/)).to.deep.equal(['-ERR no such message']);
      expect(await c.command('DELE 0', /^[+-]/)).to.deep.equal(['-ERR invalid message number']);
      expect(await c.command('RETR', /^[+-]/)).to.deep.equal(['-ERR argument required']);
      expect(await c.command('STAT 1', /^[+-]/)).to.deep.equal(['-ERR no arguments allowed']);
      expect((await c.command('LIST 1', /^[+-]/))[0]).to.match(/^\+OK 1 \d+$/);
    });

    it('refuses an over-long line with -ERR and stays usable', async () => {
      const c = await h.connectTls();
      await c.readLine();
      expect(await c.command('NOOP ' + 'x'.repeat(5000), /^[+-]/)).to.deep.equal(['-ERR line too long']);
      expect(await c.command('CAPA', /^\.$/)).to.include('UIDL');
    });

    it('survives binary garbage', async () => {
      const c = await h.connectTls();
      await c.readLine();
      c.send(Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]));
      expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR unknown command']);
      expect(await c.readLine()).to.equal('-ERR unknown command');
      expect(await c.command('CAPA', /^\.$/)).to.include('TOP');
    });
  });

  describe('limits and shutdown', () => {
    it('closes with -ERR when the error budget is spent', async () => {
      h = await startPop3({ maxBadCommands: 3 });
      const c = await h.connect();
      await c.readLine();
      c.send('A\r\nB\r\nC\r\nD\r\n');
      expect(await c.expect(/too many errors/)).to.deep.equal(['-ERR unknown command', '-ERR unknown command', '-ERR unknown command', '-ERR too many errors, closing']);
      await c.closed();
    });

    it('closes with -ERR a client trickling a command line that never ends (slowloris)', async () => {
      h = await startPop3({ idleTimeoutMs: 200 });
      const c = await h.connect();
      await c.readLine();
      const drip = setInterval(() => c.isClosed || c.send('U'), 20);
      try {
        expect(await c.readLine()).to.match(/^-ERR autologout/);
        await c.closed();
      } finally {
        clearInterval(drip);
      }
    });

    it('closes an idle session with -ERR and deletes nothing', async () => {
      h = await startPop3({ idleTimeoutMs: 300 });
      await h.deliver(message('one'));
      const c = await h.loginAlice();
      await c.command('DELE 1', /^\+OK/);
      expect(await c.readLine()).to.match(/^-ERR autologout/);
      await c.closed();
      expect(await allMessages(h.store)).to.have.length(1);
    });

    it('says -ERR [SYS/TEMP] to live sessions on shutdown and applies no deletions', async () => {
      h = await startPop3();
      await h.deliver(message('one'));
      const c = await h.loginAlice();
      await c.command('DELE 1', /^\+OK/);
      const closing = Promise.all(h.listeners.map((l) => l.close()));
      expect(await c.readLine()).to.equal('-ERR [SYS/TEMP] server shutting down');
      await c.closed();
      await closing;
      expect(await allMessages(h.store)).to.have.length(1);
    });

    it('streams a large message with bare LF line ends as CRLF, with the LIST size matching the octets sent', async () => {
      h = await startPop3();
      const body = Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? '.dot line ' : 'line ') + i).join('\n') + '\n';
      await h.deliver('Subject: big\n\n' + body);
      const c = await h.loginAlice();
      const [list] = await c.command('LIST 1', /^[+-]/);
      const size = Number(list.split(' ')[2]);
      const lines = await c.command('RETR 1', /^\.$/);
      expect(lines[0]).to.equal(`+OK ${size} octets`);
      const unstuffed = lines.slice(1, -1).map((l) => (l.startsWith('.') ? l.slice(1) : l));
      expect(unstuffed.join('\r\n').length + 2).to.equal(size);
      expect(unstuffed[2]).to.equal('.dot line 0');
    });
  });
});
