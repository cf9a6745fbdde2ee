import { Container, type ContainerModule } from '../vendor/inversify.js';
import { withQuota } from '../backends/quota/quota-mail-store.js';
import { MailStore } from '../contracts/mail-store.js';
import { coreModule } from './core.module.js';
import { PosternConfig } from './config.js';
import { isProtocolModule } from './protocol-descriptor.js';
import { saslModule } from './sasl.module.js';

/**
 * Builds an inversify container with the core layer bound to `config`, plus `modules` (protocol and store
 * modules, or your own). Rebind anything afterwards with `container.rebind(Token)`.
 *
 * Protocol modules (`smtpModule`, `lmtpModule`…) bind only the listeners `config` enables: a section set to `false`
 * or `{ enabled: false }` binds nothing, a listener with `enabled: false` is not bound (so `getAll(Listener)` never
 * returns it).
 *
 * The container owns what it creates: `await container.unbindAllAsync()` runs every `@preDestroy`/deactivation
 * (listeners close, watchers stop).
 */
export function createContainer(config: PosternConfig = {}, modules: readonly ContainerModule[] = []): Container {
  const container = new Container();
  container.bind(PosternConfig).toConstantValue(config);
  container.load(coreModule, saslModule(config), ...modules.map((m) => (isProtocolModule(m) ? m.forConfig(config) : m)));
  if (config.quota && container.isBound(MailStore)) {
    // RFC 9208 storage quota: the bound store, wrapped once, serves every protocol (SMTP answers 552 5.2.2).
    const store = withQuota(container.get(MailStore), config.quota);
    container.unbind(MailStore);
    container.bind(MailStore).toConstantValue(store);
  }
  return container;
}
