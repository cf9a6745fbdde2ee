/**
 * The Maildir store around its folders, on real directories (issue 16, survivors of `maildir-mail-store.ts`'s and
 * `maildir-user-mailboxes.ts`'s mutation runs): another process's users-file changes seen within USERS_RECHECK_MS
 * and the login cache cleared by them, the subscriptions read cache, watching folders (the 1 s poll held), the
 * folder handles `close()` releases, and the odd directory names `mailboxNames` skips. `Date.now` is replaced by a
 * test clock in the cases that need time to pass, so no case waits.
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAILDROP_LOCK_FILE, MaildirMailStore, SUBSCRIPTIONS_FILE, USERS_FILE, USERS_LOCK_FILE } from '../../lib/backends/maildir/maildir-mail-store.js';
import { WATCH_POLL_MS } from '../../lib/backends/maildir/maildir-folder.js';
import type { MailboxEvent } from '../../lib/contracts/mail-store.js';
import { nextUidValidity } from '../../lib/backends/shared/store-events.js';
import { heldIntervals } from '../support/held-timers.js';
import { message } from './mail-store-suite.js';
import { fileHandlePrototype, openUnder } from '../support/open-files.js';
import { testClock } from '../support/test-clock.js';

/** A whole second in ms. */
const T = 1_800_000_000_000;

