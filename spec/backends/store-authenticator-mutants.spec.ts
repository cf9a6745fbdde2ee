import { expect } from 'chai';
import { MailStoreError } from '../../lib/contracts/mail-store.js';
import { ensureStoreUser, StoreAuthenticator } from '../../lib/backends/store-authenticator.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import type { AuthRequest } from '../../lib/contracts/authenticator.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const peer = { id: 'c1', protocol: 'imap', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security: { tls: true, policyErrors: SslPolicyErrors.None } };
const req = (r: Partial<AuthRequest>): AuthRequest => ({ protocol: 'imap', mechanism: 'PLAIN', username: 'alice', peer, ...r });
const REFUSED = { ok: false, reason: 'invalid-credentials' };

// Written against the mutants StrykerJS left alive in store-authenticator.ts (README, "Scores (Stryker").
describe('backends: StoreAuthenticator and ensureStoreUser, every outcome exactly', () => {
  async function setup(authDisabled = false): Promise<{ auth: StoreAuthenticator; store: MemoryMailStore }> {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'secret', addresses: ['alice@example.test'] });
    return { auth: new StoreAuthenticator(store, { authDisabled }), store };
  }

  it('refuses with invalid-credentials: an unknown user, a foreign authzid, an empty password, no credentials at all', async () => {
    const { auth } = await setup();
    expect(await auth.authenticate(req({ username: 'mallory', password: 'secret' }))).to.deep.equal(REFUSED);
    expect(await auth.authenticate(req({ password: 'secret', authzid: 'bob' }))).to.deep.equal(REFUSED);
    expect(await auth.authenticate(req({ password: '' }))).to.deep.equal(REFUSED);
    expect(await auth.authenticate(req({}))).to.deep.equal(REFUSED);
    // An authzid equal to the login is no other identity.
    expect(await auth.authenticate(req({ password: 'secret', authzid: 'alice' }))).to.deep.equal({ ok: true, username: 'alice' });
  });

  it('lets EXTERNAL in for a user the store knows (by name or address), and only for one', async () => {
    const { auth } = await setup();
    expect(await auth.authenticate(req({ mechanism: 'EXTERNAL', external: { certificateLogin: 'alice@example.test', fingerprint256: 'AA' }, username: 'alice@example.test' }))).to.deep.equal({ ok: true, username: 'alice' });
    expect(await auth.authenticate(req({ mechanism: 'EXTERNAL', external: { certificateLogin: 'mallory', fingerprint256: 'AA' }, username: 'mallory' }))).to.deep.equal(REFUSED);
  });

  it('refuses challenge-response for an unknown user and for a user whose store keeps no plaintext secret', async () => {
    const { auth } = await setup();
    let asked = 0;
    const anything = (): boolean => {
      asked++;
      return true;
    };
    expect(await auth.authenticate(req({ mechanism: 'CRAM-MD5', username: 'mallory', verifyWithSecret: anything }))).to.deep.equal(REFUSED);
    const root = await mkdtemp(join(tmpdir(), 'postern-store-auth-'));
    try {
      const hashed = new MaildirMailStore({ root, fsync: false });
      await hashed.users.add({ username: 'alice', password: 'secret' });
      const onHashes = new StoreAuthenticator(hashed, {});
      expect(await onHashes.authenticate(req({ mechanism: 'CRAM-MD5', verifyWithSecret: anything }))).to.deep.equal(REFUSED);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    expect(asked).to.equal(0);
  });

  it('with authDisabled keeps an existing user under its own name and stores a new one with its password', async () => {
    const { auth, store } = await setup(true);
    expect(await auth.authenticate(req({ username: 'alice@example.test', password: 'anything' }))).to.deep.equal({ ok: true, username: 'alice' });
    expect(await store.users.list()).to.deep.equal(['alice']);
    expect(await auth.authenticate(req({ username: 'Bob', password: 'bob pw' }))).to.deep.equal({ ok: true, username: 'bob' });
    expect(await store.users.verify('bob', 'bob pw')).to.equal('bob');
    expect(await auth.authenticate(req({ mechanism: 'EXTERNAL', external: { certificateLogin: 'Carol', fingerprint256: 'AA' }, username: 'Carol' }))).to.deep.equal({ ok: true, username: 'carol' });
    expect(await store.users.secretFor('carol')).to.equal('');
  });

  it('ensureStoreUser: leaves a known user (by name or address) alone, adds a new login with its address, passes a refusal on', async () => {
    const { store } = await setup();
    await ensureStoreUser(store, 'alice');
    expect(await store.users.verify('alice', 'secret')).to.equal('alice');
    await ensureStoreUser(store, 'dave@example.test');
    expect(await store.users.findByAddress('dave@example.test')).to.equal('dave@example.test');
    const secret = await store.users.secretFor('dave@example.test');
    expect(secret).to.match(/^[A-Za-z0-9_-]{43}$/);
    // A login that is a known user's address is that user: nobody is added.
    const other = new MemoryMailStore();
    await other.users.add({ username: 'erin', password: 'pw', addresses: ['shared@example.test'] });
    await ensureStoreUser(other, 'Shared@Example.test');
    expect(await other.users.list()).to.deep.equal(['erin']);
    // A login without @ that cannot be added: the store's refusal is not swallowed.
    try {
      await ensureStoreUser(other, '');
      expect.fail('an empty username must be refused');
    } catch (err) {
      expect(err).to.be.instanceOf(MailStoreError);
      expect((err as MailStoreError).code).to.equal('CANNOT');
    }
  });
});
