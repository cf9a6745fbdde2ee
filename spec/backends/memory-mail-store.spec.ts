import 'reflect-metadata';
import { expect } from 'chai';
import { Container } from 'inversify';
import { MailStore, MailStoreOptions } from '../../lib/contracts/mail-store.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import { emailIdOfContent } from '../../lib/backends/shared/object-ids.js';
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

  describe('lean message records', () => {
    it('keeps the flags of each message its own although flagless messages share one empty set', async () => {
      const store = new MemoryMailStore();
      await store.users.add({ username: 'u', password: 'p' });
      for (const text of ['one', 'two', 'three']) await store.deliver('u', message(text));
      const view = await store.openUser('u');
      await view.setFlags('INBOX', [2], ['\\Seen'], 'add');
      await view.setFlags('INBOX', [1], ['\\Flagged'], 'add');
      await view.setFlags('INBOX', [1], ['\\Flagged'], 'remove');
      const flags = (await view.messages('INBOX')).map((m) => [...m.flags]);
      expect(flags).to.deep.equal([[], ['\\Seen'], []]);
      // A caller editing its view must not reach the store (nor another message).
      ((await view.messages('INBOX'))[0]!.flags as Set<string>).add('\\Deleted');
      expect((await view.messages('INBOX')).map((m) => [...m.flags])).to.deep.equal([[], ['\\Seen'], []]);
    });

    it('answers the content hash as EMAILID when first asked, the same for a copy', async () => {
      const store = new MemoryMailStore();
      await store.users.add({ username: 'u', password: 'p' });
      const raw = message('hashed later');
      const delivered = await store.deliver('u', raw);
      const view = await store.openUser('u');
      await view.create('Archive');
      await view.copy('INBOX', [1], 'Archive');
      const [inInbox] = await view.messages('INBOX');
      const [inArchive] = await view.messages('Archive');
      const expected = emailIdOfContent(raw);
      expect((delivered as { emailId?: string }).emailId).to.equal(expected);
      expect((inInbox as { emailId?: string }).emailId).to.equal(expected);
      expect((inArchive as { emailId?: string }).emailId).to.equal(expected);
    });

    it('gives a delivery one instant as internal date and save date', async () => {
      const store = new MemoryMailStore();
      await store.users.add({ username: 'u', password: 'p' });
      await store.deliver('u', message('now'));
      const past = new Date('2020-01-02T03:04:05Z');
      await store.deliver('u', message('dated'), { internalDate: past });
      const [now, dated] = (await (await store.openUser('u')).messages('INBOX')) as Array<{ internalDate: Date; saveDate?: Date }>;
      expect(now!.saveDate!.getTime()).to.equal(now!.internalDate.getTime());
      expect(dated!.internalDate.getTime()).to.equal(past.getTime());
      expect(dated!.saveDate!.getTime()).to.be.greaterThan(past.getTime());
    });
  });
});