describe('MaildirMailStore around its folders (mutation testing)', () => {
  let root: string;
  const stores: MaildirMailStore[] = [];
  const realNow = Date.now;
  const clock = testClock();
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-store-'));
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await rm(root, { recursive: true, force: true });
  });
  const useClock = (t: number): void => clock.use(t);
  function store(keepPlaintextPasswords = false): MaildirMailStore {
    const s = new MaildirMailStore({ root, fsync: false, keepPlaintextPasswords });
    stores.push(s);
    return s;
  }
  const errorOf = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => 'resolved',
      (e: Error & { code?: string }) => `${e.name} ${e.code} ${e.message}`,
    );

  it("sees another process's users-file change after USERS_RECHECK_MS (1 s), at once on a miss, and forgets cached logins then", async () => {
    const a = store(true);
    const b = store(true);
    await a.users.add({ username: 'alice', password: 'one', addresses: ['alice@example.org'] });
    expect(await a.users.verify('alice', 'one')).to.equal('alice'); // cached now
    useClock(T);
    expect(await a.users.list()).to.deep.equal(['alice']); // a full re-check: the next one is due at T + 1000
    await b.users.add({ username: 'alice', password: 'two', addresses: ['alice@example.org'] });
    clock.t = T + 999;
    expect(await a.users.secretFor('alice')).to.equal('one');
    expect(await a.users.verify('alice', 'one')).to.equal('alice');
    clock.t = T + 1000;
    expect(await a.users.secretFor('alice')).to.equal('two');
    expect(await a.users.verify('alice', 'one')).to.equal(undefined);
    // A miss re-reads at once: a user another process just added is found, not "no such user".
    await b.users.add({ username: 'bob', password: 'b' });
    expect(await a.users.find('bob')).to.equal('bob');
    expect(await a.users.secretFor('bob')).to.equal('b');
  });

  it('reads users.json without a users array as no users', async () => {
    await writeFile(join(root, USERS_FILE), JSON.stringify({ version: 1, people: [{ username: 'x' }] }));
    expect(await store().users.list()).to.deep.equal([]);
    await writeFile(join(root, USERS_FILE), JSON.stringify({ version: 1, users: { alice: {} } }));
    expect(await store().users.list()).to.deep.equal([]);
    await writeFile(join(root, USERS_FILE), 'null');
    expect(await store().users.list()).to.deep.equal([]);
  });

  it('creates a user on delivery with autoCreateUsers: an address lower-cased, a plain name kept as given', async () => {
    const s = new MaildirMailStore({ root, fsync: false, autoCreateUsers: true });
    stores.push(s);
    await s.deliver('Carol@Example.ORG', message('c'));
    await s.deliver('Dave', message('d'));
    expect(await s.users.list()).to.deep.equal(['Dave', 'carol@example.org']);
    expect(await s.users.verify('carol@example.org', 'Carol@Example.ORG')).to.equal('carol@example.org');
  });

  it('reuses the subscriptions read while the file keeps its identity, unless it changed within the last second', async () => {
    const s = store();
    await s.users.add({ username: 'alice', password: 'a' });
    const user = await s.openUser('alice');
    const path = join(root, 'mail', 'alice', SUBSCRIPTIONS_FILE);
    await user.create('Aa');
    await user.create('Bb');
    await user.subscribe('Aa', true);
    // Another tool rewrites the file in place with as many octets and the same mtime: the same identity.
    const sameIdentity = async (names: string): Promise<void> => {
      await writeFile(path, names);
      await utimes(path, (T - 1000) / 1000, (T - 1000) / 1000);
    };
    await sameIdentity('Aa\n');
    useClock(T); // the file changed exactly 1 s ago: not trusted yet
    expect(await user.subscriptions()).to.deep.equal(['Aa']);
    await sameIdentity('Bb\n');
    expect(await user.subscriptions()).to.deep.equal(['Bb']);
    clock.t = T + 1; // now older than a second: what is read is kept while the identity holds
    expect(await user.subscriptions()).to.deep.equal(['Bb']);
    await sameIdentity('Aa\n');
    expect(await user.subscriptions()).to.deep.equal(['Bb']);
    await writeFile(path, 'Aa\nBb\n');
    expect(await user.subscriptions()).to.deep.equal(['Aa', 'Bb']);
  });

  describe('watching (the 1 s poll held)', () => {
    let timers: ReturnType<typeof heldIntervals>;
    beforeEach(() => {
      timers = heldIntervals(WATCH_POLL_MS);
    });
    afterEach(() => {
      timers.restore();
    });
    const live = (): number => timers.armed.filter((t) => !timers.cleared.has(t.handle)).length;

    it('watches every open folder while someone watches (also folders opened later), until the last watcher stops', async () => {
      const s = store();
      await s.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
      await s.deliver('alice@example.org', message('m'));
      const events: MailboxEvent[] = [];
      const stop1 = s.watch((e) => events.push(e));
      expect(live()).to.equal(1);
      const stop2 = s.watch(() => undefined);
      expect(live()).to.equal(1);
      const user = await s.openUser('alice');
      await user.create('Later');
      expect(live()).to.equal(2);
      stop1();
      stop1(); // once only: the second watcher still watches
      expect(live()).to.equal(2);
      await user.create('Other');
      expect(live()).to.equal(3);
      stop2();
      expect(live()).to.equal(0);
      await user.create('Unwatched');
      expect(live()).to.equal(0);
      expect(events.map((e) => e.type)).to.deep.equal(['mailbox']);
    });

    it('reports another process\'s delivery into a renamed folder under its new name', async () => {
      const a = store();
      const b = store();
      await a.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
      await a.deliver('alice@example.org', message('first')); // INBOX is the first folder the store holds
      const user = await a.openUser('alice');
      await user.create('Old');
      const events: MailboxEvent[] = [];
      a.watch((e) => events.push(e));
      await user.rename('Old', 'New');
      events.length = 0;
      await b.deliver('alice@example.org', message('m'), { mailbox: 'New' });
      timers.armed.filter((t) => !timers.cleared.has(t.handle)).forEach((t) => t.fire());
      while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(events).to.deep.equal([{ type: 'exists', username: 'alice', mailbox: 'New', uid: 1 }]);
    });
  });

  it('close() waits for the folders and releases their files', async () => {
    const s = new MaildirMailStore({ root });
    await s.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
    await s.deliver('alice@example.org', message('m'));
    await s.deliver('alice@example.org', message('n'), { flags: ['\\Seen'] });
    const openUnderRoot = (): string[] => openUnder(root);
    expect(openUnderRoot()).to.not.deep.equal([]);
    await s.close();
    expect(openUnderRoot()).to.deep.equal([]);
  });

  it('lists only folder directories whose name maps back to them (no .INBOX, no other spelling, no plain files)', async () => {
    const s = store();
    await s.users.add({ username: 'alice', password: 'a' });
    const user = await s.openUser('alice');
    await user.create('Real');
    const home = join(root, 'mail', 'alice');
    for (const odd of ['.INBOX', '.inbox', '.a..b', '.&AGE-', '.x&']) await mkdir(join(home, odd, 'cur'), { recursive: true });
    await mkdir(join(home, '.NoCur'));
    expect((await user.list()).map((m) => m.name).sort()).to.deep.equal(['INBOX', 'Real']);
    expect(await errorOf(user.info('NoCur'))).to.equal('MailStoreError NO_SUCH_MAILBOX no mailbox NoCur');
  });

  describe('one user\'s view', () => {
    async function alice(): Promise<{ s: MaildirMailStore; user: Awaited<ReturnType<MaildirMailStore['openUser']>>; events: MailboxEvent[] }> {
      const s = store();
      await s.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
      const events: MailboxEvent[] = [];
      const stop = s.watch((e) => events.push(e));
      stops.push(stop);
      return { s, user: await s.openUser('alice'), events };
    }
    const stops: Array<() => void> = [];
    afterEach(() => {
      for (const stop of stops.splice(0)) stop();
    });

    it('lists a \\Noselect parent with zero counters and its subscription, and announces each level created and renamed', async () => {
      const { user, events } = await alice();
      await user.create('Work/2024');
      await user.subscribe('Work', true);
      await user.delete('Work');
      const work = (await user.list()).find((m) => m.name === 'Work');
      expect(work).to.deep.equal({
        name: 'Work',
        noselect: true,
        hasChildren: true,
        uidValidity: 0,
        uidNext: 0,
        highestModseq: 0,
        messages: 0,
        unseen: 0,
        recent: 0,
        keywords: [],
        subscribed: true,
      });
      await user.rename('Work/2024', 'Old/Years/2024');
      expect(events).to.deep.equal([
        { type: 'mailbox', username: 'alice', mailbox: 'Work', change: 'created' },
        { type: 'mailbox', username: 'alice', mailbox: 'Work/2024', change: 'created' },
        { type: 'mailbox', username: 'alice', mailbox: 'Work', change: 'deleted' },
        { type: 'mailbox', username: 'alice', mailbox: 'Work/2024', change: 'renamed', newName: 'Old/Years/2024' },
        { type: 'mailbox', username: 'alice', mailbox: 'Old', change: 'created' },
        { type: 'mailbox', username: 'alice', mailbox: 'Old/Years', change: 'created' },
      ]);
    });

    it('announces the expunge of the messages of a deleted mailbox, and nothing for an empty one', async () => {
      const { s, user, events } = await alice();
      await user.create('Full');
      await user.create('Empty');
      await s.deliver('alice@example.org', message('a'), { mailbox: 'Full' });
      await s.deliver('alice@example.org', message('b'), { mailbox: 'Full' });
      events.length = 0;
      await user.delete('Full');
      await user.delete('Empty');
      // No 'exists': a watcher's refresh in flight while the folder is deleted reports nothing (MaildirFolder.catchUp).
      expect(events).to.deep.equal([
        { type: 'expunge', username: 'alice', mailbox: 'Full', uids: [1, 2] },
        { type: 'mailbox', username: 'alice', mailbox: 'Full', change: 'deleted' },
        { type: 'mailbox', username: 'alice', mailbox: 'Empty', change: 'deleted' },
      ]);
    });

    it('does not rewrite the subscriptions file for a subscription that is already so', async () => {
      const { user } = await alice();
      await user.create('Box');
      await user.subscribe('Box', true);
      const path = join(root, 'mail', 'alice', SUBSCRIPTIONS_FILE);
      await utimes(path, 1_000_000_000, 1_000_000_000); // a rewrite would give the file a new mtime
      await user.subscribe('Box', true);
      await user.subscribe('Other', false);
      expect((await stat(path)).mtimeMs).to.equal(1_000_000_000_000);
      await user.subscribe('Box', false);
      expect((await stat(path)).mtimeMs).to.not.equal(1_000_000_000_000);
      // Another tool's unsorted list is answered sorted.
      await writeFile(path, 'Zed\nBox\n');
      expect(await user.subscriptions()).to.deep.equal(['Box', 'Zed']);
    });

    it('creates and announces only the levels that are missing, also for a rename target', async () => {
      const { user, events } = await alice();
      await user.create('P');
      await user.create('X');
      events.length = 0;
      await user.create('P/Q');
      await user.rename('X', 'P/X');
      expect(events).to.deep.equal([
        { type: 'mailbox', username: 'alice', mailbox: 'P/Q', change: 'created' },
        { type: 'mailbox', username: 'alice', mailbox: 'X', change: 'renamed', newName: 'P/X' },
      ]);
      expect(await errorOf(user.create('P'))).to.equal('MailStoreError ALREADY_EXISTS mailbox P exists');
      expect(await errorOf(user.delete('inbox'))).to.equal('MailStoreError CANNOT INBOX cannot be deleted');
    });

    it('announces no expunge of nothing, passes on a copy that fails otherwise than a vanished message, refuses after release', async () => {
      const { s, user, events } = await alice();
      await s.deliver('alice@example.org', message('a'));
      events.length = 0;
      expect(await user.expunge('INBOX', [99])).to.deep.equal([]);
      expect(events).to.deep.equal([]);
      await user.create('Dest');
      const tmp = join(root, 'mail', 'alice', '.Dest', 'tmp');
      await rm(tmp, { recursive: true });
      await writeFile(tmp, ''); // tmp/ is a file: linking and writing the copy fail with ENOTDIR
      expect(await errorOf(user.copy('INBOX', [1], 'Dest'))).to.match(/^Error ENOTDIR /);
      await user.release();
      expect(await errorOf(user.list())).to.equal('MailStoreError CANNOT mailbox view released');
    });

    it('leaves out of LIST a folder whose new/ vanished meanwhile, and refuses it by name', async () => {
      const { user } = await alice();
      await user.create('Gone');
      await user.create('Kept');
      expect((await user.list()).map((m) => m.name)).to.deep.equal(['INBOX', 'Gone', 'Kept']);
      await rm(join(root, 'mail', 'alice', '.Gone', 'new'), { recursive: true });
      expect((await user.list()).map((m) => m.name)).to.deep.equal(['INBOX', 'Kept']);
      await rm(join(root, 'mail', 'alice', '.Kept', 'new'), { recursive: true });
      expect(await errorOf(user.info('Kept'))).to.equal('MailStoreError NO_SUCH_MAILBOX mailbox vanished');
    });

    it('announces no flag change that changes nothing, and one copy per message', async () => {
      const { s, user, events } = await alice();
      await user.create('Dest');
      await s.deliver('alice@example.org', message('a'));
      await s.deliver('alice@example.org', message('b'));
      events.length = 0;
      await user.setFlags('INBOX', [1, 2], ['\\Seen'], 'remove');
      expect(await user.copy('INBOX', [2, 1, 9], 'Dest')).to.deep.equal([
        [1, 1],
        [2, 2],
      ]);
      expect(events).to.deep.equal([
        { type: 'exists', username: 'alice', mailbox: 'Dest', uid: 1 },
        { type: 'exists', username: 'alice', mailbox: 'Dest', uid: 2 },
      ]);
    });
  });

  describe('users file, locks, INBOX and UIDVALIDITY', () => {
    it("re-checks at once for a list, a delivery's unknown recipient and a change (another process's users are kept)", async () => {
      const a = store();
      const b = store();
      await a.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
      useClock(realNow());
      expect(await a.users.list()).to.deep.equal(['alice']);
      await b.users.add({ username: 'carol', password: 'c', addresses: ['carol@example.org'] });
      clock.t += 1;
      expect(await a.users.list()).to.deep.equal(['alice', 'carol']);
      await b.users.add({ username: 'dave', password: 'd', addresses: ['dave@example.org'] });
      clock.t += 1;
      expect((await a.deliver('dave@example.org', message('m'))).uid).to.equal(1);
      await b.users.add({ username: 'erin', password: 'e' });
      clock.t += 1;
      await a.users.add({ username: 'frank', password: 'f' });
      const file = JSON.parse(await readFile(join(root, USERS_FILE), 'utf8')) as { users: Array<{ username: string }> };
      expect(file.users.map((u) => u.username).sort()).to.deep.equal(['alice', 'carol', 'dave', 'erin', 'frank']);
    });

    it('keys the login cache by login and password apart ("a"+"bc" is not "ab"+"c"), and names the unknown user', async () => {
      const s = store();
      await s.users.add({ username: 'a', password: 'bc' });
      expect(await s.users.verify('a', 'bc')).to.equal('a');
      expect(await s.users.verify('ab', 'c')).to.equal(undefined);
      expect(await errorOf(s.deliver('nobody@example.org', message('m')))).to.equal('MailStoreError NO_SUCH_USER no such user');
    });

    it('writes users.json indented with a final newline, under mail/ made 0700 at first use', async () => {
      const s = store();
      expect(await s.users.list()).to.deep.equal([]);
      expect((await stat(join(root, 'mail'))).mode & 0o777).to.equal(0o700);
      await s.users.add({ username: 'alice', password: 'a' });
      const text = await readFile(join(root, USERS_FILE), 'utf8');
      expect(text.endsWith('}\n')).to.equal(true);
      expect(text.startsWith('{\n "version": 1,\n "users": [\n')).to.equal(true);
    });

    it('passes on a users file it cannot read (a directory), and a users lock held past 10 s as IN_USE', async () => {
      await mkdir(join(root, USERS_FILE));
      expect(await errorOf(store().users.list())).to.match(/^Error EISDIR /);
      await rm(join(root, USERS_FILE), { recursive: true });
      const s = store();
      expect(await s.users.list()).to.deep.equal([]);
      await writeFile(join(root, USERS_LOCK_FILE), `${process.ppid} ${hostname()} users\n`);
      let t = realNow();
      Date.now = () => (t += 1000); // every look at the clock is a second later: the 10 s wait ends after a few retries
      expect(await errorOf(s.users.add({ username: 'x', password: 'x' }))).to.equal('MailStoreError IN_USE the users file is locked by another process');
      Date.now = realNow;
      await rm(join(root, USERS_LOCK_FILE));
      await mkdir(join(root, USERS_LOCK_FILE));
      expect(await errorOf(s.users.add({ username: 'x', password: 'x' }))).to.match(/^Error EISDIR /);
    });

    it('keeps the maildrop lock fresh, names the user when it is taken, and passes on other lock errors', async () => {
      const s = store();
      await s.users.add({ username: 'alice', password: 'a' });
      await s.users.add({ username: 'bob', password: 'b' });
      const timers = heldIntervals(30_000);
      try {
        const release = await s.lock('alice', 'pop3');
        expect(timers.armed).to.have.length(1);
        expect(await errorOf(s.lock('alice', 'pop3'))).to.equal('MailStoreError IN_USE maildrop of alice is locked');
        release();
      } finally {
        timers.restore();
      }
      await mkdir(join(root, 'mail', 'bob', MAILDROP_LOCK_FILE), { recursive: true });
      expect(await errorOf(s.lock('bob', 'pop3'))).to.match(/^Error EISDIR /);
    });

    it('makes INBOX again (no Maildir++ marker) when its directory vanished, and writes subscriptions sorted', async () => {
      const s = store();
      await s.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
      await s.deliver('alice@example.org', message('a'));
      await s.deliver('alice@example.org', message('b'));
      const home = join(root, 'mail', 'alice');
      expect(await readdir(home)).to.not.include('maildirfolder');
      const user = await s.openUser('alice');
      expect((await user.info('INBOX')).messages).to.equal(2);
      for (const entry of await readdir(home)) await rm(join(home, entry), { recursive: true });
      expect((await user.info('INBOX')).messages).to.equal(0);
      expect((await s.deliver('alice@example.org', message('c'))).uid).to.equal(1);
      await user.create('B');
      await user.create('A');
      await user.subscribe('B', true);
      await user.subscribe('A', true);
      expect(await readFile(join(home, SUBSCRIPTIONS_FILE), 'utf8')).to.equal('A\nB\n');
    });

    it('gives a new mailbox a UIDVALIDITY above every one it has seen on disk', async () => {
      const s = store();
      await s.users.add({ username: 'alice', password: 'a' });
      // Ahead of every UIDVALIDITY this process gave so far (a module-wide counter that earlier cases raised), within int4.
      const high = nextUidValidity(0) + 1000;
      const dir = join(root, 'mail', 'alice', '.Far');
      for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
      await writeFile(join(dir, 'postern-log'), JSON.stringify({ t: 'h', v: 2, uv: high, un: 1, hm: 0 }) + '\n');
      const user = await s.openUser('alice');
      expect((await user.info('Far')).uidValidity).to.equal(high);
      await user.create('Newer');
      expect((await user.info('Newer')).uidValidity).to.be.greaterThan(high);
    });

    it('fsyncs nothing with fsync: false', async () => {
      const proto = await fileHandlePrototype<{ sync(this: FileHandle): Promise<void>; datasync(this: FileHandle): Promise<void> }>();
      const { sync, datasync } = proto;
      let synced = 0;
      proto.sync = function (this: FileHandle) {
        synced++;
        return sync.call(this);
      };
      proto.datasync = function (this: FileHandle) {
        synced++;
        return datasync.call(this);
      };
      try {
        const s = store();
        await s.users.add({ username: 'alice', password: 'a', addresses: ['alice@example.org'] });
        await s.deliver('alice@example.org', message('a'));
        await (await s.openUser('alice')).subscribe('INBOX', true);
      } finally {
        proto.sync = sync;
        proto.datasync = datasync;
      }
      expect(synced).to.equal(0);
    });

    it('runs one user\'s tasks in order: a task queued after a finished one still waits for the one running', async () => {
      const s = store();
      const order: string[] = [];
      let letGo: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (letGo = resolve));
      const first = s.run('u', async () => order.push('first'));
      const second = s.run('u', async () => {
        await gate;
        order.push('second');
      });
      await first;
      await new Promise((resolve) => setImmediate(resolve));
      const third = s.run('u', async () => order.push('third'));
      await new Promise((resolve) => setImmediate(resolve));
      letGo();
      await Promise.all([second, third]);
      expect(order).to.deep.equal(['first', 'second', 'third']);
    });
  });
});
