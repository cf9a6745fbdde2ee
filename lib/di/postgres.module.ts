import { ContainerModule } from '../vendor/inversify.js';
import { Authenticator, DefaultAuthenticator } from '../contracts/authenticator.js';
import { MailStore } from '../contracts/mail-store.js';
import { PostgresMailStore, PostgresMailStoreOptions } from '../backends/postgres/postgres-mail-store.js';
import { StoreAuthenticator } from '../backends/store-authenticator.js';
import { PosternConfig } from './config.js';

/**
 * The PostgreSQL store at `url` (`--store postgres://USER:PASSWORD@HOST:PORT/DB`) and the store-backed
 * authenticator. Every node started with the same URL serves the same users and mailboxes. Passwords are kept as
 * scrypt hashes only, so APOP and CRAM-MD5 are not offered unless `keepPlaintextPasswords`. The pool and the LISTEN
 * and lock sessions close when the container is unbound.
 */
export function postgresModule(url: string, options: { poolSize?: number; keepPlaintextPasswords?: boolean } = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(PostgresMailStoreOptions).toResolvedValue(
      (config: PosternConfig) => ({ url, autoCreateUsers: config.authDisabled === true, ...options }),
      [PosternConfig],
    );
    bind(PostgresMailStore).toSelf().inSingletonScope(); // @preDestroy closes it
    bind(MailStore).toService(PostgresMailStore);
    bind(DefaultAuthenticator).to(StoreAuthenticator).inSingletonScope();
    bind(Authenticator).toResolvedValue((a: Authenticator) => a, [DefaultAuthenticator]).inSingletonScope();
  });
}
