import { expect } from 'chai';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { appendRecordOf, FOLDER_LOG_FILE, parseRecord, type Entry } from '../../lib/backends/maildir/folder-state.js';
import { hasMessageIdentity } from '../../lib/contracts/mail-store.js';
import { acquireDotLock, DotLockBusyError } from '../../lib/backends/maildir/dot-lock.js';
import { message } from './mail-store-suite.js';

/** Parsed records of a folder log. */
async function records(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(path, FOLDER_LOG_FILE), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('MaildirMailStore state log', () => {
  let root: string;
  const inbox = (): string => join(root, 'mail', 'alice');
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-log-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function withAlice(): Promise<MaildirMailStore> {
    const store = new MaildirMailStore({ root, fsync: false });
    await store.users.add({ username: 'alice', password: 'secret-a', addresses: ['alice@example.org'] });
    return store;
  }

  it('appends one record per delivery, flag change and expunge, each with a new modseq, and rewrites nothing', async () => {
    const store = await withAlice();
    await store.deliver('alice@example.org', message('one'));
    const before = (await stat(join(inbox(), FOLDER_LOG_FILE))).ino;
    await store.deliver('alice@example.org', message('two'));
    const view = await store.openUser('alice');
    await view.setFlags('INBOX', [1], ['\\Seen', 'Work'], 'add');
    await view.expunge('INBOX', [2]);
    expect((await stat(join(inbox(), FOLDER_LOG_FILE))).ino).to.equal(before);
    const changes = (await records(inbox())).filter((r) => r.t === 'a' || r.t === 'f' || r.t === 'x');
    expect(changes.map((r) => [r.t, r.u, r.m])).to.deep.equal([
      ['a', 1, 1],
      ['a', 2, 2],
      ['f', 1, 3],
      ['x', [2], 4],
    ]);
    expect(changes[2]).to.include({ l: 'S' }).and.to.have.deep.property('k', ['Work']);
    await view.release();
  });

  it('picks up flags another Maildir tool set by renaming the file, with a new modseq and a flags event', async () => {
    const store = await withAlice();
    await store.deliver('alice@example.org', message('one'));
    const view = await store.openUser('alice');
    const [before] = await view.messages('INBOX'); // moves it to cur/ with an empty info
    const [file] = await readdir(join(inbox(), 'cur'));
    const events: unknown[] = [];
    const stop = store.watch((event) => events.push(event));
    // mutt marks it read and replied: a rename within cur/, with an unknown letter kept as is
    await rename(join(inbox(), 'cur', file!), join(inbox(), 'cur', file!.replace(/:2,$/, ':2,RSa')));
    const [after] = await view.messages('INBOX');
    expect([...after!.flags].sort()).to.deep.equal(['\\Answered', '\\Seen']);
    expect(after!.modseq).to.be.above(before!.modseq);
    expect(events).to.deep.equal([{ type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [1] }]);
    await view.setFlags('INBOX', [1], ['\\Flagged'], 'add');
    expect(await readdir(join(inbox(), 'cur'))).to.deep.equal([file!.replace(/:2,$/, ':2,FRSa')]);
    stop();
    await view.release();
  });

  it('opens after a crash tore the last record, and the next append cuts the torn bytes off', async () => {
    const first = await withAlice();
    await first.deliver('alice@example.org', message('one'));
    await appendFile(join(inbox(), FOLDER_LOG_FILE), '{"t":"a","u":2,"m":2,"b":"17000');
    const second = new MaildirMailStore({ root, fsync: false });
    const view = await second.openUser('alice');
    expect((await view.messages('INBOX')).map((m) => m.uid)).to.deep.equal([1]);
    expect((await second.deliver('alice@example.org', message('two'))).uid).to.equal(2);
    const text = await readFile(join(inbox(), FOLDER_LOG_FILE), 'utf8');
    expect(text.endsWith('\n')).to.equal(true);
    expect(text).to.not.include('"b":"17000\n');
    for (const line of text.trim().split('\n')) expect(() => JSON.parse(line) as unknown).to.not.throw();
    await view.release();
  });

  it('migrates a v0.1 postern-uidlist on open, keeping UIDVALIDITY, UIDs and keywords', async () => {
    await mkdir(join(inbox(), 'cur'), { recursive: true });
    await mkdir(join(inbox(), 'new'), { recursive: true });
    await mkdir(join(inbox(), 'tmp'), { recursive: true });
    await writeFile(join(inbox(), 'cur', '1600000000.a.host:2,S'), message('old seven'));
    await writeFile(join(inbox(), 'new', '1600000001.b.host'), message('old nine'));
    const uidlist = {
      version: 1,
      uidValidity: 1234567,
      uidNext: 12,
      messages: [
        { uid: 7, base: '1600000000.a.host', keywords: ['$Label1'] },
        { uid: 9, base: '1600000001.b.host' },
        { uid: 10, base: 'gone.meanwhile' },
      ],
    };
    await writeFile(join(inbox(), 'postern-uidlist'), JSON.stringify(uidlist));
    const store = await withAlice();
    const view = await store.openUser('alice');
    const info = await view.info('INBOX');
    expect([info.uidValidity, info.uidNext, info.messages]).to.deep.equal([1234567, 12, 2]);
    const messages = await view.messages('INBOX', { peek: true });
    expect(messages.map((m) => [m.uid, [...m.flags].sort()])).to.deep.equal([
      [7, ['$Label1', '\\Seen']],
      [9, []],
    ]);
    expect((await messages[1]!.raw()).equals(message('old nine'))).to.equal(true);
    expect(await readdir(inbox())).to.not.include('postern-uidlist');
    expect((await store.deliver('alice@example.org', message('new'))).uid).to.equal(12);
    await view.release();
  });

  it('compacts a log that grew well past the live messages into one record per message, keeping state', async function () {
    this.timeout(60_000);
    const store = await withAlice();
    for (let i = 0; i < 5; i++) await store.deliver('alice@example.org', message(`m${i}`));
    const view = await store.openUser('alice');
    // 1,200 flag changes on 5 messages: the log passes 2 x 5 + 1,000 records.
    for (let i = 0; i < 240; i++) {
      await view.setFlags('INBOX', [1, 2, 3, 4, 5], ['\\Flagged'], i % 2 === 0 ? 'add' : 'remove');
    }
    const infoBefore = await view.info('INBOX');
    await view.setFlags('INBOX', [3], ['\\Seen'], 'add');
    await view.info('INBOX'); // compaction runs after the commit that crossed the limit; this waits behind it
    const log = await records(inbox());
    expect(log.length).to.be.below(1010);
    // The header of a compacted log carries UIDNEXT and HIGHESTMODSEQ (hundreds of flag changes happened before it).
    expect(log[0]).to.include({ t: 'h', un: 6 });
    expect(log[0]!.hm).to.be.above(500);
    expect(log.filter((r) => r.t === 'a').map((r) => r.u)).to.deep.equal([1, 2, 3, 4, 5]);
    const reopened = await new MaildirMailStore({ root, fsync: false }).openUser('alice');
    const again = await reopened.messages('INBOX', { peek: true });
    expect(again.map((m) => [m.uid, [...m.flags]])).to.deep.equal([
      [1, []],
      [2, []],
      [3, ['\\Seen']],
      [4, []],
      [5, []],
    ]);
    expect((await reopened.info('INBOX')).uidValidity).to.equal(infoBefore.uidValidity);
    await reopened.release();
    await view.release();
  });

  it("logs a copy's kept EMAILID as `i`, replays it on open, keeps it through compaction and refuses a non-string one", async () => {
    const store = await withAlice();
    const delivered = await store.deliver('alice@example.org', message('copied'));
    const id = hasMessageIdentity(delivered) ? delivered.emailId : '';
    const view = await store.openUser('alice');
    await view.create('Archive');
    await view.copy('INBOX', [delivered.uid], 'Archive');
    await view.release();
    const added = (await records(join(inbox(), '.Archive'))).filter((r) => r.t === 'a');
    expect(added.map((r) => r.i)).to.deep.equal([id]);
    expect((await records(inbox())).filter((r) => r.t === 'a').map((r) => r.i), 'a delivery needs no `i`').to.deep.equal([undefined]);
    const reopened = await new MaildirMailStore({ root, fsync: false }).openUser('alice');
    const [copy] = await reopened.messages('Archive', { peek: true });
    expect(hasMessageIdentity(copy!) ? copy.emailId : undefined).to.equal(id);
    await reopened.release();
    const entry: Entry = { uid: 1, base: 'b', dir: 'cur', letters: '', keywords: [], size: 3, internalDate: 0, modseq: 1, emailId: id };
    expect(appendRecordOf(entry)).to.include({ i: id });
    expect(parseRecord(JSON.stringify({ t: 'a', u: 1, m: 1, b: 'b', d: 0, s: 3, l: '', i: id }))).to.include({ i: id });
    expect(parseRecord(JSON.stringify({ t: 'a', u: 1, m: 1, b: 'b', d: 0, s: 3, l: '', i: 5 }))).to.equal(undefined);
  });

  it('removes tmp/ files and temporary state files of dead processes at open, not those of live ones', async () => {
    const store = await withAlice();
    await store.deliver('alice@example.org', message('one'));
    const deadPid = 2 ** 22 + 17; // above Linux's pid_max default range: never running
    await writeFile(join(inbox(), 'tmp', `1700000000.M1P${deadPid}Q1Rabc.host,S=5`), 'torn');
    await writeFile(join(inbox(), 'tmp', `1700000000.M1P${process.ppid}Q1Rabc.host,S=5`), 'live');
    await writeFile(join(inbox(), `${FOLDER_LOG_FILE}.tmp-${deadPid}-3`), 'half a compaction');
    const second = new MaildirMailStore({ root, fsync: false });
    const view = await second.openUser('alice');
    expect((await view.messages('INBOX')).map((m) => m.uid)).to.deep.equal([1]);
    expect(await readdir(join(inbox(), 'tmp'))).to.deep.equal([`1700000000.M1P${process.ppid}Q1Rabc.host,S=5`]);
    expect(await readdir(inbox())).to.not.include(`${FOLDER_LOG_FILE}.tmp-${deadPid}-3`);
    await view.release();
  });

  it('answers a repeated login from its cache, never a wrong password, and forgets it when the user is replaced', async () => {
    const store = await withAlice();
    expect(await store.users.verify('alice@example.org', 'secret-a')).to.equal('alice');
    expect(await store.users.verify('alice@example.org', 'secret-a')).to.equal('alice');
    expect(await store.users.verify('alice@example.org', 'secret-b')).to.equal(undefined);
    expect(await store.users.verify('alice', 'secret-a')).to.equal('alice');
    await store.users.add({ username: 'alice', password: 'changed', addresses: ['alice@example.org'] });
    expect(await store.users.verify('alice@example.org', 'secret-a')).to.equal(undefined);
    expect(await store.users.verify('alice@example.org', 'changed')).to.equal('alice');
  });

  it('breaks a lock file left by a dead process, and refuses one held by a live process with DotLockBusyError', async () => {
    const path = join(root, 'x.lock');
    await writeFile(path, `${2 ** 22 + 17} ${(await import('node:os')).hostname()} crashed\n`);
    const lock = await acquireDotLock(path, 'me', 0);
    expect(await readFile(path, 'utf8')).to.match(new RegExp(`^${process.pid} `));
    try {
      await acquireDotLock(path, 'other', 0);
      expect.fail('a held lock must be refused');
    } catch (err) {
      expect(err).to.be.instanceOf(DotLockBusyError);
      expect((err as DotLockBusyError).holder).to.match(new RegExp(`^${process.pid} .* me$`));
    }
    await lock.release();
    await (await acquireDotLock(path, 'again', 0)).release();
  });
});
