import { expect } from 'chai';
import { MailStoreError, type MailboxEvent } from '../../lib/contracts/mail-store.js';
import { MemoryMailStore } from '../../lib/backends/memory/memory-mail-store.js';
import { allMessages } from '../../lib/test-double/store-queries.js';
import { message } from './mail-store-suite.js';

/** The MailStoreError of a rejected promise (fails when it resolves or rejects with something else). */
async function errorOf(promise: Promise<unknown>): Promise<MailStoreError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(MailStoreError);
    return err as MailStoreError;
  }
  expect.fail('expected a MailStoreError');
}

// Written against the mutants StrykerJS left alive in lib/backends/memory (README, "Scores (Stryker").
describe('MemoryMailStore: details the shared store suite leaves open', () => {
  it('stores a delivery without flags with no flags at all', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
    const stored = await store.deliver('alice@example.org', message('plain'));
    expect([...stored.flags]).to.deep.equal([]);
    // No envelope given: the message has no `envelope` key at all (exactOptionalPropertyTypes), not one set to undefined.
    expect(Object.keys(stored)).to.not.include('envelope');
    expect(Object.keys((await allMessages(store))[0]!.message)).to.not.include('envelope');
    const view = await store.openUser('alice');
    expect((await view.messages('INBOX')).map((m) => [...m.flags])).to.deep.equal([[]]);
    expect((await view.info('INBOX')).keywords).to.deep.equal([]);
  });

  it('names the missing mailbox and the missing user in its refusals', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw' });
    const noBox = await errorOf(store.deliver('alice', message('x'), { mailbox: 'Nope' }));
    expect([noBox.code, noBox.message]).to.deep.equal(['NO_SUCH_MAILBOX', 'no mailbox Nope']);
    const noUser = await errorOf(store.deliver('carol@example.org', message('x')));
    expect([noUser.code, noUser.message]).to.deep.equal(['NO_SUCH_USER', 'no such user']);
  });

  it('creates a user without @ under the login as given, and an address lower-cased, with autoCreateUsers', async () => {
    const store = new MemoryMailStore({ autoCreateUsers: true });
    const view = await store.openUser('Carol');
    expect(view.username).to.equal('Carol');
    await view.release();
    await store.deliver('Dave@Example.ORG', message('x'));
    expect(await store.users.list()).to.deep.equal(['Carol', 'dave@example.org']);
    expect(await store.users.verify('Carol', 'Carol')).to.equal('Carol');
  });
  it('keeps an existing superior mailbox, its messages and UIDVALIDITY, when CREATE or RENAME needs it as a parent', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw' });
    const view = await store.openUser('alice');
    await view.create('a');
    await view.append('a', message('kept'));
    const before = await view.info('a');
    const events: MailboxEvent[] = [];
    const stop = store.watch((e) => events.push(e));
    await view.create('a/b');
    await view.create('x');
    await view.rename('x', 'a/x');
    stop();
    expect(await view.info('a')).to.deep.equal({ ...before, hasChildren: true });
    expect(events.filter((e) => e.type === 'mailbox').map((e) => [e.mailbox, e.type === 'mailbox' ? e.change : ''])).to.deep.equal([
      ['a/b', 'created'],
      ['x', 'created'],
      ['x', 'renamed'],
    ]);
    const refused = await errorOf(view.create('a'));
    expect([refused.code, refused.message]).to.deep.equal(['ALREADY_EXISTS', 'mailbox a exists']);
    await view.release();
  });

  it('announces the expunge of every message of a deleted mailbox before the mailbox itself', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw' });
    const view = await store.openUser('alice');
    await view.create('Old');
    await view.create('Empty');
    await view.append('Old', message('1'));
    await view.append('Old', message('2'));
    const events: MailboxEvent[] = [];
    const stop = store.watch((e) => events.push(e));
    await view.delete('Old');
    await view.delete('Empty');
    stop();
    expect(events).to.deep.equal([
      { type: 'expunge', username: 'alice', mailbox: 'Old', uids: [1, 2] },
      { type: 'mailbox', username: 'alice', mailbox: 'Old', change: 'deleted' },
      { type: 'mailbox', username: 'alice', mailbox: 'Empty', change: 'deleted' },
    ]);
    const inbox = await errorOf(view.delete('INBOX'));
    expect([inbox.code, inbox.message]).to.deep.equal(['CANNOT', 'INBOX cannot be deleted']);
    await view.release();
  });

  it('changes nothing, not even HIGHESTMODSEQ, and announces nothing for an expunge of unknown UIDs', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw' });
    const view = await store.openUser('alice');
    await view.append('INBOX', message('1'));
    const before = await view.info('INBOX');
    const events: MailboxEvent[] = [];
    const stop = store.watch((e) => events.push(e));
    expect(await view.expunge('INBOX', [7, 8])).to.deep.equal([]);
    stop();
    expect(events).to.deep.equal([]);
    expect(await view.info('INBOX')).to.deep.equal(before);
    await view.release();
  });

  it('lists keywords sorted and a \\Noselect parent with empty counts', async () => {
    const store = new MemoryMailStore();
    await store.users.add({ username: 'alice', password: 'pw' });
    const view = await store.openUser('alice');
    await view.append('INBOX', message('1'), ['zeta']);
    await view.append('INBOX', message('2'), ['alpha', 'mid']);
    expect((await view.info('INBOX')).keywords).to.deep.equal(['alpha', 'mid', 'zeta']);
    await view.create('p/c');
    await view.delete('p');
    const parent = (await view.list()).find((box) => box.name === 'p');
    expect(parent).to.deep.equal({
      name: 'p',
      noselect: true,
      hasChildren: true,
      uidValidity: 0,
      uidNext: 0,
      highestModseq: 0,
      messages: 0,
      unseen: 0,
      recent: 0,
      keywords: [],
      subscribed: false,
    });
    await view.release();
    const released = await errorOf(view.list());
    expect([released.code, released.message]).to.deep.equal(['CANNOT', 'mailbox view released']);
  });
});
