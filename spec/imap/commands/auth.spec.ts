import { expect } from 'chai';
import { imapCapabilities } from '../../../lib/imap/imap-capabilities.js';
import { ALICE, startImap, type ImapHarness } from '../imap-harness.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
/** draft-murchison-sasl-login challenges: "Username:" and "Password:". */
const USERNAME_CHALLENGE = '+ VXNlcm5hbWU6';
const PASSWORD_CHALLENGE = '+ UGFzc3dvcmQ6';

describe('IMAP AUTHENTICATE LOGIN', () => {
  let h: ImapHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('advertises AUTH=LOGIN next to AUTH=PLAIN, and neither before TLS', () => {
    const base = { state: 'not-authenticated', allowInsecureAuth: false, maxLiteralSize: 1000 } as const;
    expect(imapCapabilities({ ...base, isSecure: true })).to.include.members(['AUTH=PLAIN', 'AUTH=LOGIN']);
    expect(imapCapabilities({ ...base, isSecure: false }).some((c) => c.startsWith('AUTH='))).to.equal(false);
  });

  it('asks Username: and Password: and logs in', async () => {
    h = await startImap();
    const c = await h.connectTls();
    const [greeting] = await c.expect(/^\* OK/);
    expect(greeting).to.contain(' AUTH=LOGIN');
    c.line('a AUTHENTICATE LOGIN');
    expect(await c.readLine()).to.equal(USERNAME_CHALLENGE);
    c.line(b64(ALICE.username));
    expect(await c.readLine()).to.equal(PASSWORD_CHALLENGE);
    expect((await c.command(b64(ALICE.password), /^a /))[0]).to.match(/^a OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
  });

  it('takes the user name as a SASL-IR initial response (RFC 4959) and asks only for the password', async () => {
    h = await startImap();
    const c = await h.connectTls();
    await c.expect(/^\* OK/);
    c.line(`a AUTHENTICATE LOGIN ${b64(ALICE.username)}`);
    expect(await c.readLine()).to.equal(PASSWORD_CHALLENGE);
    expect((await c.command(b64(ALICE.password), /^a /))[0]).to.match(/^a OK \[CAPABILITY /);
  });

  it('refuses a wrong password with NO [AUTHENTICATIONFAILED], a cancel with BAD, and bad base64 with BAD', async () => {
    h = await startImap();
    const c = await h.connectTls();
    await c.expect(/^\* OK/);
    c.line('a AUTHENTICATE LOGIN');
    await c.readLine();
    c.line(b64(ALICE.username));
    await c.readLine();
    expect(await c.command(b64('wrong'), /^a /)).to.deep.equal(['a NO [AUTHENTICATIONFAILED] Authentication failed']);
    c.line('b AUTHENTICATE LOGIN');
    await c.readLine();
    expect(await c.command('*', /^b /)).to.deep.equal(['b BAD Authentication cancelled']);
    c.line('c AUTHENTICATE LOGIN');
    await c.readLine();
    expect((await c.command('!!!', /^c /))[0]).to.match(/^c BAD /);
  });
});
