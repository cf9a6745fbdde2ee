import { inject, injectable } from 'inversify';
import type { AuthRequest, AuthResult, Authenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { PosternConfig } from '../di/config.js';

/**
 * The default {@link Authenticator}: checks the mail store's users. With `authDisabled` (GreenMail's mode) any
 * login succeeds and the user is created on first use.
 */
@injectable()
export class StoreAuthenticator implements Authenticator {
  readonly supportsSharedSecrets = true;
  constructor(
    @inject(MailStore) private readonly store: MailStore,
    @inject(PosternConfig) private readonly config: PosternConfig,
  ) {}

  async authenticate(request: AuthRequest): Promise<AuthResult> {
    const login = request.username;
    if (request.authzid && request.authzid !== login) return { ok: false, reason: 'invalid-credentials' };
    if (this.config.authDisabled) {
      const known = await this.store.users.find(login);
      if (known) return { ok: true, username: known };
      await this.store.users.add({ username: login.toLowerCase(), password: request.password ?? '' });
      return { ok: true, username: login.toLowerCase() };
    }
    if (request.password !== undefined) {
      if (request.password === '') return { ok: false, reason: 'invalid-credentials' }; // never a valid secret
      const user = await this.store.users.verify(login, request.password);
      return user ? { ok: true, username: user } : { ok: false, reason: 'invalid-credentials' };
    }
    if (request.verifyWithSecret) {
      const user = await this.store.users.find(login);
      const secret = user ? await this.store.users.secretFor(user) : undefined;
      if (user && secret !== undefined && request.verifyWithSecret(secret)) return { ok: true, username: user };
    }
    return { ok: false, reason: 'invalid-credentials' };
  }
}
