import { expect } from 'chai';
import {
  MailStoreError,
  hasMailboxIdentity,
  hasMessageIdentity,
  supportsMaildropLock,
  supportsObjectIdentity,
  supportsWatch,
  type DeliveryEnvelope,
  type MailStore,
  type MailStoreOptions,
  type MailboxEvent,
  type MailboxWatching,
  type MaildropLocking,
  type StoredMessage,
} from '../../lib/contracts/mail-store.js';
import { allMessages, purgeMessages } from '../../lib/test-double/store-queries.js';

/** One store under test plus how to dispose of it. */
export interface StoreFixture {
  readonly store: MailStore;
  /** Removes everything the fixture created (temp dirs). */
  dispose(): Promise<void>;
}

/** Creates a fresh, empty store with the given options. */
export type StoreFactory = (options: MailStoreOptions) => Promise<StoreFixture>;

/** A small RFC 5322 message with CRLF line ends. */
export function message(subject: string, body = 'Hello.'): Buffer {
  return Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);
}

/** Resolves the MailStoreError code of a rejected promise (fails when it resolves or throws something else). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(MailStoreError);
    return (err as MailStoreError).code;
  }
  expect.fail('expected a MailStoreError');
}

/**
 * The behaviour every {@link MailStore} backend must show; run by each backend's spec with its own factory.
 * Every test builds its own store so that backends cannot leak state between tests.
 */
