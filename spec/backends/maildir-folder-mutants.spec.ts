/**
 * One Maildir folder on real directories (issue 16, survivors of `maildir-folder.ts`'s mutation run): opening (the
 * v0.1 uidlist, the fallback UIDVALIDITY, the Maildir++ marker), what a message snapshot carries, reads and streams of
 * small and large messages that follow renames, flag changes, expunges and new/ → cur/ moves (their records and
 * files), COPY by hard link, a folder that was renamed or deleted, and notifications of another writer's changes.
 */
import { expect } from 'chai';
import { readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, symlink, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirFolder, type Entry, type FolderChanges } from '../../lib/backends/maildir/maildir-folder.js';
import { FOLDER_LOG_FILE, FolderState, parseRecord, type LogRecord } from '../../lib/backends/maildir/folder-state.js';
import { FolderLog } from '../../lib/backends/maildir/folder-log.js';
import { UIDLIST_FILE } from '../../lib/backends/maildir/folder-scan.js';
import { maildirFs } from '../../lib/backends/maildir/maildir-fs.js';
import { emailIdOfName } from '../../lib/backends/shared/object-ids.js';
import { fileHandlePrototype } from '../support/open-files.js';

const DATE = new Date('2024-02-03T04:05:06.789Z');
const body = (text: string): Buffer => Buffer.from(`Subject: ${text}\r\n\r\n${text}\r\n`);

