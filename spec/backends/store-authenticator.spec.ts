import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { StoreAuthenticator } from '../../lib/backends/store-authenticator.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import type { AuthRequest } from '../../lib/contracts/authenticator.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const peer = { id: 'c1', protocol: 'imap', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security: { tls: true, policyErrors: SslPolicyErrors.None } };
const req = (r: Partial<AuthRequest>): AuthRequest => ({ protocol: 'imap', mechanism: 'PLAIN', username: 'alice', peer, ...r });

describe('backends: StoreAuthenticator', () => {
  async function setup(config: PosternConfig = {}): Promise<{ auth: StoreAuthenticator; store: MemoryMailStore }> {
    const store = new MemoryMailStore({ autoCreateUsers: config.authDisabled === true });
    await store.users.add({ username: 'alice', password: 'secret', addresses: ['alice@example.test'] });
    await store.users.add({ username: 'nopass', password: '' });
    return { auth: new StoreAuthenticator(store, config), store };
  }

  it('accepts the right password by username or address and gives the canonical name', async () => {
    const { auth } = await setup();
    expect(await auth.authenticate(req({ password: 'secret' }))).to.deep.equal({ ok: true, username: 'alice' });
    expect(await auth.authenticate(req({ username: 'alice@example.test', password: 'secret' }))).to.deep.equal({ ok: true, username: 'alice' });
  });

  it('refuses a wrong password, an unknown user, and a foreign authorization identity', async () => {
    const { auth } = await setup();
    expect(await auth.authenticate(req({ password: 'nope' }))).to.deep.equal({ ok: false, reason: 'invalid-credentials' });
    expect(await auth.authenticate(req({ username: 'mallory', password: 'secret' }))).to.deep.include({ ok: false });
    expect(await auth.authenticate(req({ password: 'secret', authzid: 'bob' }))).to.deep.include({ ok: false });
  });

  it('never accepts an empty password, even for a user stored with one', async () => {
    const { auth } = await setup();
    expect(await auth.authenticate(req({ username: 'nopass', password: '' }))).to.deep.include({ ok: false });
  });

  it('checks challenge-response mechanisms against the stored secret', async () => {
    const { auth } = await setup();
    const challenge = '<1.2@test>';
    const good = createHmac('md5', 'secret').update(challenge).digest('hex');
    const verify = (digest: string) => (secret: string) => createHmac('md5', secret).update(challenge).digest('hex') === digest;
    expect(await auth.authenticate(req({ mechanism: 'CRAM-MD5', verifyWithSecret: verify(good) }))).to.deep.equal({ ok: true, username: 'alice' });
    expect(await auth.authenticate(req({ mechanism: 'CRAM-MD5', verifyWithSecret: verify('0'.repeat(32)) }))).to.deep.include({ ok: false });
  });

  it('lets any login in and creates the user when auth is disabled', async () => {
    const { auth, store } = await setup({ authDisabled: true });
    expect(await auth.authenticate(req({ username: 'New@Example.test', password: 'x' }))).to.deep.equal({ ok: true, username: 'new@example.test' });
    expect(await store.users.find('new@example.test')).to.equal('new@example.test');
  });

  describe('offers challenge-response mechanisms (APOP, CRAM-MD5) only when the store keeps secrets', () => {
    let root: string;
    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'postern-auth-secrets-'));
    });
    afterEach(async () => rm(root, { recursive: true, force: true }));

    it('the memory store keeps plaintext: offered', async () => {
      const { auth } = await setup();
      expect(auth.supportsSharedSecrets).to.equal(true);
    });

    it('Maildir keeps only scrypt hashes by default: not offered, and a digest would fail anyway', async () => {
      const store = new MaildirMailStore({ root, fsync: false });
      try {
        await store.users.add({ username: 'alice', password: 'secret' });
        expect(store.users.keepsSecrets).to.equal(false);
        expect(new StoreAuthenticator(store, {}).supportsSharedSecrets).to.equal(false);
        expect(await store.users.secretFor('alice')).to.equal(undefined);
        // GreenMail's mode lets any login in, so a challenge-response exchange succeeds there too (but SCRAM, whose
        // server proves the password, is left out: acceptsAnyCredentials).
        expect(new StoreAuthenticator(store, { authDisabled: true })).to.include({ supportsSharedSecrets: true, acceptsAnyCredentials: true });
        expect(new StoreAuthenticator(store, {}).acceptsAnyCredentials).to.equal(false);
      } finally {
        await store.close();
      }
    });

    it('Maildir with keepPlaintextPasswords: offered, and the secret is there', async () => {
      const store = new MaildirMailStore({ root, fsync: false, keepPlaintextPasswords: true });
      try {
        await store.users.add({ username: 'alice', password: 'secret' });
        expect(new StoreAuthenticator(store, {}).supportsSharedSecrets).to.equal(true);
        expect(await store.users.secretFor('alice')).to.equal('secret');
      } finally {
        await store.close();
      }
    });
  });
});
