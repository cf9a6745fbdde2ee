import { expect } from 'chai';
import { ALICE, startImap, type ImapHarness } from './imap-harness.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

const PLAIN_ALICE = Buffer.from(`\0${ALICE.username}\0${ALICE.password}`).toString('base64');

describe('IMAP session', () => {
  let h: ImapHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  describe('greeting, STARTTLS and login', () => {
    it('greets with STARTTLS and LOGINDISABLED and no AUTH= before TLS', async () => {
      h = await startImap();
      const c = await h.connect();
      const [greeting] = await c.expect(/^\* OK /);
      expect(greeting).to.match(/^\* OK \[CAPABILITY IMAP4rev1 [^\]]*\] Postern IMAP ready$/);
      expect(greeting).to.contain(' STARTTLS').and.to.contain(' LOGINDISABLED').and.not.to.contain('AUTH=');
      const caps = await c.command('a CAPABILITY', /^a /);
      expect(caps[0]).to.match(/^\* CAPABILITY .*STARTTLS.*LOGINDISABLED/);
      expect(caps[1]).to.equal('a OK CAPABILITY completed');
    });

    it('refuses LOGIN and AUTHENTICATE before TLS with NO [PRIVACYREQUIRED]', async () => {
      h = await startImap();
      const c = await h.connect();
      await c.expect(/^\* OK/);
      expect(await c.command(`a LOGIN alice "${ALICE.password}"`, /^a /)).to.deep.equal(['a NO [PRIVACYREQUIRED] TLS required: use STARTTLS first']);
      expect((await c.command(`b AUTHENTICATE PLAIN ${PLAIN_ALICE}`, /^b /))[0]).to.match(/^b NO \[PRIVACYREQUIRED\]/);
      expect((await c.command('c SELECT INBOX', /^c /))[0]).to.equal('c BAD Not authenticated');
    });

    it('upgrades with STARTTLS; CAPABILITY then lists AUTH=PLAIN and no STARTTLS, and LOGIN works', async () => {
      h = await startImap();
      const c = await h.connect();
      await c.expect(/^\* OK/);
      expect(await c.command('a STARTTLS', /^a /)).to.deep.equal(['a OK Begin TLS negotiation now']);
      await c.startTls(h.trust());
      const caps = await c.command('b CAPABILITY', /^b /);
      expect(caps[0]).to.contain('AUTH=PLAIN').and.to.contain('SASL-IR').and.not.to.contain('STARTTLS').and.not.to.contain('LOGINDISABLED');
      const login = await c.command(`c LOGIN alice "${ALICE.password}"`, /^c /);
      expect(login[0]).to.match(/^c OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
      expect((await c.command('d STARTTLS', /^d /))[0]).to.match(/^d BAD/);
    });

    it('never runs commands pipelined after STARTTLS in plaintext', async () => {
      h = await startImap();
      const c = await h.connect();
      await c.expect(/^\* OK/);
      // The injected command would log in: run in plaintext or after the upgrade, it would show.
      c.send(`a STARTTLS\r\nb LOGIN alice "${ALICE.password}"\r\n`);
      expect(await c.expect(/^a /)).to.deep.equal(['a OK Begin TLS negotiation now']);
      await c.startTls(h.trust());
      expect(await c.command('c SELECT INBOX', /^c /)).to.deep.equal(['c BAD Not authenticated']); // first reply over TLS is ours
      expect(c.pending).to.equal(''); // no plaintext reply to b arrived either
    });

    it('serves implicit TLS with AUTHENTICATE PLAIN (SASL-IR and continuation) and * to cancel', async () => {
      h = await startImap();
      const c = await h.connectTls();
      const [greeting] = await c.expect(/^\* OK/);
      expect(greeting).to.contain('AUTH=PLAIN').and.not.to.contain('STARTTLS');
      c.line('a AUTHENTICATE PLAIN');
      expect(await c.readLine()).to.equal('+ ');
      expect(await c.command('*', /^a /)).to.deep.equal(['a BAD Authentication cancelled']);
      c.line('b AUTHENTICATE PLAIN');
      expect(await c.readLine()).to.equal('+ ');
      expect((await c.command(PLAIN_ALICE, /^b /))[0]).to.match(/^b OK \[CAPABILITY /);
      expect((await c.command(`c AUTHENTICATE PLAIN ${PLAIN_ALICE}`, /^c /))[0]).to.equal('c BAD Already authenticated');

      const d = await h.connectTls();
      await d.expect(/^\* OK/);
      expect((await d.command(`a AUTHENTICATE PLAIN ${PLAIN_ALICE}`, /^a /))[0]).to.match(/^a OK \[CAPABILITY /);
    });

    it('answers a wrong password NO [AUTHENTICATIONFAILED] and closes after the third', async () => {
      h = await startImap();
      const c = await h.connectTls();
      await c.expect(/^\* OK/);
      expect(await c.command('a LOGIN alice wrong', /^a /)).to.deep.equal(['a NO [AUTHENTICATIONFAILED] Authentication failed']);
      await c.command('b LOGIN alice wrong', /^b /);
      expect(await c.command('c LOGIN alice wrong', /^\* BYE/)).to.deep.equal(['c NO [AUTHENTICATIONFAILED] Authentication failed', '* BYE Too many failed logins']);
      await c.closed();
    });

    it('allows LOGIN in plaintext with allowInsecureAuth, without LOGINDISABLED', async () => {
      h = await startImap({}, { allowInsecureAuth: true });
      const c = await h.connect();
      const [greeting] = await c.expect(/^\* OK/);
      expect(greeting).to.contain('STARTTLS').and.to.contain('AUTH=PLAIN').and.not.to.contain('LOGINDISABLED');
      expect((await c.command(`a LOGIN alice "${ALICE.password}"`, /^a /))[0]).to.match(/^a OK/);
    });

    it('says BYE on LOGOUT and closes', async () => {
      h = await startImap();
      const c = await h.loginAlice();
      expect(await c.command('z LOGOUT', /^z /)).to.deep.equal(['* BYE Postern IMAP logging out', 'z OK LOGOUT completed']);
      await c.closed();
    });

    it('answers ID, NAMESPACE and ENABLE', async () => {
      h = await startImap();
      const c = await h.loginAlice();
      expect((await c.command('a ID ("name" "spec" "version" "1")', /^a /))[0]).to.match(/^\* ID \("name" "Postern"/);
      expect(await c.command('b NAMESPACE', /^b /)).to.deep.equal(['* NAMESPACE (("" "/")) NIL NIL', 'b OK NAMESPACE completed']);
      expect(await c.command('c ENABLE CONDSTORE X-NONE', /^c /)).to.deep.equal(['* ENABLED CONDSTORE', 'c OK ENABLE completed']);
    });
  });

  describe('literals', () => {
    it('reads synchronizing literals after "+ Ready for literal data"', async () => {
      h = await startImap();
      const c = await h.connectTls();
      await c.expect(/^\* OK/);
      c.line('a LOGIN {5}');
      expect(await c.readLine()).to.equal('+ Ready for literal data');
      c.line(`alice {${ALICE.password.length}}`);
      expect(await c.readLine()).to.equal('+ Ready for literal data');
      c.line(ALICE.password);
      expect((await c.expect(/^a /))[0]).to.match(/^a OK/);
    });

    it('reads LITERAL+ non-synchronizing literals without a continuation', async () => {
      h = await startImap();
      const c = await h.connectTls();
      await c.expect(/^\* OK/);
      c.send(`a LOGIN {5+}\r\nalice {${ALICE.password.length}+}\r\n${ALICE.password}\r\n`);
      expect((await c.expect(/^a /))[0]).to.match(/^a OK \[CAPABILITY/);
    });

    it('refuses an APPEND literal over the limit before "+", and the session goes on', async () => {
      h = await startImap({ maxLiteralSize: 100 });
      const c = await h.loginAlice();
      expect(await c.command('a APPEND INBOX {101}', /^a /)).to.deep.equal(['a NO [TOOBIG] Message too big']);
      expect(await c.command('b NOOP', /^b /)).to.deep.equal(['b OK NOOP completed']);
      // A literal in any other command is capped at the line length.
      expect(await c.command(`c SELECT {${70_000}}`, /^c /)).to.deep.equal(['c BAD [TOOBIG] Literal too big']);
    });

    it('answers a too-big non-synchronizing literal and closes with BYE', async () => {
      h = await startImap({ maxLiteralSize: 100 });
      const c = await h.loginAlice();
      c.line('a APPEND INBOX {500+}');
      expect(await c.expect(/^\* BYE/)).to.deep.equal(['a NO [TOOBIG] Message too big', '* BYE Refused literal cannot be skipped, closing']);
      await c.closed();
    });

    it('refuses literals of commands that would be refused anyway before "+" (LOGIN in plaintext, unknown, wrong state)', async () => {
      h = await startImap();
      const c = await h.connect();
      await c.expect(/^\* OK/);
      expect(await c.command('a LOGIN {5}', /^a /)).to.deep.equal(['a NO [PRIVACYREQUIRED] TLS required: use STARTTLS first']);
      expect(await c.command('b FROB {5}', /^b /)).to.deep.equal(['b BAD Unknown command']);
      expect(await c.command('c SELECT {5}', /^c /)).to.deep.equal(['c BAD Not authenticated']);
      expect(await c.command('d NOOP', /^d /)).to.deep.equal(['d OK NOOP completed']);
    });

    it('refuses an APPEND into a missing mailbox with NO [TRYCREATE] before "+"', async () => {
      h = await startImap();
      const c = await h.loginAlice();
      expect(await c.command('a APPEND Nowhere {10}', /^a /)).to.deep.equal(['a NO [TRYCREATE] Mailbox does not exist']);
    });

    it('appends with flags and a date, answering APPENDUID', async () => {
      h = await startImap();
      const c = await h.loginAlice();
      const msg = 'Subject: hi\r\n\r\nbody\r\n';
      c.line(`a APPEND INBOX (\\Seen $Label) " 7-Feb-1994 21:52:25 -0800" {${msg.length}}`);
      expect(await c.readLine()).to.equal('+ Ready for literal data');
      c.line(msg);
      const [ok] = await c.expect(/^a /);
      expect(ok).to.match(/^a OK \[APPENDUID \d+ 1\] APPEND completed$/);
      await c.command('b SELECT INBOX', /^b OK/);
      expect(await c.command('c FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)', /^c /)).to.deep.equal([
        `* 1 FETCH (FLAGS (\\Seen $Label \\Recent) INTERNALDATE " 8-Feb-1994 05:52:25 +0000" RFC822.SIZE ${msg.length})`,
        'c OK FETCH completed',
      ]);
    });
  });

  describe('bad input', () => {
    it('answers BAD with the tag, or * BAD when no tag can be read', async () => {
      h = await startImap();
      const c = await h.loginAlice();
      expect(await c.command('a FROBNICATE', /^a /)).to.deep.equal(['a BAD Unknown command']);
      expect(await c.command('+oops NOOP', /^\* /)).to.deep.equal(['* BAD Invalid tag']);
      expect((await c.command('b STATUS INBOX (MESSAGES', /^b /))[0]).to.match(/^b BAD /);
      expect((await c.command('c LIST "" "*" )', /^c /))[0]).to.match(/^c BAD /);
      expect(await c.command('d FETCH 1 FLAGS', /^d /)).to.deep.equal(['d BAD No mailbox selected']);
      expect(await c.command('e SELECT Nowhere', /^e /)).to.deep.equal(['e NO [NONEXISTENT] Mailbox does not exist']);
      expect(await c.command('f NOOP extra', /^f /)).to.deep.equal(['f BAD no arguments allowed']);
      expect(await c.command('g LOGIN a b', /^g /)).to.deep.equal(['g BAD Already authenticated']);
      await c.command('h SELECT INBOX', /^h OK/);
      expect(await c.command('i FETCH 0:2 FLAGS', /^i /)).to.deep.equal(['i BAD Invalid sequence set']);
      expect(await c.command('j FETCH 1,,2 FLAGS', /^j /)).to.deep.equal(['j BAD Invalid sequence set']);
      expect(await c.command('k FETCH 1 (FLAGS', /^k /)).to.deep.equal(['k BAD Unbalanced parentheses']);
      expect(await c.command('l CREATE INBOX', /^l /)).to.deep.equal(['l NO [ALREADYEXISTS] INBOX always exists']);
    });

    it('says BYE when the error budget is spent', async () => {
      h = await startImap({ maxBadCommands: 3 });
      const c = await h.connectTls();
      await c.expect(/^\* OK/);
      c.send('a X\r\nb Y\r\nc Z\r\n');
      expect(await c.expect(/^\* BYE/)).to.deep.equal(['a BAD Unknown command', 'b BAD Unknown command', 'c BAD Unknown command', '* BYE Too many errors']);
      await c.closed();
    });

    it('says BYE to a client trickling a command line that never ends (slowloris)', async () => {
      h = await startImap({ idleTimeoutMs: 200 });
      const c = await h.connect();
      await c.expect(/^\* OK/);
      const drip = setInterval(() => c.isClosed || c.send('a'), 20);
      try {
        expect(await c.readLine()).to.equal('* BYE Autologout; idle for too long');
        await c.closed();
      } finally {
        clearInterval(drip);
      }
    });

    it('says BYE to a client trickling an APPEND literal, and appends nothing', async () => {
      h = await startImap({ bodyTimeoutMs: 200 });
      const c = await h.loginAlice();
      c.line('a APPEND INBOX {100000}');
      expect(await c.readLine()).to.match(/^\+ /);
      const drip = setInterval(() => c.isClosed || c.send('x'), 20); // every byte restarts the idle timer
      try {
        expect(await c.expect(/^\* BYE/)).to.deep.equal(['* BYE Autologout; idle for too long']);
        await c.closed();
      } finally {
        clearInterval(drip);
      }
      expect(await allMessages(h.store)).to.deep.equal([]);
    });

    it('ends an endless stream of garbage with a disconnect', async () => {
      h = await startImap({ maxLineLength: 1024 });
      const c = await h.connect();
      await c.expect(/^\* OK/);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      for (let i = 0; i < 40 && !c.isClosed; i++) {
        c.send(chunk);
        await new Promise((r) => setImmediate(r));
      }
      await c.expect(/^\* BYE Line too long/);
      await c.closed();
    });

    it('logs out an idle client with BYE', async () => {
      h = await startImap({ idleTimeoutMs: 50 });
      const c = await h.connect();
      await c.expect(/^\* OK/);
      expect(await c.expect(/^\* BYE/)).to.deep.equal(['* BYE Autologout; idle for too long']);
      await c.closed();
    });

    it('says BYE to connected clients when the server shuts down', async () => {
      h = await startImap();
      const c = await h.loginAlice();
      const closing = Promise.all(h.listeners.map((l) => l.close()));
      expect(await c.expect(/^\* BYE/)).to.deep.equal(['* BYE Server shutting down']);
      await c.closed();
      await closing;
    });
  });
});
