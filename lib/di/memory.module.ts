import { ContainerModule } from '../vendor/inversify.js';
import { Authenticator, DefaultAuthenticator } from '../contracts/authenticator.js';
import { MailStore, MailStoreOptions } from '../contracts/mail-store.js';
import { MemoryMailStore } from '../backends/memory/memory-mail-store.js';
import { StoreAuthenticator } from '../backends/store-authenticator.js';
import { PosternConfig } from './config.js';
import { withStoreMetrics } from './core.module.js';

/**
 * The in-memory store (test doubles, `npm start`) and the store-backed authenticator. With
 * `config.authDisabled`, unknown recipients and logins get a mailbox on first use.
 */
export const memoryModule = new ContainerModule(({ bind }) => {
  bind(MailStoreOptions).toResolvedValue((config: PosternConfig) => ({ autoCreateUsers: config.authDisabled === true }), [PosternConfig]);
  bind(MemoryMailStore).toSelf().inSingletonScope().onActivation(withStoreMetrics);
  bind(MailStore).toService(MemoryMailStore);
  bind(DefaultAuthenticator).to(StoreAuthenticator).inSingletonScope();
  bind(Authenticator).toResolvedValue((a: Authenticator) => a, [DefaultAuthenticator]).inSingletonScope();
});