describe('MaildirFolder on real directories (mutation testing)', () => {
  const originalFs = { ...maildirFs };
  let root: string;
  const opened: MaildirFolder[] = [];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-folder-'));
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((f) => f.idle()));
    await rm(root, { recursive: true, force: true });
  });

  /** Notifications a folder received (other writers' changes). */
  type Told = FolderChanges[];
  function options(told: Told = []): { durable: boolean; notify: (c: FolderChanges) => void } {
    return { durable: false, notify: (c) => told.push({ added: [...c.added], expunged: [...c.expunged], flagged: [...c.flagged] }) };
  }
  async function create(name = 'INBOX', told: Told = [], sub = false): Promise<MaildirFolder> {
    const folder = await MaildirFolder.create(join(root, name), options(told), 77, sub);
    opened.push(folder);
    return folder;
  }
  async function openAgain(name = 'INBOX', told: Told = []): Promise<MaildirFolder> {
    const folder = await MaildirFolder.open(join(root, name), options(told), () => 99);
    opened.push(folder);
    return folder;
  }
  const files = async (path: string): Promise<string[]> => (await readdir(path)).sort();
  const logRecords = async (name = 'INBOX'): Promise<Array<Record<string, unknown>>> =>
    (await readFile(join(root, name, FOLDER_LOG_FILE), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const errorOf = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => 'resolved',
      (e: Error & { code?: string }) => `${e.name} ${e.code} ${e.message}`,
    );

  it('tells a Maildir by its cur/ directory and passes on other stat errors', async () => {
    await mkdir(join(root, 'a', 'cur'), { recursive: true });
    await writeFile(join(root, 'b'), '');
    await mkdir(join(root, 'c'));
    await writeFile(join(root, 'c', 'cur'), '');
    await symlink(join(root, 'loop'), join(root, 'loop'));
    expect(await MaildirFolder.exists(join(root, 'a'))).to.equal(true);
    expect(await MaildirFolder.exists(join(root, 'missing'))).to.equal(false);
    expect(await MaildirFolder.exists(join(root, 'b'))).to.equal(false);
    expect(await MaildirFolder.exists(join(root, 'c'))).to.equal(false);
    expect(await errorOf(MaildirFolder.exists(join(root, 'loop')))).to.match(/^Error ELOOP /);
  });

  it('creates cur/ new/ tmp/ (mode 0700), the maildirfolder marker only for a sub-folder, and a log with the UIDVALIDITY', async () => {
    const inbox = await create('INBOX');
    const sub = await create('.Sub', [], true);
    expect(await files(join(root, 'INBOX'))).to.deep.equal(['cur', 'new', FOLDER_LOG_FILE, 'tmp']);
    expect(await files(join(root, '.Sub'))).to.deep.equal(['cur', 'maildirfolder', 'new', FOLDER_LOG_FILE, 'tmp']);
    for (const d of ['cur', 'new', 'tmp']) expect((await stat(join(root, 'INBOX', d))).mode & 0o777, d).to.equal(0o700);
    expect(await readFile(join(root, '.Sub', 'maildirfolder'), 'utf8')).to.equal('');
    expect([inbox.uidValidity, inbox.uidNext, inbox.highestModseq]).to.deep.equal([77, 1, 0]);
    expect((await logRecords())[0]).to.deep.equal({ t: 'h', v: 2, uv: 77, un: 1, hm: 0 });
    expect(sub.counts).to.deep.equal({ messages: 0, unseen: 0, recent: 0, keywords: [] });
  });

  it('migrates a v0.1 uidlist at open and removes it; without one it starts a log with the fallback UIDVALIDITY', async () => {
    const path = join(root, 'old');
    for (const d of ['cur', 'new', 'tmp']) await mkdir(join(path, d), { recursive: true });
    await writeFile(join(path, 'cur', '1000.M1P1.h:2,S'), body('one'));
    await writeFile(join(path, UIDLIST_FILE), JSON.stringify({ uidValidity: 555, uidNext: 9, messages: [{ uid: 4, base: '1000.M1P1.h', keywords: ['Later'] }] }));
    const folder = await openAgain('old');
    expect(await files(path)).to.deep.equal(['cur', 'new', FOLDER_LOG_FILE, 'tmp']);
    expect([folder.uidValidity, folder.uidNext]).to.deep.equal([555, 9]);
    expect(folder.list().map((e) => [e.uid, e.base, e.letters, e.keywords])).to.deep.equal([[4, '1000.M1P1.h', 'S', ['Later']]]);
    const bare = join(root, 'bare');
    for (const d of ['cur', 'new', 'tmp']) await mkdir(join(bare, d), { recursive: true });
    const fresh = await openAgain('bare');
    expect([fresh.uidValidity, fresh.uidNext, fresh.highestModseq]).to.deep.equal([99, 1, 0]);
  });

  it('gives a snapshot with its identity, save date, envelope and flags, and keeps the counters', async () => {
    const folder = await create();
    const envelope = { mailFrom: 'a@example.org', rcptTo: ['b@example.org'], receivedAt: '2024-02-03T04:05:06.000Z' };
    const seen = await folder.add(body('one'), ['\\Seen', 'Later', '$Work'], DATE, undefined, envelope);
    const plain = await folder.add(body('two'), [], DATE);
    expect(seen).to.include({ uid: 1, dir: 'cur', letters: 'S', internalDate: DATE.getTime(), size: body('one').length, modseq: 1 });
    expect(seen.keywords).to.deep.equal(['Later', '$Work']);
    expect(plain).to.include({ uid: 2, dir: 'new', letters: '', modseq: 2 });
    const message = folder.messageOf(seen);
    expect(message.emailId).to.equal(emailIdOfName(seen.base));
    const saved = Number(/^(\d+)\.M(\d+)P/.exec(seen.base)![1]) * 1000 + Math.floor(Number(/^(\d+)\.M(\d+)P/.exec(seen.base)![2]) / 1000);
    expect(message.saveDate?.getTime()).to.equal(saved);
    expect(message).to.include({ uid: 1, size: body('one').length, modseq: 1 });
    expect(message.internalDate.getTime()).to.equal(DATE.getTime());
    expect(message.envelope).to.deep.equal(envelope);
    expect('envelope' in folder.messageOf(plain)).to.equal(false);
    expect([...message.flags].sort()).to.deep.equal(['$Work', 'Later', '\\Seen']);
    expect((await message.raw()).toString()).to.equal(body('one').toString());
    expect(await message.canonicalSize()).to.equal(body('one').length);
    expect((await message.structure()).type).to.equal('text');
    expect(folder.counts).to.deep.equal({ messages: 2, unseen: 1, recent: 1, keywords: ['$Work', 'Later'] });
    expect((await stat(folder.pathOf(seen))).mtimeMs).to.equal(DATE.getTime());
    expect(folder.pathOf(seen)).to.equal(join(root, 'INBOX', 'cur', `${seen.base}:2,S`));
  });

  it('writes a large message (over 128 KiB) the same way: content, mtime, nothing left in tmp/', async () => {
    const folder = await create();
    const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(300 * 1024, 'a')]);
    const entry = await folder.add(big, ['\\Flagged'], DATE);
    expect(await files(join(root, 'INBOX', 'tmp'))).to.deep.equal([]);
    expect(await files(join(root, 'INBOX', 'cur'))).to.deep.equal([`${entry.base}:2,F`]);
    expect((await readFile(folder.pathOf(entry))).equals(big)).to.equal(true);
    expect((await stat(folder.pathOf(entry))).mtimeMs).to.equal(DATE.getTime());
    expect(entry.size).to.equal(big.length);
    expect(entry.base.endsWith(`,S=${big.length}`)).to.equal(true);
    expect((await folder.read(entry.base)).equals(big)).to.equal(true);
    const chunks: number[] = [];
    for await (const chunk of await folder.openStream(entry.base)) chunks.push((chunk as Buffer).length);
    expect(chunks).to.deep.equal([65536, 65536, 65536, 65536, big.length - 4 * 65536]);
  });

  it('reads and streams a message another tool renamed, and refuses one removed with NO_SUCH_MESSAGE', async () => {
    const folder = await create();
    for (const size of [100, 200 * 1024]) {
      const raw = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.alloc(size, 'b')]);
      const entry = await folder.add(raw, [], DATE);
      await rename(folder.pathOf(entry), join(root, 'INBOX', 'cur', `${entry.base}:2,RS`));
      expect((await folder.read(entry.base)).equals(raw), `read ${size}`).to.equal(true);
      await rename(join(root, 'INBOX', 'cur', `${entry.base}:2,RS`), join(root, 'INBOX', 'cur', `${entry.base}:2,S`));
      const parts: Buffer[] = [];
      for await (const chunk of await folder.openStream(entry.base)) parts.push(chunk as Buffer);
      expect(Buffer.concat(parts).equals(raw), `stream ${size}`).to.equal(true);
      expect(folder.list().find((e) => e.uid === entry.uid)?.letters).to.equal('S');
      await unlink(join(root, 'INBOX', 'cur', `${entry.base}:2,S`));
      const gone = 'MailStoreError NO_SUCH_MESSAGE message no longer exists';
      expect(await errorOf(folder.read(entry.base))).to.equal(gone);
      expect(await errorOf(folder.openStream(entry.base))).to.equal(gone);
      expect(await errorOf(folder.cachedOf(entry.base + 'x'))).to.equal(gone);
    }
  });

  it('passes on a read error other than ENOENT (the message path is a directory)', async () => {
    const folder = await create();
    const entry = await folder.add(body('x'), ['\\Seen'], DATE);
    await unlink(folder.pathOf(entry));
    await mkdir(folder.pathOf(entry));
    expect(await errorOf(folder.read(entry.base))).to.match(/^Error EISDIR /);
  });

  it('changes flags: renames for letters, moves new/ files, records keywords alone without a rename', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), [], DATE);
    const b = await folder.add(body('b'), ['\\Seen'], DATE);
    const c = await folder.add(body('c'), ['\\Seen'], DATE);
    const result = await folder.setFlags([c.uid, b.uid, a.uid, b.uid, 99], ['\\Flagged', 'Later'], 'add');
    expect(result.changed).to.deep.equal([1, 2, 3]);
    expect(result.entries.map((e) => [e.uid, e.dir, e.letters, e.keywords, e.modseq])).to.deep.equal([
      [1, 'cur', 'F', ['Later'], 4],
      [2, 'cur', 'FS', ['Later'], 5],
      [3, 'cur', 'FS', ['Later'], 6],
    ]);
    expect(await files(join(root, 'INBOX', 'new'))).to.deep.equal([]);
    // Keywords only: same letters, no rename; the same flags again: no record.
    const kw = await folder.setFlags([a.uid], ['Later'], 'remove');
    expect(kw.changed).to.deep.equal([1]);
    expect(kw.entries.map((e) => [e.uid, e.letters, e.keywords, e.modseq])).to.deep.equal([[1, 'F', [], 7]]);
    const same = await folder.setFlags([a.uid, b.uid], ['\\Flagged'], 'add');
    expect(same.changed).to.deep.equal([]);
    expect(same.entries.map((e) => [e.uid, e.modseq])).to.deep.equal([
      [1, 7],
      [2, 5],
    ]);
    const set = await folder.setFlags([b.uid], ['\\Deleted'], 'set');
    expect(set.entries.map((e) => [e.uid, e.letters, e.keywords])).to.deep.equal([[2, 'T', []]]);
    expect(await files(join(root, 'INBOX', 'cur'))).to.deep.equal([`${a.base}:2,F`, `${b.base}:2,T`, `${c.base}:2,FS`].sort());
    const records = (await logRecords()).filter((r) => r['t'] === 'f');
    expect(records).to.deep.equal([
      { t: 'f', u: 1, m: 4, l: 'F', k: ['Later'] },
      { t: 'f', u: 2, m: 5, l: 'FS', k: ['Later'] },
      { t: 'f', u: 3, m: 6, l: 'FS', k: ['Later'] },
      { t: 'f', u: 1, m: 7, l: 'F' },
      { t: 'f', u: 2, m: 8, l: 'T' },
    ]);
  });

  it('skips a flag change for a file another tool removed, and fails on another rename error', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), ['\\Seen'], DATE);
    const b = await folder.add(body('b'), ['\\Seen'], DATE);
    await unlink(folder.pathOf(a));
    const result = await folder.setFlags([a.uid, b.uid], ['\\Flagged'], 'add');
    expect(result.changed).to.deep.equal([b.uid]);
    expect(result.entries.map((e) => [e.uid, e.letters])).to.deep.equal([[b.uid, 'FS']]);
    // A directory in the way of the new name: rename(2) fails with EISDIR or ENOTEMPTY-like errors, passed on.
    await mkdir(join(root, 'INBOX', 'cur', `${b.base}:2,FRS`));
    await writeFile(join(root, 'INBOX', 'cur', `${b.base}:2,FRS`, 'x'), '');
    const error = await errorOf(folder.setFlags([b.uid], ['\\Answered'], 'add'));
    expect(error).to.match(/^Error (EISDIR|ENOTEMPTY|EEXIST) /);
  });

  it('expunges given UIDs once each in order (one taken by another tool first), and moves new/ files to cur/ when seen', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), [], DATE);
    const b = await folder.add(body('b'), [], DATE);
    const c = await folder.add(body('c'), ['\\Seen'], DATE);
    const d = await folder.add(body('d'), ['\\Seen'], DATE);
    // The commit's scan finds b gone (another tool) and expunges it first; the call removes the others.
    await unlink(folder.pathOf(b));
    expect(await folder.remove([d.uid, b.uid, c.uid, d.uid, 42])).to.deep.equal([3, 4]);
    expect(folder.list().map((e) => e.uid)).to.deep.equal([1]);
    expect(await files(join(root, 'INBOX', 'cur'))).to.deep.equal([]);
    expect((await logRecords()).filter((r) => r['t'] === 'x')).to.deep.equal([
      { t: 'x', u: [2], m: 5 },
      { t: 'x', u: [3, 4], m: 6 },
    ]);
    expect(await folder.remove([42])).to.deep.equal([]);
    expect((await logRecords()).filter((r) => r['t'] === 'x').length).to.equal(2);
    expect(folder.counts.recent).to.equal(1);
    await folder.markCurrent();
    expect(folder.counts.recent).to.equal(0);
    expect(await files(join(root, 'INBOX', 'cur'))).to.deep.equal([`${a.base}:2,`]);
    expect((await logRecords()).filter((r) => r['t'] === 'c')).to.deep.equal([{ t: 'c', u: [1] }]);
    const before = (await logRecords()).length;
    await folder.markCurrent();
    expect((await logRecords()).length).to.equal(before);
  });

  it('copies by hard link, refuses a vanished source with NO_SUCH_MESSAGE, and writes a copy when linking fails', async () => {
    const folder = await create();
    const other = await create('.Other', [], true);
    const a = await folder.add(body('a'), ['\\Seen'], DATE);
    const copy = await other.add(undefined, ['\\Seen'], DATE, { path: folder.pathOf(a), size: a.size });
    expect((await stat(other.pathOf(copy))).ino).to.equal((await stat(folder.pathOf(a))).ino);
    expect((await other.read(copy.base)).toString()).to.equal(body('a').toString());
    expect(other.messageOf(copy).emailId).to.equal(emailIdOfName(copy.base));
    // A copy that keeps its source's EMAILID (RFC 8474 §5.1) logs it as `i`, and a reopened folder still has it.
    const [kept] = await other.addMany([{ source: { path: folder.pathOf(a), size: a.size }, flags: [], internalDate: DATE, emailId: folder.emailIdOf(a) }]);
    const keptEntry = (kept as PromiseFulfilledResult<Entry>).value;
    expect(other.messageOf(keptEntry).emailId).to.equal(emailIdOfName(a.base));
    expect((await logRecords('.Other')).filter((r) => r['t'] === 'a').map((r) => r['i'])).to.deep.equal([undefined, emailIdOfName(a.base)]);
    const reopened = await openAgain('.Other');
    expect(reopened.list().map((e) => reopened.emailIdOf(e))).to.deep.equal([emailIdOfName(copy.base), emailIdOfName(a.base)]);
    const vanished = await errorOf(other.add(undefined, [], DATE, { path: join(root, 'none'), size: 1 }));
    expect(vanished).to.equal('MailStoreError NO_SUCH_MESSAGE message vanished');
    // link(2) refuses a directory source (EPERM): the copy is read from the source instead, which fails here as EISDIR.
    await mkdir(join(root, 'dir-source'));
    expect(await errorOf(other.add(undefined, [], DATE, { path: join(root, 'dir-source'), size: 1 }))).to.match(/^Error EISDIR /);
    expect(await files(join(root, '.Other', 'tmp'))).to.deep.equal([]);
  });

  it('follows a rename of its directory and stops at deletion: reads fail, changes are refused', async () => {
    const folder = await create('.A', [], true);
    const a = await folder.add(body('a'), [], DATE);
    await rename(join(root, '.A'), join(root, '.B'));
    folder.moveTo(join(root, '.B'));
    expect(folder.path).to.equal(join(root, '.B'));
    expect((await folder.read(a.base)).toString()).to.equal(body('a').toString());
    const b = await folder.add(body('b'), [], DATE);
    expect((await logRecords('.B')).filter((r) => r['t'] === 'a').map((r) => r['u'])).to.deep.equal([1, 2]);
    folder.markDeleted();
    expect(await errorOf(folder.read(b.base))).to.equal('MailStoreError NO_SUCH_MESSAGE message no longer exists');
    expect(await errorOf(folder.openStream(b.base))).to.equal('MailStoreError NO_SUCH_MESSAGE message no longer exists');
    expect(await errorOf(folder.add(body('c'), [], DATE))).to.equal('MailStoreError NO_SUCH_MAILBOX mailbox deleted');
    expect(await errorOf(folder.remove([1]))).to.equal('MailStoreError NO_SUCH_MAILBOX mailbox deleted');
    expect(await folder.refresh()).to.deep.equal({ added: [], expunged: [], flagged: [] });
    expect(folder.list()).to.deep.equal([]);
  });

  it("tells a watching folder about another writer's delivery, flag change and expunge, and not about its own", async () => {
    const toldA: Told = [];
    const toldB: Told = [];
    const a = await create('INBOX', toldA);
    const b = await openAgain('INBOX', toldB);
    b.watch();
    b.watch();
    const next = async (n: number): Promise<FolderChanges> => {
      while (toldB.length < n) await new Promise((resolve) => setTimeout(resolve, 20));
      return toldB[n - 1]!;
    };
    const m = await a.add(body('a'), [], DATE);
    expect(await next(1)).to.deep.equal({ added: [1], expunged: [], flagged: [] });
    await a.setFlags([m.uid], ['\\Seen'], 'add');
    expect(await next(2)).to.deep.equal({ added: [], expunged: [], flagged: [1] });
    await a.remove([m.uid]);
    expect(await next(3)).to.deep.equal({ added: [], expunged: [1], flagged: [] });
    expect(toldA).to.deep.equal([]);
    expect(b.list()).to.deep.equal([]);
    b.unwatch();
  });
  it('reports nothing, and returns no changes, when the folder is deleted while a refresh reads the log', async () => {
    const toldB: Told = [];
    const a = await create('INBOX');
    const b = await openAgain('INBOX', toldB);
    await a.add(body('a'), [], DATE);
    await a.add(body('b'), [], DATE);
    // The deletion lands while b's refresh awaits its read of the grown log (the race a watcher's refresh can lose).
    const log = (b as unknown as { log: FolderLog }).log;
    const readNew = log.readNew.bind(log);
    log.readNew = async () => {
      const read = await readNew();
      b.markDeleted();
      return read;
    };
    expect(await b.refresh()).to.deep.equal({ added: [], expunged: [], flagged: [] });
    expect(toldB).to.deep.equal([]);
    expect(b.list()).to.deep.equal([]);
  });

  it('adopts a foreign file name without a save date, and logs a delivery without keywords as a plain a record', async () => {
    const folder = await create();
    await writeFile(join(root, 'INBOX', 'new', 'foreign'), body('f'));
    await folder.refresh();
    const [foreign] = folder.list();
    const message = folder.messageOf(foreign!);
    expect('saveDate' in message).to.equal(false);
    expect(message.emailId).to.equal(emailIdOfName('foreign'));
    const own = await folder.add(body('o'), [], DATE);
    const record = (await logRecords()).find((r) => r['t'] === 'a' && r['u'] === own.uid);
    expect(record).to.deep.equal({ t: 'a', u: own.uid, m: own.modseq, b: own.base, d: DATE.getTime(), s: body('o').length, n: 1 });
  });

  it('adds no record when opened again with nothing changed, nor for a flag change that changes nothing', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), ['\\Seen'], DATE);
    const lines = (await logRecords()).length;
    await openAgain();
    expect((await logRecords()).length).to.equal(lines);
    const same = await folder.setFlags([a.uid], ['\\Seen'], 'add');
    expect(same.changed).to.deep.equal([]);
    expect((await logRecords()).length).to.equal(lines);
  });

  it('tells keywords apart by each name, and moves a new/ file to cur/ for a keyword alone', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), ['ab'], DATE);
    expect(a.dir).to.equal('new');
    const result = await folder.setFlags([a.uid], ['a', 'b'], 'set');
    expect(result.changed).to.deep.equal([a.uid]);
    expect(result.entries.map((e) => [e.dir, e.letters, e.keywords])).to.deep.equal([['cur', '', ['a', 'b']]]);
    expect(await files(join(root, 'INBOX', 'new'))).to.deep.equal([]);
    expect(await files(join(root, 'INBOX', 'cur'))).to.deep.equal([`${a.base}:2,`]);
    expect((await folder.read(a.base)).toString()).to.equal(body('a').toString());
    const back = await folder.setFlags([a.uid], ['ab'], 'set');
    expect(back.changed).to.deep.equal([a.uid]);
    expect(back.entries.map((e) => e.keywords)).to.deep.equal([['ab']]);
  });

  it('passes on an open error other than ENOENT to read and openStream (a symlink loop in place of the file)', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), ['\\Seen'], DATE);
    await unlink(folder.pathOf(a));
    await symlink(folder.pathOf(a), folder.pathOf(a));
    expect(await errorOf(folder.read(a.base))).to.match(/^Error ELOOP /);
    expect(await errorOf(folder.openStream(a.base))).to.match(/^Error ELOOP /);
  });

  it('fails an expunge whose unlink fails with other than ENOENT', async () => {
    const folder = await create();
    const a = await folder.add(body('a'), ['\\Seen'], DATE);
    // A directory in place of a's file: unlink(2) answers EISDIR.
    await unlink(folder.pathOf(a));
    await mkdir(folder.pathOf(a));
    expect(await errorOf(folder.remove([a.uid]))).to.match(/^Error EISDIR /);
    expect(folder.list().map((e) => e.uid)).to.deep.equal([a.uid]);
  });

  it('answers no changes from a refresh after deletion, also once the directory is gone', async () => {
    const folder = await create('.Gone', [], true);
    folder.markDeleted();
    await rm(join(root, '.Gone'), { recursive: true });
    expect(await folder.refresh()).to.deep.equal({ added: [], expunged: [], flagged: [] });
  });

  it('reports nothing from a refresh that was reading a replaced log when the folder was deleted, and keeps no messages', async () => {
    const told: Told = [];
    const folder = await create('INBOX', told);
    await folder.add(body('1'), [], DATE);
    await folder.add(body('2'), [], DATE);
    // Another process compacts the log: the same records in a new file (a new inode), so the refresh opens it anew.
    const logPath = join(root, 'INBOX', FOLDER_LOG_FILE);
    await writeFile(`${logPath}.next`, await readFile(logPath));
    await rename(`${logPath}.next`, logPath);
    // The deletion lands while the refresh reads that file: right after its stat (a pass-through FileHandle.prototype.stat).
    const probe = await open(logPath, 'r');
    const proto = Object.getPrototypeOf(probe) as { stat: (this: FileHandle, ...args: unknown[]) => Promise<unknown> };
    await probe.close();
    const realStat = proto.stat;
    let deletions = 0;
    proto.stat = async function (this: FileHandle, ...args: unknown[]) {
      const info = await realStat.apply(this, args);
      if (deletions++ === 0) folder.markDeleted();
      return info;
    };
    let changes: FolderChanges;
    try {
      changes = await folder.refresh();
    } finally {
      proto.stat = realStat;
    }
    expect(deletions).to.equal(1);
    expect(changes).to.deep.equal({ added: [], expunged: [], flagged: [] });
    expect(told).to.deep.equal([]);
    expect(folder.list()).to.deep.equal([]);
  });

  it("reports nothing from a refresh whose scan was appending another tool's delivery when the folder was deleted", async () => {
    const told: Told = [];
    const folder = await create('INBOX', told);
    await folder.add(body('1'), [], DATE);
    // Another tool delivers into new/: the next refresh scans the directories and appends the message's record.
    await writeFile(join(root, 'INBOX', 'new', '1700000000.M1P1.elsewhere'), body('2'));
    let deletions = 0;
    maildirFs.writeAt = async (handle, data, position) => {
      await originalFs.writeAt(handle, data, position);
      if (deletions++ === 0) folder.markDeleted();
    };
    let changes: FolderChanges;
    try {
      changes = await folder.refresh();
    } finally {
      Object.assign(maildirFs, originalFs);
    }
    expect(deletions).to.equal(1);
    expect(changes).to.deep.equal({ added: [], expunged: [], flagged: [] });
    expect(told).to.deep.equal([]);
    expect(folder.list()).to.deep.equal([]);
  });

  it('tells added, flagged and expunged messages apart when another writer compacted (replaced) the log', async () => {
    const writer = await create();
    const m1 = await writer.add(body('1'), [], DATE);
    const m2 = await writer.add(body('2'), [], DATE);
    const m3 = await writer.add(body('3'), [], DATE);
    const reader = await openAgain();
    expect(reader.list().map((e) => e.uid)).to.deep.equal([1, 2, 3]);
    await writer.add(body('4'), [], DATE);
    await writer.setFlags([m2.uid], ['\\Seen'], 'add');
    await writer.remove([m3.uid]);
    // Compaction as the writer would do it: the log replaced by a snapshot of its state.
    const state = new FolderState();
    for (const r of (await readFile(join(root, 'INBOX', FOLDER_LOG_FILE), 'utf8')).split('\n').filter((l) => l !== '')) state.apply(parseRecord(r) as LogRecord);
    const log = new FolderLog(join(root, 'INBOX', FOLDER_LOG_FILE), false);
    await log.rewrite(state.snapshot());
    await log.close();
    expect(await reader.refresh()).to.deep.equal({ added: [4], expunged: [3], flagged: [2] });
    expect(reader.list().map((e) => [e.uid, e.letters])).to.deep.equal([
      [m1.uid, ''],
      [m2.uid, 'S'],
      [4, ''],
    ]);
    expect(reader.uidNext).to.equal(5);
  });

  describe('durable', () => {
    let proto: { sync(this: FileHandle): Promise<void>; datasync(this: FileHandle): Promise<void> };
    let realSync: (this: FileHandle) => Promise<void>;
    let realDatasyncOf: (this: FileHandle) => Promise<void>;
    /** What was fsynced, in order: paths below the folder (directories and files), `log` for a datasync (only the log has them). */
    let synced: string[];
    beforeEach(async () => {
      synced = [];
      proto = await fileHandlePrototype<typeof proto>();
      realSync = proto.sync;
      proto.sync = function (this: FileHandle) {
        synced.push(readlinkSync(`/proc/self/fd/${this.fd}`).slice(root.length + 1));
        return realSync.call(this);
      };
      realDatasyncOf = proto.datasync;
      proto.datasync = function (this: FileHandle) {
        synced.push('log');
        return realDatasyncOf.call(this);
      };
    });
    afterEach(() => {
      proto.sync = realSync;
      proto.datasync = realDatasyncOf;
    });
    async function durableFolder(): Promise<MaildirFolder> {
      const folder = await MaildirFolder.create(join(root, 'D'), { durable: true, notify: () => undefined }, 5, false);
      opened.push(folder);
      return folder;
    }

    it('fsyncs each touched directory and the log once per group, and nothing for a group of new/ → cur/ moves', async () => {
      const folder = await durableFolder();
      synced = [];
      const [a, b] = await folder.addMany([
        { raw: body('a'), flags: [], internalDate: DATE },
        { raw: body('b'), flags: ['\\Seen'], internalDate: DATE },
      ]);
      expect([a!.status, b!.status]).to.deep.equal(['fulfilled', 'fulfilled']);
      expect(synced.sort()).to.deep.equal(['D/cur', 'D/new', 'log']);
      synced = [];
      await folder.setFlags([2], ['\\Flagged'], 'add');
      expect(synced.sort()).to.deep.equal(['D/cur', 'log']);
      synced = [];
      await folder.markCurrent();
      expect(synced).to.deep.equal([]);
      synced = [];
      await folder.remove([1]);
      expect(synced.sort()).to.deep.equal(['D/cur', 'log']);
    });

    it('fsyncs a large message file in tmp/ before it is placed', async () => {
      const folder = await durableFolder();
      synced = [];
      const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(200 * 1024, 'c')]);
      const entry = await folder.add(big, [], DATE);
      expect(synced.sort()).to.deep.equal([`D/new`, `D/tmp/${entry.base}`, 'log'].sort());
    });

    it('fsyncs the new directory after new/ was removed and made again, not the old one', async () => {
      const folder = await durableFolder();
      await folder.add(body('a'), ['\\Seen'], DATE);
      await folder.add(body('b'), [], DATE);
      await rm(join(root, 'D', 'new'), { recursive: true });
      await mkdir(join(root, 'D', 'new'));
      synced = [];
      await folder.add(body('c'), [], DATE);
      expect(synced.filter((p) => p.startsWith('D/new')).sort()).to.deep.equal(['D/new']);
    });
    it('fsyncs no message file and no directory when not durable, and a 128 KiB message only through the small-file path', async () => {
      const plain = await create();
      synced = [];
      await plain.add(Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(200 * 1024, 'c')]), [], DATE);
      expect(synced).to.deep.equal([]);
      const folder = await durableFolder();
      synced = [];
      const exact = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.alloc(128 * 1024 - 14, 'd')]);
      expect(exact.length).to.equal(128 * 1024);
      await folder.add(exact, [], DATE);
      expect(synced.sort()).to.deep.equal(['D/new', 'log']);
    });

    it('fsyncs only the log for a keyword change in cur/, new/ and cur/ for one in new/, nothing for no change', async () => {
      const folder = await durableFolder();
      const a = await folder.add(body('a'), ['\\Seen'], DATE);
      const b = await folder.add(body('b'), [], DATE);
      synced = [];
      await folder.setFlags([a.uid], ['Later'], 'add');
      expect(synced).to.deep.equal(['log']);
      synced = [];
      await folder.setFlags([b.uid], ['Later'], 'add');
      expect(synced.sort()).to.deep.equal(['D/cur', 'D/new', 'log']);
      synced = [];
      await folder.setFlags([a.uid, b.uid], ['Later'], 'add');
      expect(synced).to.deep.equal([]);
      // A group with a new/ → cur/ move and a flag change is fsynced as a whole.
      const c = await folder.add(body('c'), [], DATE);
      synced = [];
      await Promise.all([folder.markCurrent(), folder.setFlags([a.uid], ['\\Flagged'], 'add')]);
      expect(folder.list().find((e) => e.uid === c.uid)?.dir).to.equal('cur');
      expect(synced.sort()).to.deep.equal(['D/cur', 'D/new', 'log']);
    });
  });
});
