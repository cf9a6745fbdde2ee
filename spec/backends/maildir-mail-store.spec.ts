import 'reflect-metadata';
import { expect } from 'chai';
import { Container } from 'inversify';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailStore, type MailboxEvent } from '../../lib/contracts/mail-store.js';
import { MaildirMailStore, MaildirMailStoreOptions } from '../../lib/backends/maildir/maildir-mail-store.js';
import { mailStoreSuite, message } from './mail-store-suite.js';

describe('MaildirMailStore', () => {
  mailStoreSuite(async (options) => {
    const root = await mkdtemp(join(tmpdir(), 'postern-maildir-'));
    const store = new MaildirMailStore({ ...options, root });
    return {
      store,
      dispose: async () => {
        await store.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  });

  describe('on disk', () => {
    let root: string;
    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'postern-maildir-'));
    });
    afterEach(async () => {
      await rm(root, { recursive: true, force: true });
    });

    const aliceDir = (): string => join(root, 'mail', 'alice');

    async function withAlice(options: Partial<MaildirMailStoreOptions> = {}): Promise<MaildirMailStore> {
      const store = new MaildirMailStore({ root, ...options });
      await store.users.add({ username: 'alice', password: 'secret-a', addresses: ['alice@example.org'] });
      return store;
    }

    it('has the delivered file in new/ as plain RFC 5322 when deliver resolves', async () => {
      const store = await withAlice();
      const raw = message('on disk');
      await store.deliver('alice@example.org', raw);
      const files = await readdir(join(aliceDir(), 'new'));
      expect(files).to.have.length(1);
      expect(files[0]).to.match(/^\d+\.M\d+P\d+Q\d+R[0-9a-f]+\..+,S=\d+$/);
      expect((await readFile(join(aliceDir(), 'new', files[0]!))).equals(raw)).to.equal(true);
      expect(await readdir(join(aliceDir(), 'tmp'))).to.deep.equal([]);
    });

    it('keeps standard flags in the :2, info suffix under cur/ and sub-folders as Maildir++ .Name dirs', async () => {
      const store = await withAlice();
      await store.deliver('alice@example.org', message('flag me'));
      const view = await store.openUser('alice');
      await view.setFlags('INBOX', [1], ['\\Seen', '\\Answered', '\\Flagged', 'Custom'], 'add');
      const cur = await readdir(join(aliceDir(), 'cur'));
      expect(cur).to.have.length(1);
      expect(cur[0]).to.match(/:2,FRS$/);
      expect(await readdir(join(aliceDir(), 'new'))).to.deep.equal([]);
      await view.create('Sent/2024');
      await view.create('a.b');
      for (const dir of ['.Sent', '.Sent.2024']) {
        expect((await readdir(join(aliceDir(), dir))).sort()).to.include.members(['cur', 'maildirfolder', 'new', 'postern-log', 'tmp']);
      }
      expect((await stat(join(aliceDir(), '.a&AC4-b'))).isDirectory()).to.equal(true);
      await view.release();
    });

    it('survives a restart with users, mailboxes, messages, flags, UIDs, UIDVALIDITY and subscriptions', async () => {
      const first = await withAlice();
      await first.deliver('alice@example.org', message('one'));
      await first.deliver('alice@example.org', message('two'));
      await first.deliver('alice@example.org', message('three'));
      const view = await first.openUser('alice');
      await view.create('Work/Projects');
      await view.subscribe('Work/Projects', true);
      await view.setFlags('INBOX', [2], ['\\Seen', '$Important'], 'add');
      await view.expunge('INBOX', [3]);
      const date = new Date('2022-05-06T07:08:09Z');
      await view.append('Work/Projects', message('work'), ['\\Draft'], date);
      const before = await view.list();
      await view.release();

      const second = new MaildirMailStore({ root });
      expect(await second.users.verify('alice@example.org', 'secret-a')).to.equal('alice');
      expect(await second.users.verify('alice', 'wrong')).to.equal(undefined);
      const again = await second.openUser('alice');
      expect(await again.list()).to.deep.equal(before);
      const inbox = await again.messages('INBOX');
      expect(inbox.map((m) => [m.uid, [...m.flags].sort()])).to.deep.equal([
        [1, []],
        [2, ['$Important', '\\Seen']],
      ]);
      expect((await inbox[1]!.raw()).equals(message('two'))).to.equal(true);
      const [work] = await again.messages('Work/Projects');
      expect(work!.internalDate.getTime()).to.equal(date.getTime());
      expect([...work!.flags]).to.deep.equal(['\\Draft']);
      expect(await again.subscriptions()).to.deep.equal(['Work/Projects']);
      expect((await second.deliver('alice@example.org', message('four'))).uid).to.equal(4);
      await again.release();
    });

    it('stores only a scrypt hash unless plaintext is asked for', async () => {
      const store = await withAlice();
      const text = await readFile(join(root, 'users.json'), 'utf8');
      expect(text).to.not.include('secret-a');
      expect(text).to.match(/"scrypt\$16384\$8\$1\$/);
      expect(await store.users.secretFor('alice')).to.equal(undefined);
      const plain = new MaildirMailStore({ root, keepPlaintextPasswords: true });
      await plain.users.add({ username: 'bob', password: 'secret-b' });
      expect(await plain.users.secretFor('bob')).to.equal('secret-b');
      expect(await plain.users.verify('bob', 'secret-b')).to.equal('bob');
    });

    it('picks up messages dropped and removed by other Maildir tools', async () => {
      const store = await withAlice();
      await store.deliver('alice@example.org', message('ours'));
      const view = await store.openUser('alice');
      await view.messages('INBOX');
      const events: MailboxEvent[] = [];
      const stop = store.watch((event) => events.push(event));
      await writeFile(join(aliceDir(), 'new', '1700000000.external.host'), message('theirs'));
      const [ours] = await readdir(join(aliceDir(), 'cur'));
      await rm(join(aliceDir(), 'cur', ours!));
      const messages = await view.messages('INBOX');
      expect(messages.map((m) => m.uid)).to.deep.equal([2]);
      expect((await messages[0]!.raw()).equals(message('theirs'))).to.equal(true);
      expect(events).to.deep.equal([
        { type: 'expunge', username: 'alice', mailbox: 'INBOX', uids: [1] },
        { type: 'exists', username: 'alice', mailbox: 'INBOX', uid: 2 },
      ]);
      stop();
      await view.release();
    });

    it('reads a message after another session changed its flags, and refuses it once expunged', async () => {
      const store = await withAlice();
      const stored = await store.deliver('alice@example.org', message('x'));
      const view = await store.openUser('alice');
      await view.setFlags('INBOX', [1], ['\\Seen'], 'add');
      expect((await stored.raw()).equals(message('x'))).to.equal(true);
      await view.expunge('INBOX', [1]);
      try {
        await stored.raw();
        expect.fail('raw() should refuse an expunged message');
      } catch (err) {
        expect(err).to.have.property('code', 'NO_SUCH_MESSAGE');
      }
      await view.release();
    });

    it('resolves from an inversify container with its options token', async () => {
      const container = new Container();
      container.bind(MaildirMailStoreOptions).toConstantValue({ root, autoCreateUsers: true });
      container.bind(MailStore).to(MaildirMailStore).inSingletonScope();
      const store = container.get(MailStore);
      expect((await store.deliver('x@example.org', message('x'))).uid).to.equal(1);
    });
  });
});
