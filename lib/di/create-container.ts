import { Container, type ContainerModule } from 'inversify';
import { coreModule } from './core.module.js';
import { PosternConfig } from './config.js';

/**
 * Builds an inversify container with the core layer bound to `config`, plus `modules` (protocol and store
 * modules, or your own). Rebind anything afterwards with `container.rebind(Token)`.
 *
 * The container owns what it creates: `await container.unbindAllAsync()` runs every `@preDestroy`/deactivation
 * (listeners close, watchers stop).
 */
export function createContainer(config: PosternConfig = {}, modules: readonly ContainerModule[] = []): Container {
  const container = new Container();
  container.bind(PosternConfig).toConstantValue(config);
  container.load(coreModule, ...modules);
  return container;
}
