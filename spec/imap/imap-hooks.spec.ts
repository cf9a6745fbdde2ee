import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { ImapFlow } from 'imapflow';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { ImapHooks, type ImapLoginInfo, type ImapMailboxAccess } from '../../lib/imap/imap-hooks.js';
import { ImapError } from '../../lib/imap/imap-replies.js';
import { ALICE, message, startImap, type ImapHarness } from './imap-harness.js';
import { python } from '../support/python.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** Starts IMAP with `hooks` bound (in order) and bob as a second user. */
async function startWith(...hooks: ImapHooks[]): Promise<ImapHarness> {
  const bind = new ContainerModule(({ bind }) => {
    for (const h of hooks) bind(ImapHooks).toConstantValue(h);
  });
  const h = await startImap({}, {}, [memoryModule, imapModule, bind]);
  await h.store.users.add({ username: 'bob', password: 'bob pw', addresses: ['bob@example.com'] });
  return h;
}

describe('imap: ImapHooks', function () {
  this.timeout(20_000);
  let h: ImapHarness;
  afterEach(async () => {
    await h?.close();
  });

  describe('onLogin', () => {
    const logins: ImapLoginInfo[] = [];
    const locked: ImapHooks = {
      async onLogin(info) {
        logins.push(info);
        if (info.username === 'alice') throw new ImapError('NO', 'AUTHENTICATIONFAILED', 'Account locked');
      },
    };
    beforeEach(() => void logins.splice(0));

    it('refuses LOGIN, AUTHENTICATE PLAIN (SASL-IR) and AUTHENTICATE LOGIN after the Authenticator accepted; the session stays not authenticated', async () => {
      h = await startWith(locked);
      const c = await h.connectTls();
      await c.expect(/^\* OK /);
      expect(await c.command(`a LOGIN alice "${ALICE.password}"`, /^a /)).to.deep.equal(['a NO [AUTHENTICATIONFAILED] Account locked']);
      expect(await c.command(`b AUTHENTICATE PLAIN ${b64(`\0alice\0${ALICE.password}`)}`, /^b /)).to.deep.equal(['b NO [AUTHENTICATIONFAILED] Account locked']);
      c.send('c AUTHENTICATE LOGIN\r\n');
      await c.expect(/^\+ /);
      c.send(b64('alice') + '\r\n');
      await c.expect(/^\+ /);
      c.send(b64(ALICE.password) + '\r\n');
      expect(await c.expect(/^c /)).to.deep.equal(['c NO [AUTHENTICATIONFAILED] Account locked']);
      expect((await c.command('d SELECT INBOX', /^d /)).at(-1)).to.match(/^d BAD /);
      // Wrong credentials never reach the hook; bob passes it.
      expect(await c.command('e LOGIN alice wrong', /^e /)).to.deep.equal(['e NO [AUTHENTICATIONFAILED] Authentication failed']);
      expect((await c.command('f LOGIN bob "bob pw"', /^f /)).at(-1)).to.match(/^f OK \[CAPABILITY /);
      expect(logins.map((l) => [l.username, l.mechanism])).to.deep.equal([
        ['alice', 'IMAP-LOGIN'],
        ['alice', 'PLAIN'],
        ['alice', 'LOGIN'],
        ['bob', 'IMAP-LOGIN'],
      ]);
      expect(logins[0].peer.security.tls).to.equal(true);
    });

    it("Python imaplib sees the hook's refusal text; a hook bug is NO [SERVERBUG] with its text kept off the wire", async function () {
      h = await startWith(locked, {
        async onLogin(info) {
          if (info.username === 'bob') throw new Error('database password is hunter2');
        },
      });
      const out = await python(
        `
import imaplib, ssl, sys
ctx = ssl.create_default_context(cadata=sys.argv[2])
for user, pw in (('alice', sys.argv[3]), ('bob', 'bob pw')):
    c = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
    try:
        c.login(user, pw)
        print('ok')
    except imaplib.IMAP4.error as e:
        print(e)
    print(c.state)
    c.logout()
`,
        [String(h.securePort), h.certs.ca.cert, ALICE.password],
      );
      if (out === undefined) return this.skip();
      expect(out.trim().split('\n')).to.deep.equal(["b'[AUTHENTICATIONFAILED] Account locked'", 'NONAUTH', "b'[SERVERBUG] Internal server error'", 'NONAUTH']);
    });
  });

  describe('onConnect and onSecure', () => {
    it('onConnect: a refusal is * BYE instead of the greeting; a bug is * BYE [UNAVAILABLE]', async () => {
      let bug = false;
      h = await startWith({
        async onConnect(peer: PeerInfo) {
          if (bug) throw new Error('oops');
          if (peer.remoteAddress.includes('127.0.0.1')) throw new ImapError('NO', 'UNAVAILABLE', 'Not from here');
        },
      });
      const c = await h.connect();
      expect(await c.readLine()).to.equal('* BYE [UNAVAILABLE] Not from here');
      await c.closed();
      bug = true;
      const d = await h.connectTls();
      expect(await d.readLine()).to.equal('* BYE [UNAVAILABLE] Service not available');
      await d.closed();
    });

    it('onSecure: runs after STARTTLS and before the implicit-TLS greeting; a refusal is * BYE over TLS', async () => {
      const seen: Array<string | undefined> = [];
      h = await startWith({
        async onSecure(peer) {
          seen.push(peer.security.protocol);
          throw new ImapError('NO', undefined, 'No client certificate');
        },
      });
      const c = await h.connect();
      await c.expect(/^\* OK /);
      expect(await c.command('s STARTTLS', /^s /)).to.deep.equal(['s OK Begin TLS negotiation now']);
      await c.startTls(h.trust());
      expect(await c.readLine()).to.equal('* BYE No client certificate');
      await c.closed();
      const d = await h.connectTls();
      expect(await d.readLine()).to.equal('* BYE No client certificate');
      await d.closed();
      expect(seen).to.deep.equal(['TLSv1.3', 'TLSv1.3']);
    });
  });

  describe('onMailbox', () => {
    const asked: string[] = [];
    const policy: ImapHooks = {
      async onMailbox(a: ImapMailboxAccess) {
        asked.push(`${a.access} ${a.mailbox}`);
        if (a.mailbox.startsWith('Secret')) throw new ImapError('NO', 'NOPERM', `No ${a.access} access to ${a.mailbox}`);
      },
    };
    beforeEach(async () => {
      asked.splice(0);
      h = await startWith(policy);
      await h.deliver(message('one'));
      const view = await h.store.openUser('alice');
      await view.create('Secret');
      await view.create('Open');
      await view.release();
    });

    it('SELECT, EXAMINE and STATUS: the refusal is the tagged reply; a refused SELECT leaves nothing selected', async () => {
      const c = await h.loginAlice();
      expect((await c.command('a SELECT inbox', /^a /)).at(-1)).to.match(/^a OK \[READ-WRITE\]/);
      expect(await c.command('b SELECT Secret', /^b /)).to.deep.equal(['* OK [CLOSED] Previous mailbox closed', 'b NO [NOPERM] No select access to Secret']);
      expect((await c.command('c FETCH 1 FLAGS', /^c /)).at(-1)).to.match(/^c BAD /);
      expect(await c.command('d EXAMINE Secret', /^d /)).to.deep.equal(['d NO [NOPERM] No examine access to Secret']);
      expect(await c.command('e STATUS Secret (MESSAGES)', /^e /)).to.deep.equal(['e NO [NOPERM] No status access to Secret']);
      expect(await c.command('f STATUS Open (MESSAGES)', /^f /)).to.deep.equal(['* STATUS "Open" (MESSAGES 0)', 'f OK STATUS completed']);
      // The hook runs before the store: a missing mailbox the policy refuses says NOPERM, not NONEXISTENT.
      expect(await c.command('g SELECT Secret/None', /^g /)).to.deep.equal(['g NO [NOPERM] No select access to Secret/None']);
      expect(asked).to.deep.equal(['select INBOX', 'select Secret', 'examine Secret', 'status Secret', 'status Open', 'select Secret/None']);
    });

    it('APPEND with a synchronizing literal is refused before the + continuation; LITERAL+ after it', async () => {
      const c = await h.loginAlice();
      c.send('a APPEND Secret {5}\r\n');
      expect(await c.readLine()).to.equal('a NO [NOPERM] No append access to Secret');
      c.send('b APPEND Secret {5+}\r\nhello\r\n');
      expect(await c.readLine()).to.equal('b NO [NOPERM] No append access to Secret');
      c.send('c APPEND Open {5}\r\n');
      await c.expect(/^\+ /);
      c.send('hello\r\n');
      expect((await c.expect(/^c /)).at(-1)).to.match(/^c OK \[APPENDUID /);
      // Asked once per APPEND, also when checked before the literal.
      expect(asked).to.deep.equal(['append Secret', 'append Secret', 'append Open']);
      const view = await h.store.openUser('alice');
      expect((await view.info('Secret')).messages).to.equal(0);
      await view.release();
    });

    it('COPY and MOVE targets; LIST RETURN (STATUS) omits a refused mailbox', async () => {
      const c = await h.loginAlice();
      await c.command('a SELECT INBOX', /^a /);
      expect(await c.command('b COPY 1 Secret', /^b /)).to.deep.equal(['b NO [NOPERM] No copy access to Secret']);
      expect(await c.command('c MOVE 1 Secret', /^c /)).to.deep.equal(['c NO [NOPERM] No move access to Secret']);
      expect((await c.command('d COPY 1 Open', /^d /)).at(-1)).to.match(/^d OK \[COPYUID /);
      const list = await c.command('e LIST "" "*" RETURN (STATUS (MESSAGES))', /^e /);
      expect(list.filter((l) => l.startsWith('* STATUS'))).to.deep.equal(['* STATUS "INBOX" (MESSAGES 1)', '* STATUS "Open" (MESSAGES 1)']);
      expect(list.some((l) => l.startsWith('* LIST') && l.endsWith(' "Secret"'))).to.equal(true);
    });

    it('NOTIFY: a refused mailbox gets no * STATUS, neither at NOTIFY SET STATUS nor on its events', async () => {
      const c = await h.loginAlice();
      const first = await c.command('n NOTIFY SET STATUS (MAILBOXES (Secret Open) (MessageNew))', /^n /);
      expect(first).to.have.length(2);
      expect(first[0]).to.match(/^\* STATUS "Open" /);
      const view = await h.store.openUser('alice');
      try {
        await view.append('Secret', Buffer.from(message('hidden')));
        await view.append('Open', Buffer.from(message('shown')));
      } finally {
        await view.release();
      }
      // Were Secret's event reported, its STATUS would come first.
      expect(await c.readLine()).to.match(/^\* STATUS "Open" \(MESSAGES 1 /);
      expect(asked.filter((a) => a.startsWith('status '))).to.deep.equal(['status Secret', 'status Open', 'status Secret', 'status Open']);
    });

    it('imapflow: opening a refused mailbox fails with the server text, others work', async () => {
      const client = new ImapFlow({ host: '127.0.0.1', port: h.securePort, secure: true, tls: h.trust(), auth: { user: 'alice', pass: ALICE.password }, logger: false });
      await client.connect();
      try {
        const err = (await client.mailboxOpen('Secret').catch((e: unknown) => e)) as { responseText?: string; serverResponseCode?: string };
        expect(err.serverResponseCode).to.equal('NOPERM');
        expect(err.responseText).to.equal('No select access to Secret');
        expect((await client.mailboxOpen('INBOX')).exists).to.equal(1);
      } finally {
        await client.logout();
      }
    });
  });
});
