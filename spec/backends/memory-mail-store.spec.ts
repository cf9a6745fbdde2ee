import 'reflect-metadata';
import { expect } from 'chai';
import { Container } from 'inversify';
import { MailStore, MailStoreOptions } from '../../lib/contracts/mail-store.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import { mailStoreSuite, message } from './mail-store-suite.js';

describe('MemoryMailStore', () => {
  mailStoreSuite(async (options) => ({ store: new MemoryMailStore(options), dispose: async () => undefined }));

  it('resolves from an inversify container with and without MailStoreOptions', async () => {
    const container = new Container();
    container.bind(MailStore).to(MemoryMailStore).inSingletonScope();
    const plain = container.get(MailStore);
    expect(plain).to.be.instanceOf(MemoryMailStore);
    const withOptions = new Container();
    withOptions.bind(MailStoreOptions).toConstantValue({ autoCreateUsers: true });
    withOptions.bind(MailStore).to(MemoryMailStore).inSingletonScope();
    expect((await withOptions.get(MailStore).deliver('x@example.org', message('x'))).uid).to.equal(1);
  });

  it('keeps plaintext secrets for challenge-response mechanisms', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'u', password: 'p' });
    expect(await store.users.secretFor('u')).to.equal('p');
  });
});