export function mailStoreSuite(factory: StoreFactory): void {
  let fixture: StoreFixture | undefined;
  const open = async (options: MailStoreOptions = {}): Promise<MailStore> => {
    fixture = await factory(options);
    await fixture.store.users.add({ username: 'alice', password: 'secret-a', addresses: ['Alice@Example.org', 'al@example.org'] });
    await fixture.store.users.add({ username: 'bob@example.org', password: 'secret-b' });
    return fixture.store;
  };

  afterEach(async () => {
    await fixture?.dispose();
    fixture = undefined;
  });

  describe('users', () => {
    it('verifies by username or address and refuses wrong passwords', async () => {
      const store = await open();
      expect(await store.users.verify('alice', 'secret-a')).to.equal('alice');
      expect(await store.users.verify('ALICE@example.org', 'secret-a')).to.equal('alice');
      expect(await store.users.verify('alice', 'wrong')).to.equal(undefined);
      expect(await store.users.verify('nobody', 'secret-a')).to.equal(undefined);
      expect(await store.users.verify('bob@example.org', 'secret-b')).to.equal('bob@example.org');
    });

    it('finds users by address case-insensitively and lists them', async () => {
      const store = await open();
      expect(await store.users.findByAddress('AL@EXAMPLE.ORG')).to.equal('alice');
      expect(await store.users.findByAddress('Bob@Example.org')).to.equal('bob@example.org');
      expect(await store.users.findByAddress('carol@example.org')).to.equal(undefined);
      expect(await store.users.find('alice')).to.equal('alice');
      expect(await store.users.find('al@example.org')).to.equal('alice');
      expect(await store.users.list()).to.deep.equal(['alice', 'bob@example.org']);
    });

    it('refuses an address that belongs to another user with ALREADY_EXISTS', async () => {
      const store = await open();
      expect(await codeOf(store.users.add({ username: 'mallory', password: 'x', addresses: ['al@example.org'] }))).to.equal('ALREADY_EXISTS');
    });

    it('replaces a user and keeps its mailbox', async () => {
      const store = await open();
      await store.deliver('alice@example.org', message('kept'));
      await store.users.add({ username: 'alice', password: 'new-pass', addresses: ['alice@example.org'] });
      expect(await store.users.verify('alice', 'secret-a')).to.equal(undefined);
      expect(await store.users.verify('alice', 'new-pass')).to.equal('alice');
      const view = await store.openUser('alice');
      expect(await view.messages('INBOX')).to.have.length(1);
      await view.release();
    });

    it('removes a user with its addresses: no login, no delivery, a second remove resolves false', async () => {
      const store = await open();
      expect(store.users.remove, 'every Postern store can remove users').to.be.a('function');
      expect(await store.users.verify('alice', 'secret-a')).to.equal('alice'); // warms any login cache
      expect(await store.users.remove!('alice')).to.equal(true);
      expect(await store.users.find('alice')).to.equal(undefined);
      expect(await store.users.findByAddress('al@example.org')).to.equal(undefined);
      expect(await store.users.verify('alice', 'secret-a')).to.equal(undefined);
      expect(await store.users.list()).to.deep.equal(['bob@example.org']);
      expect(await codeOf(store.deliver('al@example.org', message('gone')))).to.equal('NO_SUCH_USER');
      expect(await store.users.remove!('alice')).to.equal(false);
      expect(await store.users.remove!('nobody')).to.equal(false);
      // The address is free again for someone else.
      await store.users.add({ username: 'carol', password: 'pw', addresses: ['al@example.org'] });
      expect(await store.users.findByAddress('AL@example.org')).to.equal('carol');
    });
  });

  describe('delivery', () => {
    it('delivers into INBOX byte-exact with uid 1, then 2', async () => {
      const store = await open();
      const raw = message('first');
      const stored = await store.deliver('alice@example.org', raw);
      expect(stored.uid).to.equal(1);
      expect(stored.size).to.equal(raw.length);
      expect((await stored.raw()).equals(raw)).to.equal(true);
      expect((await store.deliver('AL@example.org', message('second'))).uid).to.equal(2);
      const view = await store.openUser('alice');
      const info = await view.info('INBOX');
      expect(info).to.include({ messages: 2, unseen: 2, uidNext: 3 });
      const messages = await view.messages('INBOX');
      expect(messages.map((m) => m.uid)).to.deep.equal([1, 2]);
      expect((await messages[0]!.raw()).equals(raw)).to.equal(true);
      await view.release();
    });

    it('gives concurrent deliveries distinct ascending uids', async () => {
      const store = await open();
      const stored = await Promise.all(Array.from({ length: 20 }, (_, n) => store.deliver('alice@example.org', message(`m${n}`))));
      expect(stored.map((m) => m.uid).sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 20 }, (_, n) => n + 1));
      const view = await store.openUser('alice');
      const listed = await view.messages('INBOX');
      expect(listed).to.have.length(20);
      for (const m of listed) {
        const subject = `m${stored.findIndex((s) => s.uid === m.uid)}`;
        expect((await m.raw()).equals(message(subject))).to.equal(true);
      }
      await view.release();
    });

    it('refuses an unknown recipient with NO_SUCH_USER', async () => {
      const store = await open();
      expect(await codeOf(store.deliver('carol@example.org', message('x')))).to.equal('NO_SUCH_USER');
      expect(await codeOf(store.openUser('carol'))).to.equal('NO_SUCH_USER');
    });

    it('delivers into another mailbox with flags and refuses an unknown one', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Junk');
      const stored = await store.deliver('alice@example.org', message('spam'), { mailbox: 'Junk', flags: ['$Junk', '\\Seen'] });
      expect([...stored.flags].sort()).to.deep.equal(['$Junk', '\\Seen']);
      expect((await view.info('Junk')).messages).to.equal(1);
      expect(await codeOf(store.deliver('alice@example.org', message('x'), { mailbox: 'Nope' }))).to.equal('NO_SUCH_MAILBOX');
      await view.release();
    });

    it('creates unknown users on delivery and on openUser with autoCreateUsers', async () => {
      const store = await open({ autoCreateUsers: true });
      await store.deliver('Carol@Example.org', message('hi carol'));
      expect(await store.users.findByAddress('carol@example.org')).to.equal('carol@example.org');
      expect(await store.users.verify('carol@example.org', 'Carol@Example.org')).to.equal('carol@example.org');
      const carol = await store.openUser('carol@example.org');
      expect(await carol.messages('INBOX')).to.have.length(1);
      await carol.release();
      const dave = await store.openUser('dave@example.org');
      expect((await dave.info('INBOX')).messages).to.equal(0);
      await dave.release();
      expect(await store.users.list()).to.include.members(['carol@example.org', 'dave@example.org']);
    });
  });

  describe('mailboxes', () => {
    it('creates, lists and deletes mailboxes', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Sent');
      expect(await codeOf(view.create('Sent'))).to.equal('ALREADY_EXISTS');
      expect((await view.list()).map((m) => m.name)).to.deep.equal(['INBOX', 'Sent']);
      await view.delete('Sent');
      expect((await view.list()).map((m) => m.name)).to.deep.equal(['INBOX']);
      expect(await codeOf(view.delete('Sent'))).to.equal('NO_SUCH_MAILBOX');
      expect(await codeOf(view.info('Sent'))).to.equal('NO_SUCH_MAILBOX');
      expect(await codeOf(view.delete('INBOX'))).to.equal('CANNOT');
      expect(await codeOf(view.create('a//b'))).to.equal('CANNOT');
      expect(await codeOf(view.create('/a'))).to.equal('CANNOT');
      await view.release();
    });

    it('creates superior levels and keeps a deleted parent as \\Noselect while children exist', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Work/2024/Q1');
      const names = (await view.list()).map((m) => [m.name, m.noselect, m.hasChildren]);
      expect(names).to.deep.equal([
        ['INBOX', false, false],
        ['Work', false, true],
        ['Work/2024', false, true],
        ['Work/2024/Q1', false, false],
      ]);
      await view.delete('Work');
      const work = (await view.list()).find((m) => m.name === 'Work');
      expect(work).to.include({ noselect: true, hasChildren: true });
      expect(await codeOf(view.info('Work'))).to.equal('NO_SUCH_MAILBOX');
      expect((await view.info('Work/2024/Q1')).messages).to.equal(0);
      await view.create('Work');
      expect((await view.info('Work')).noselect).to.equal(false);
      await view.release();
    });

    it('treats INBOX case-insensitively, also as a first level', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.append('inbox', message('x'));
      expect((await view.info('Inbox')).name).to.equal('INBOX');
      expect((await view.info('INBOX')).messages).to.equal(1);
      expect(await codeOf(view.create('inbox'))).to.equal('ALREADY_EXISTS');
      await view.create('inbox/Drafts');
      expect((await view.list()).map((m) => m.name)).to.deep.equal(['INBOX', 'INBOX/Drafts']);
      expect((await view.info('INBOX/Drafts')).name).to.equal('INBOX/Drafts');
      await view.release();
    });

    it('renames a mailbox with its children, keeping UIDVALIDITY, messages and subscriptions', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Old/Child');
      await view.append('Old', message('parent msg'));
      await view.append('Old/Child', message('child msg'), ['\\Seen']);
      await view.subscribe('Old/Child', true);
      const before = await view.info('Old');
      const childBefore = await view.info('Old/Child');
      await view.rename('Old', 'New/Name');
      expect((await view.list()).map((m) => m.name)).to.deep.equal(['INBOX', 'New', 'New/Name', 'New/Name/Child']);
      const after = await view.info('New/Name');
      expect(after.uidValidity).to.equal(before.uidValidity);
      expect(after.uidNext).to.equal(before.uidNext);
      const child = await view.info('New/Name/Child');
      expect(child).to.include({ uidValidity: childBefore.uidValidity, messages: 1, unseen: 0, subscribed: true });
      expect(await view.subscriptions()).to.deep.equal(['New/Name/Child']);
      expect(await codeOf(view.info('Old'))).to.equal('NO_SUCH_MAILBOX');
      expect(await codeOf(view.rename('Nope', 'X'))).to.equal('NO_SUCH_MAILBOX');
      expect(await codeOf(view.rename('New/Name', 'New'))).to.equal('ALREADY_EXISTS');
      expect(await codeOf(view.rename('New', 'New/Name/Child/Deeper'))).to.equal('CANNOT');
      await view.release();
    });

    it('renames INBOX by moving its messages and leaving INBOX empty', async () => {
      const store = await open();
      await store.deliver('alice@example.org', message('one'));
      await store.deliver('alice@example.org', message('two'));
      const view = await store.openUser('alice');
      const uidNext = (await view.info('INBOX')).uidNext;
      await view.rename('INBOX', 'Archive');
      expect((await view.info('Archive')).messages).to.equal(2);
      expect(await view.info('INBOX')).to.include({ messages: 0, uidNext });
      await view.release();
    });

    it('keeps a subscription list that may name missing mailboxes', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Lists');
      await view.subscribe('Lists', true);
      await view.subscribe('INBOX', true);
      expect((await view.info('Lists')).subscribed).to.equal(true);
      expect(await view.subscriptions()).to.deep.equal(['INBOX', 'Lists']);
      expect(await codeOf(view.subscribe('Missing', true))).to.equal('NO_SUCH_MAILBOX');
      await view.delete('Lists');
      expect(await view.subscriptions()).to.deep.equal(['INBOX', 'Lists']);
      await view.subscribe('Lists', false);
      expect(await view.subscriptions()).to.deep.equal(['INBOX']);
      await view.release();
    });

    it('round-trips names with dots, ampersands and non-ASCII letters', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      const name = 'Ünïcode & co.2024/日本語';
      await view.create(name);
      await view.append(name, message('x'));
      expect((await view.list()).map((m) => m.name)).to.include.members(['Ünïcode & co.2024', name]);
      expect((await view.info(name)).messages).to.equal(1);
      await view.release();
    });

    it('gives a recreated mailbox a new, larger UIDVALIDITY and keeps it stable otherwise', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Box');
      const first = (await view.info('Box')).uidValidity;
      expect(first).to.be.greaterThan(0);
      expect((await view.info('Box')).uidValidity).to.equal(first);
      await view.append('Box', message('x'));
      expect((await view.info('Box')).uidValidity).to.equal(first);
      await view.delete('Box');
      await view.create('Box');
      const second = await view.info('Box');
      expect(second.uidValidity).to.be.greaterThan(first);
      expect(second.uidNext).to.equal(1);
      await view.release();
    });

    it('refuses every call after release', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.release();
      await view.release();
      expect(await codeOf(view.list())).to.equal('CANNOT');
    });
  });

  describe('messages', () => {
    it('appends with flags and internal date, normalizing system flags and dropping \\Recent', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      const date = new Date('2024-02-03T04:05:06Z');
      const stored = await view.append('INBOX', message('draft'), ['\\seen', '\\DRAFT', '$Label1', '\\Recent', '$label1'], date);
      expect([...stored.flags].sort()).to.deep.equal(['$Label1', '\\Draft', '\\Seen']);
      expect(stored.internalDate.getTime()).to.equal(date.getTime());
      const [listed] = await view.messages('INBOX');
      expect(listed!.internalDate.getTime()).to.equal(date.getTime());
      expect([...listed!.flags].sort()).to.deep.equal(['$Label1', '\\Draft', '\\Seen']);
      expect(await view.info('INBOX')).to.include({ unseen: 0 });
      expect((await view.info('INBOX')).keywords).to.deep.equal(['$Label1']);
      expect(await codeOf(view.append('Nope', message('x')))).to.equal('NO_SUCH_MAILBOX');
      await view.release();
    });

    it('sets, adds and removes flags, skipping unknown UIDs', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.append('INBOX', message('1'));
      await view.append('INBOX', message('2'), ['\\Flagged']);
      let updated = await view.setFlags('INBOX', [1, 2, 99], ['\\Seen', 'Work'], 'add');
      expect(updated.map((m) => [m.uid, [...m.flags].sort()])).to.deep.equal([
        [1, ['Work', '\\Seen']],
        [2, ['Work', '\\Flagged', '\\Seen']],
      ]);
      updated = await view.setFlags('INBOX', [2], ['\\Flagged', 'work'], 'remove');
      expect([...updated[0]!.flags]).to.deep.equal(['\\Seen']);
      updated = await view.setFlags('INBOX', [1], ['\\Answered'], 'set');
      expect([...updated[0]!.flags]).to.deep.equal(['\\Answered']);
      const listed = await view.messages('INBOX');
      expect(listed.map((m) => [...m.flags].sort())).to.deep.equal([['\\Answered'], ['\\Seen']]);
      expect(await view.info('INBOX')).to.include({ unseen: 1 });
      expect((await view.info('INBOX')).keywords).to.deep.equal([]);
      await view.release();
    });

    it('copies with flags and dates and resolves (source, new) uid pairs', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Archive');
      await view.append('Archive', message('already there'));
      const date = new Date('2023-01-01T00:00:00Z');
      await view.append('INBOX', message('a'), ['\\Seen', 'Tag'], date);
      await view.append('INBOX', message('b'));
      await view.append('INBOX', message('c'));
      const pairs = await view.copy('INBOX', [3, 1, 42], 'Archive');
      expect(pairs).to.deep.equal([
        [1, 2],
        [3, 3],
      ]);
      const archived = await view.messages('Archive');
      expect(archived[1]!.internalDate.getTime()).to.equal(date.getTime());
      expect([...archived[1]!.flags].sort()).to.deep.equal(['Tag', '\\Seen']);
      expect((await archived[2]!.raw()).equals(message('c'))).to.equal(true);
      expect((await view.info('INBOX')).messages).to.equal(3);
      expect(await codeOf(view.copy('INBOX', [1], 'Nope'))).to.equal('NO_SUCH_MAILBOX');
      await view.release();
    });

    it('moves messages (copy then expunge)', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      await view.create('Trash');
      await view.append('INBOX', message('a'));
      await view.append('INBOX', message('b'));
      expect(await view.move('INBOX', [2], 'Trash')).to.deep.equal([[2, 1]]);
      expect((await view.messages('INBOX')).map((m) => m.uid)).to.deep.equal([1]);
      expect((await (await view.messages('Trash'))[0]!.raw()).equals(message('b'))).to.equal(true);
      await view.release();
    });

    it('expunges, never reusing a UID', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      for (const n of [1, 2, 3]) await view.append('INBOX', message(`m${n}`));
      expect(await view.expunge('INBOX', [3, 2, 7])).to.deep.equal([2, 3]);
      expect(await view.expunge('INBOX', [2])).to.deep.equal([]);
      expect((await view.messages('INBOX')).map((m) => m.uid)).to.deep.equal([1]);
      expect((await view.info('INBOX')).uidNext).to.equal(4);
      expect((await view.append('INBOX', message('m4'))).uid).to.equal(4);
      expect((await store.deliver('alice@example.org', message('m5'))).uid).to.equal(5);
      await view.release();
    });

    it('reports messages not yet listed as recent', async () => {
      const store = await open();
      await store.deliver('alice@example.org', message('x'));
      const view = await store.openUser('alice');
      expect((await view.info('INBOX')).recent).to.equal(1);
      await view.messages('INBOX', { peek: true });
      expect((await view.info('INBOX')).recent, 'a peek keeps the hint').to.equal(1);
      await view.messages('INBOX');
      expect((await view.info('INBOX')).recent).to.equal(0);
      await view.release();
    });
  });

  /** Every store we ship offers both capabilities; the suite checks it rather than skipping. */
  const watching = async (): Promise<MailStore & MailboxWatching> => {
    const store = await open();
    expect(supportsWatch(store), 'the store offers MailboxWatching').to.equal(true);
    return store as MailStore & MailboxWatching;
  };
  const locking = async (): Promise<MailStore & MaildropLocking> => {
    const store = await open();
    expect(supportsMaildropLock(store), 'the store offers MaildropLocking').to.equal(true);
    return store as MailStore & MaildropLocking;
  };

  describe('modseq (RFC 7162)', () => {
    it('gives every append and every real flag change a new, larger modseq; an expunge raises HIGHESTMODSEQ', async () => {
      const store = await open();
      const view = await store.openUser('alice');
      const first = await store.deliver('alice@example.org', message('1'));
      const second = await view.append('INBOX', message('2'));
      expect(first.modseq).to.be.greaterThan(0);
      expect(second.modseq).to.be.greaterThan(first.modseq);
      expect((await view.info('INBOX')).highestModseq).to.equal(second.modseq);
      const [changed] = await view.setFlags('INBOX', [first.uid], ['\\Seen'], 'add');
      expect(changed!.modseq).to.be.greaterThan(second.modseq);
      const [same] = await view.setFlags('INBOX', [first.uid], ['\\Seen'], 'add');
      expect(same!.modseq, 'no change, no new modseq').to.equal(changed!.modseq);
      expect((await view.messages('INBOX')).map((m) => m.modseq)).to.deep.equal([changed!.modseq, second.modseq]);
      const before = (await view.info('INBOX')).highestModseq;
      expect(before).to.equal(changed!.modseq);
      await view.expunge('INBOX', [second.uid]);
      expect((await view.info('INBOX')).highestModseq).to.be.greaterThan(before);
      const other = (await view.list()).find((box) => box.name === 'INBOX');
      expect(other!.highestModseq).to.equal((await view.info('INBOX')).highestModseq);
      await view.release();
    });
  });

  describe('object identity (RFC 8474 OBJECTID, RFC 8514 SAVEDATE)', () => {
    const OBJECT_ID = /^[A-Za-z0-9_-]{1,255}$/;

    it('gives every message an EMAILID and a save date that stay, and distinct content distinct EMAILIDs', async function () {
      const store = await open();
      if (!supportsObjectIdentity(store)) this.skip();
      const view = await store.openUser('alice');
      const before = Date.now();
      const first = await store.deliver('alice@example.org', message('1'));
      const second = await view.append('INBOX', message('2'), [], new Date('2001-02-03T04:05:06Z'));
      const after = Date.now();
      for (const m of [first, second]) {
        expect(hasMessageIdentity(m)).to.equal(true);
        if (!hasMessageIdentity(m)) return;
        expect(m.emailId).to.match(OBJECT_ID);
        expect(m.saveDate, 'save date is when it was stored, not the internal date').to.be.instanceOf(Date);
        expect(m.saveDate!.getTime()).to.be.within(before - 1000, after + 1000);
      }
      const listed = await view.messages('INBOX');
      const ids = listed.map((m) => (hasMessageIdentity(m) ? m.emailId : undefined));
      expect(ids[0]).to.not.equal(ids[1]);
      await view.setFlags('INBOX', [first.uid], ['\\Seen'], 'add');
      const again = await view.messages('INBOX');
      expect(again.map((m) => (hasMessageIdentity(m) ? m.emailId : undefined)), 'a flag change keeps EMAILID').to.deep.equal(ids);
      expect(again.map((m) => (hasMessageIdentity(m) ? m.saveDate?.getTime() : undefined))).to.deep.equal(
        listed.map((m) => (hasMessageIdentity(m) ? m.saveDate?.getTime() : undefined)),
      );
      await view.create('Archive');
      await view.copy('INBOX', [second.uid], 'Archive');
      const [copy] = await view.messages('Archive');
      expect(hasMessageIdentity(copy!) && copy.emailId).to.match(OBJECT_ID);
      expect(hasMessageIdentity(copy!) && copy.saveDate!.getTime()).to.be.at.least(hasMessageIdentity(second) ? second.saveDate!.getTime() : 0);
      await view.release();
    });

    it('keeps the EMAILID of a message through COPY and MOVE (RFC 8474 §5.1)', async function () {
      const store = await open();
      if (!supportsObjectIdentity(store)) this.skip();
      const view = await store.openUser('alice');
      const first = await store.deliver('alice@example.org', message('kept'));
      const other = await store.deliver('alice@example.org', message('moved'));
      const idOf = (m: StoredMessage): string | undefined => (hasMessageIdentity(m) ? m.emailId : undefined);
      const [firstId, otherId] = [idOf(first), idOf(other)];
      expect(firstId).to.match(OBJECT_ID);
      await view.create('Archive');
      await view.copy('INBOX', [first.uid], 'Archive');
      await view.copy('INBOX', [first.uid], 'INBOX');
      await view.move('INBOX', [other.uid], 'Archive');
      const ids = async (box: string): Promise<Array<string | undefined>> => (await view.messages(box)).map(idOf);
      expect(await ids('Archive'), 'a copy and a moved message keep their EMAILIDs').to.deep.equal([firstId, otherId]);
      expect(await ids('INBOX'), 'a copy into the same mailbox too').to.deep.equal([firstId, firstId]);
      await view.release();
    });

    it('gives every mailbox its own MAILBOXID, kept by RENAME and new after DELETE and CREATE', async function () {
      const store = await open();
      if (!supportsObjectIdentity(store)) this.skip();
      const view = await store.openUser('alice');
      const idOf = async (name: string): Promise<string> => {
        const info = await view.info(name);
        expect(hasMailboxIdentity(info), `${name} has a MAILBOXID`).to.equal(true);
        return hasMailboxIdentity(info) ? info.mailboxId : '';
      };
      await view.create('Work');
      await view.create('Play');
      const inbox = await idOf('INBOX');
      const work = await idOf('Work');
      expect(work).to.match(OBJECT_ID);
      expect(new Set([inbox, work, await idOf('Play')]).size).to.equal(3);
      await view.rename('Work', 'Job');
      expect(await idOf('Job'), 'RENAME keeps it').to.equal(work);
      await view.delete('Job');
      await view.create('Job');
      expect(await idOf('Job'), 'a new mailbox under an old name gets a new one').to.not.equal(work);
      await store.deliver('alice@example.org', message('x'));
      await view.rename('INBOX', 'Old');
      expect(await idOf('INBOX'), 'INBOX keeps its own after RENAME INBOX').to.equal(inbox);
      expect(await idOf('Old')).to.not.equal(inbox);
      const listed = (await view.list()).find((box) => box.name === 'Old');
      expect(listed && hasMailboxIdentity(listed) ? listed.mailboxId : undefined, 'list() carries it too').to.equal(await idOf('Old'));
      await view.release();
    });
  });

  describe('delivery envelope', () => {
    it('keeps the envelope given to deliver and returns it on the message', async () => {
      const store = await open();
      const envelope: DeliveryEnvelope = {
        mailFrom: 'sender@example.net',
        rcptTo: ['alice@example.org', 'hidden@example.org'],
        helo: 'client.example.net',
        authUser: 'sender',
        clientAddress: '127.0.0.5',
        clientPort: 40000,
        tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
        protocol: 'smtp',
        receivedAt: '2024-01-01T00:00:00.000Z',
      };
      const stored = await store.deliver('alice@example.org', message('x'), { envelope });
      expect(stored.envelope).to.deep.equal(envelope);
      const view = await store.openUser('alice');
      const [listed] = await view.messages('INBOX');
      expect(listed!.envelope).to.deep.equal(envelope);
      const appended = await view.append('INBOX', message('y'));
      expect(appended.envelope).to.equal(undefined);
      await view.release();
    });
  });

  describe('watch', () => {
    it('announces deliveries, flag changes, expunges and mailbox changes before the call resolves', async () => {
      const store = await watching();
      const events: MailboxEvent[] = [];
      const stop = store.watch((event) => events.push(event));
      const view = await store.openUser('alice');
      await store.deliver('alice@example.org', message('x'));
      expect(events).to.deep.equal([{ type: 'exists', username: 'alice', mailbox: 'INBOX', uid: 1 }]);
      await view.setFlags('INBOX', [1], ['\\Seen'], 'add');
      await view.setFlags('INBOX', [1], ['\\Seen'], 'add');
      await view.expunge('INBOX', [1]);
      await view.create('Box');
      await view.rename('Box', 'Crate');
      await view.delete('Crate');
      expect(events.slice(1)).to.deep.equal([
        { type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [1] },
        { type: 'expunge', username: 'alice', mailbox: 'INBOX', uids: [1] },
        { type: 'mailbox', username: 'alice', mailbox: 'Box', change: 'created' },
        { type: 'mailbox', username: 'alice', mailbox: 'Box', change: 'renamed', newName: 'Crate' },
        { type: 'mailbox', username: 'alice', mailbox: 'Crate', change: 'deleted' },
      ]);
      stop();
      await store.deliver('alice@example.org', message('y'));
      expect(events).to.have.length(6);
      await view.release();
    });

    it('keeps the change when a listener throws', async () => {
      const store = await watching();
      const warned = new Promise<Error>((resolve) => {
        const onWarning = (warning: Error): void => {
          if (warning.message !== 'listener bug') return;
          process.off('warning', onWarning);
          resolve(warning);
        };
        process.on('warning', onWarning);
      });
      const stop = store.watch(() => {
        throw new Error('listener bug');
      });
      expect((await store.deliver('alice@example.org', message('x'))).uid).to.equal(1);
      expect((await warned).message).to.equal('listener bug');
      stop();
    });
  });

  describe('maildrop lock', () => {
    it('refuses a second lock with IN_USE until the first is released', async () => {
      const store = await locking();
      const release = await store.lock('alice', 'pop3 #1');
      expect(await codeOf(store.lock('al@example.org', 'pop3 #2'))).to.equal('IN_USE');
      const other = await store.lock('bob@example.org', 'pop3 #3');
      release();
      release();
      const again = await store.lock('alice', 'pop3 #2');
      expect(await codeOf(store.lock('alice', 'pop3 #4'))).to.equal('IN_USE');
      again();
      other();
      expect(await codeOf(store.lock('nobody', 'pop3'))).to.equal('NO_SUCH_USER');
    });
  });

  describe('test double helpers', () => {
    it('lists all messages oldest first and purges them without reusing UIDs', async () => {
      const store = await watching();
      await store.deliver('bob@example.org', message('1'), { internalDate: new Date('2024-01-01T00:00:01Z') });
      await store.deliver('alice@example.org', message('2'), { internalDate: new Date('2024-01-01T00:00:02Z') });
      await store.deliver('bob@example.org', message('3'), { internalDate: new Date('2024-01-01T00:00:03Z') });
      const all = await allMessages(store);
      expect(all.map((row) => [row.username, row.mailbox, row.message.uid])).to.deep.equal([
        ['bob@example.org', 'INBOX', 1],
        ['alice', 'INBOX', 1],
        ['bob@example.org', 'INBOX', 2],
      ]);
      expect((await all[1]!.message.raw()).equals(message('2'))).to.equal(true);
      const events: MailboxEvent[] = [];
      const stop = store.watch((event) => events.push(event));
      await purgeMessages(store);
      stop();
      expect(await allMessages(store)).to.deep.equal([]);
      expect(events.filter((e) => e.type === 'expunge')).to.have.length(2);
      expect(await store.users.list()).to.deep.equal(['alice', 'bob@example.org']);
      expect((await store.deliver('bob@example.org', message('4'))).uid).to.equal(3);
    });
  });
}
