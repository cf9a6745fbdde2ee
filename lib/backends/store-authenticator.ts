import { createHmac, randomBytes } from 'node:crypto';
import { inject, injectable } from '../vendor/inversify.js';
import type { AuthRequest, AuthResult, Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { PosternConfig } from '../di/config.js';
import { SCRAM_ITERATIONS, type ScramParameters } from '../protocol/sasl/scram-keys.js';

/**
 * The default {@link Authenticator} (bound under `DefaultAuthenticator`; `Authenticator` resolves to it unless
 * rebound): checks the mail store's users, the one user directory. EXTERNAL requests succeed for users the store
 * knows. With `authDisabled` (GreenMail's mode) any
 * login succeeds and the user is created on first use.
 */
@injectable()
export class StoreAuthenticator implements Authenticator {
  constructor(
    @inject(MailStore) private readonly store: MailStore,
    @inject(PosternConfig) private readonly config: PosternConfig,
  ) {}

  /**
   * APOP and CRAM-MD5 are offered only when the store keeps plaintext secrets (the memory store; Maildir and PostgreSQL
   * with `keepPlaintextPasswords`), or with `authDisabled`, where any login works.
   */
  get supportsSharedSecrets(): boolean {
    return this.config.authDisabled === true || this.store.users.keepsSecrets;
  }

  /** With `authDisabled` any login works (and SCRAM, which needs the real password, is not offered). */
  get acceptsAnyCredentials(): boolean {
    return this.config.authDisabled === true;
  }

  /** SCRAM-SHA-256 from stored keys: when the store keeps them for every user (Maildir makes them with each hash). */
  get supportsScramKeys(): boolean {
    return this.config.authDisabled !== true && this.store.users.keepsScramKeys === true;
  }

  /** Per-process key of the made-up salts of unknown logins. */
  private readonly decoyKey = randomBytes(32);

  /** {@inheritDoc Authenticator.scramParameters} */
  async scramParameters(login: string): Promise<ScramParameters> {
    const user = await this.store.users.find(login);
    const keys = user === undefined ? undefined : await this.store.users.scramKeysFor?.(user);
    if (keys) return { salt: keys.salt, iterations: keys.iterations };
    // RFC 5802 §5.1: the same made-up salt every time for this login, so unknown logins look like known ones.
    return { salt: createHmac('sha256', this.decoyKey).update(login.toLowerCase()).digest().subarray(0, 16), iterations: SCRAM_ITERATIONS };
  }

  async authenticate(request: AuthRequest): Promise<AuthResult> {
    const login = request.username;
    if (request.authzid && request.authzid !== login) return { ok: false, reason: 'invalid-credentials' };
    if (this.config.authDisabled) {
      // GreenMail's mode: any login works, and its user (its mailboxes) exists from then on.
      const known = await this.store.users.find(login);
      if (known) return { ok: true, username: known };
      await this.store.users.add({ username: login.toLowerCase(), password: request.password ?? '' });
      return { ok: true, username: login.toLowerCase() };
    }
    if (request.external) {
      // SASL EXTERNAL: the certificate mapping (and any authzid) was decided by the mechanism; the user must exist.
      const user = await this.store.users.find(login);
      return user ? { ok: true, username: user } : { ok: false, reason: 'invalid-credentials' };
    }
    if (request.password !== undefined) {
      if (request.password === '') return { ok: false, reason: 'invalid-credentials' }; // never a valid secret
      const user = await this.store.users.verify(login, request.password);
      return user ? { ok: true, username: user } : { ok: false, reason: 'invalid-credentials' };
    }
    if (request.verifyWithSecret) {
      const user = await this.store.users.find(login);
      const secret = user ? await this.store.users.secretFor(user) : undefined;
      if (user && secret !== undefined) return request.verifyWithSecret(secret) ? { ok: true, username: user } : { ok: false, reason: 'invalid-credentials' };
    }
    if (request.verifyWithScramKeys) {
      const user = await this.store.users.find(login);
      const keys = user === undefined ? undefined : await this.store.users.scramKeysFor?.(user);
      if (user && keys && request.verifyWithScramKeys(keys)) return { ok: true, username: user };
    }
    return { ok: false, reason: 'invalid-credentials' };
  }
}

/**
 * The bridge that keeps the store the one user directory whatever Authenticator is bound: called after every
 * successful login (the container hands it to the protocol servers unless the bound Authenticator is the store's
 * own), it creates a user the store does not know yet (no usable password: 32 random bytes; the login as its
 * address when it is one). So a user who can log in always has mailboxes: IMAP and POP3 never answer "no such user"
 * for them, and mail to a login that is an address is accepted from then on.
 */
export async function ensureStoreUser(store: MailStore, username: string): Promise<void> {
  if ((await store.users.find(username)) !== undefined) return;
  const password = randomBytes(32).toString('base64url');
  const addresses = username.includes('@') ? [username] : [];
  try {
    await store.users.add({ username, password, addresses });
  } catch (err) {
    // A concurrent login added it, or the address belongs to someone else: the user then exists or gets none.
    if ((await store.users.find(username)) !== undefined) return;
    if (addresses.length === 0) throw err;
    await store.users.add({ username, password, addresses: [] });
  }
}
