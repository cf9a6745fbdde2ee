import { expect } from 'chai';
import { createHash, createHmac } from 'node:crypto';
import type { Container } from 'inversify';
import { Pop3Hooks, type Pop3LoginInfo } from '../../lib/pop3/pop3-hooks.js';
import { Pop3Error } from '../../lib/pop3/pop3-replies.js';
import { ALICE, message, startPop3, type Pop3Harness } from './pop3-harness.js';
import { python } from '../support/python.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** Starts POP3 with `hooks` bound (in order) and bob as a second user. */
async function startWith(...hooks: Pop3Hooks[]): Promise<Pop3Harness> {
  const h = await startPop3({}, {}, undefined, (ct: Container) => {
    for (const x of hooks) ct.bind(Pop3Hooks).toConstantValue(x);
  });
  await h.store.users.add({ username: 'bob', password: 'bob pw', addresses: ['bob@example.com'] });
  await h.deliver(message('one'));
  return h;
}

describe('pop3: Pop3Hooks', function () {
  this.timeout(20_000);
  let h: Pop3Harness;
  afterEach(async () => {
    await h?.close();
  });

  const logins: Pop3LoginInfo[] = [];
  const locked: Pop3Hooks = {
    async onLogin(info) {
      logins.push(info);
      if (info.username === 'alice') throw new Pop3Error('AUTH', 'account locked');
    },
  };
  beforeEach(() => void logins.splice(0));

  it('onLogin refuses USER/PASS, APOP, AUTH PLAIN, AUTH LOGIN and CRAM-MD5 after the Authenticator accepted; AUTHORIZATION stays', async () => {
    h = await startWith(locked);
    const c = await h.connectTls();
    const [greeting] = await c.expect(/^\+OK /);
    const timestamp = /<[^>]+>/.exec(greeting)![0];
    await c.command('USER alice', /^\+OK/);
    expect(await c.command(`PASS ${ALICE.password}`, /^-ERR/)).to.deep.equal(['-ERR [AUTH] account locked']);
    const digest = createHash('md5').update(timestamp + ALICE.password).digest('hex');
    expect(await c.command(`APOP alice ${digest}`, /^-ERR/)).to.deep.equal(['-ERR [AUTH] account locked']);
    expect(await c.command(`AUTH PLAIN ${b64(`\0alice\0${ALICE.password}`)}`, /^-ERR/)).to.deep.equal(['-ERR [AUTH] account locked']);
    c.send('AUTH LOGIN\r\n');
    await c.expect(/^\+ /);
    c.send(b64('alice') + '\r\n');
    await c.expect(/^\+ /);
    c.send(b64(ALICE.password) + '\r\n');
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR [AUTH] account locked']);
    c.send('AUTH CRAM-MD5\r\n');
    const [challenge] = await c.expect(/^\+ /);
    const text = Buffer.from(challenge.slice(2), 'base64').toString();
    c.send(b64(`alice ${createHmac('md5', ALICE.password).update(text).digest('hex')}`) + '\r\n');
    expect(await c.expect(/^-ERR/)).to.deep.equal(['-ERR [AUTH] account locked']);
    expect(await c.command('STAT', /^-ERR/)).to.deep.equal(['-ERR command not valid in this state']);
    // Not counted as failed logins (the third failure would close the session); bob passes the hook.
    await c.command('USER bob', /^\+OK/);
    expect(await c.command('PASS bob pw', /^[+-]/)).to.deep.equal(['+OK maildrop locked and ready, 0 messages (0 octets)']);
    expect(logins.map((l) => l.mechanism)).to.deep.equal(['USER', 'APOP', 'PLAIN', 'LOGIN', 'CRAM-MD5', 'USER']);
    // The refused logins never locked alice's maildrop.
    await h.lockReleased('alice');
  });

  it('onMaildrop refuses opening the maildrop with its own reply; nothing is locked', async () => {
    const opened: string[] = [];
    h = await startWith({
      async onMaildrop(access) {
        opened.push(`${access.username} ${access.mailbox}`);
        if (access.username === 'alice') throw new Pop3Error('SYS/PERM', 'POP3 access disabled for this mailbox');
      },
    });
    const c = await h.connectTls();
    await c.expect(/^\+OK /);
    await c.command('USER alice', /^\+OK/);
    expect(await c.command(`PASS ${ALICE.password}`, /^-ERR/)).to.deep.equal(['-ERR [SYS/PERM] POP3 access disabled for this mailbox']);
    await h.lockReleased('alice');
    expect(opened).to.deep.equal(['alice INBOX']);
  });

  it("Python poplib: user/pass and apop see the hook's reply; a hook bug is -ERR [SYS/TEMP] with its text off the wire", async function () {
    h = await startWith(locked, {
      async onLogin(info) {
        if (info.username === 'bob') throw new Error('secret internals');
      },
    });
    const out = await python(
      `
import poplib, ssl, sys
ctx = ssl.create_default_context(cadata=sys.argv[2])
def attempt(login):
    p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx)
    try:
        login(p)
        print('ok')
    except poplib.error_proto as e:
        print(e.args[0].decode())
    p.quit()
attempt(lambda p: (p.user('alice'), p.pass_(sys.argv[3])))
attempt(lambda p: p.apop('alice', sys.argv[3]))
attempt(lambda p: (p.user('bob'), p.pass_('bob pw')))
`,
      [String(h.securePort), h.certs.ca.cert, ALICE.password],
    );
    if (out === undefined) return this.skip();
    expect(out.trim().split('\n')).to.deep.equal(['-ERR [AUTH] account locked', '-ERR [AUTH] account locked', '-ERR [SYS/TEMP] internal server error']);
  });

  it('onConnect refuses instead of the greeting; onSecure after STLS refuses over TLS and closes', async () => {
    h = await startWith({
      async onConnect(peer) {
        if (peer.protocol === 'pop3s') throw new Pop3Error('SYS/TEMP', 'maintenance');
      },
      async onSecure() {
        throw new Pop3Error('AUTH', 'client certificate required');
      },
    });
    const c = await h.connectTls();
    expect(await c.readLine()).to.equal('-ERR [SYS/TEMP] maintenance');
    await c.closed();
    const d = await h.connect();
    await d.expect(/^\+OK /);
    await d.command('STLS', /^\+OK/);
    await d.startTls(h.trust());
    expect(await d.readLine()).to.equal('-ERR [AUTH] client certificate required');
    await d.closed();
  });
});
