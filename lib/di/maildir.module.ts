import { ContainerModule } from '../vendor/inversify.js';
import { Authenticator, DefaultAuthenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { MaildirMailStore, MaildirMailStoreOptions } from '../backends/maildir/maildir-mail-store.js';
import { StoreAuthenticator } from '../backends/store-authenticator.js';
import { PosternConfig } from './config.js';
import { withStoreMetrics } from './core.module.js';

/**
 * The persistent Maildir store rooted at `root` (`--store maildir:PATH`) and the store-backed authenticator.
 * Passwords are kept as scrypt hashes only, so APOP and CRAM-MD5 are not offered unless `keepPlaintextPasswords`.
 */
export function maildirModule(root: string, options: { keepPlaintextPasswords?: boolean } = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(MaildirMailStoreOptions).toResolvedValue(
      (config: PosternConfig) => ({ root, autoCreateUsers: config.authDisabled === true, keepPlaintextPasswords: options.keepPlaintextPasswords }),
      [PosternConfig],
    );
    bind(MaildirMailStore).toSelf().inSingletonScope().onActivation(withStoreMetrics);
    bind(MailStore).toService(MaildirMailStore);
    bind(DefaultAuthenticator).to(StoreAuthenticator).inSingletonScope();
    bind(Authenticator).toResolvedValue((a: Authenticator) => a, [DefaultAuthenticator]).inSingletonScope();
  });
}
