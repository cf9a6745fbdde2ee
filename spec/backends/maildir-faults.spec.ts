import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirMailStore } from '../../lib/backends/maildir/maildir-mail-store.js';
import { maildirFs } from '../../lib/backends/maildir/maildir-fs.js';
import { FOLDER_LOG_FILE } from '../../lib/backends/maildir/folder-state.js';
import { message } from './mail-store-suite.js';

/** A system error as the kernel would report it. */
function ioError(): NodeJS.ErrnoException {
  return Object.assign(new Error('EIO: injected i/o error'), { code: 'EIO' });
}

describe('MaildirMailStore under injected file-system faults', () => {
  const original = { ...maildirFs };
  let root: string;
  const inbox = (): string => join(root, 'mail', 'alice');
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-maildir-faults-'));
  });
  afterEach(async () => {
    Object.assign(maildirFs, original);
    await rm(root, { recursive: true, force: true });
  });

  async function withAlice(): Promise<MaildirMailStore> {
    const store = new MaildirMailStore({ root });
    await store.users.add({ username: 'alice', password: 'x', addresses: ['alice@example.org'] });
    await store.deliver('alice@example.org', message('before'));
    return store;
  }

  const subjects = async (store: MaildirMailStore): Promise<Array<[number, string]>> => {
    const view = await store.openUser('alice');
    const all = await view.messages('INBOX', { peek: true });
    const rows = await Promise.all(all.map(async (m): Promise<[number, string]> => [m.uid, /^Subject: (.*)$/m.exec((await m.raw()).toString())![1]!.trim()]));
    await view.release();
    return rows;
  };

  it('fails only the delivery whose rename into new/ fails; the rest of its group is stored and tmp/ is clean', async () => {
    const store = await withAlice();
    maildirFs.rename = async (from, to) => {
      if (String(from).includes('/tmp/') && (await readFile(from)).includes('Subject: doomed')) throw ioError();
      return original.rename(from, to);
    };
    const results = await Promise.allSettled(['one', 'doomed', 'two'].map((s) => store.deliver('alice@example.org', message(s))));
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).to.have.property('code', 'EIO');
    expect(await readdir(join(inbox(), 'tmp'))).to.deep.equal([]);
    expect((await subjects(store)).map(([, s]) => s).sort()).to.deep.equal(['before', 'one', 'two']);
    Object.assign(maildirFs, original);
    const reopened = new MaildirMailStore({ root });
    expect(await subjects(reopened)).to.deep.equal(await subjects(store));
  });

  it('answers no call of a group before its log fsync, fails the group (and holds later ones) when it fails, and recovers', async () => {
    const store = await withAlice();
    let release: (failure?: Error) => void = () => undefined;
    const gate = new Promise<Error | undefined>((resolve) => (release = resolve));
    let syncs = 0;
    maildirFs.datasync = async (handle) => {
      if (++syncs === 1) {
        const failure = await gate; // the first group's fsync hangs until the test decides its outcome
        if (failure !== undefined) throw failure;
      }
      return original.datasync(handle);
    };
    const settled: string[] = [];
    const first = store.deliver('alice@example.org', message('first')).then(
      () => settled.push('first ok'),
      (err: NodeJS.ErrnoException) => settled.push(`first ${err.code}`),
    );
    // Wait until the first group is written and its fsync hangs, then start a second group behind it.
    while (syncs === 0) await new Promise((resolve) => setImmediate(resolve));
    const second = store.deliver('alice@example.org', message('second')).then(
      () => settled.push('second ok'),
      (err: NodeJS.ErrnoException) => settled.push(`second ${err.code}`),
    );
    while (syncs < 2) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).to.deep.equal([]); // the second group's fsync is done, but the first one's is not: nobody is answered
    release(ioError());
    await Promise.all([first, second]);
    expect(settled).to.deep.equal(['first EIO', 'second EIO']);
    const after = await store.deliver('alice@example.org', message('after'));
    const rows = await subjects(store);
    expect(rows.find(([, s]) => s === 'after')![0]).to.equal(after.uid);
    expect(new Set(rows.map(([uid]) => uid)).size).to.equal(rows.length);
    const reopened = new MaildirMailStore({ root });
    expect(await subjects(reopened)).to.deep.equal(rows);
  });

  it('fails the whole group when the log append stops half-way, cuts the torn record later, and loses no file', async () => {
    const store = await withAlice();
    maildirFs.writeAt = async (handle, data, position) => {
      await original.writeAt(handle, data.subarray(0, Math.floor(data.length / 2)), position);
      throw ioError();
    };
    const failed = await Promise.allSettled(['a', 'b'].map((s) => store.deliver('alice@example.org', message(s))));
    expect(failed.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    expect(await readFile(join(inbox(), FOLDER_LOG_FILE), 'utf8')).to.not.match(/\n$/); // the torn half is there
    Object.assign(maildirFs, original);
    const after = await store.deliver('alice@example.org', message('after'));
    // The files of the failed group were renamed already: the next commit's scan adopts them (they were never
    // answered 250, so a client resends them at worst; nothing is lost), with fresh UIDs.
    const rows = await subjects(store);
    expect(rows.map(([, s]) => s).sort()).to.deep.equal(['a', 'after', 'b', 'before']);
    expect(new Set(rows.map(([uid]) => uid)).size).to.equal(4);
    expect(rows.find(([, s]) => s === 'after')![0]).to.equal(after.uid);
    const text = await readFile(join(inbox(), FOLDER_LOG_FILE), 'utf8');
    for (const line of text.trim().split('\n')) expect(() => JSON.parse(line) as unknown).to.not.throw();
    const reopened = new MaildirMailStore({ root });
    expect(await subjects(reopened)).to.deep.equal(rows);
  });
});
