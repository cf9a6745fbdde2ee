/**
 * The Maildir folder log file and index cache (issue 16, survivors of their mutation runs), on real files in a
 * temporary directory: what each read of the log returns as other writers append, replace, truncate or tear it, what an
 * append cuts off and counts, the rewrite's file and offsets, the fsync hook; the cache's lines, what it skips on load,
 * and when it compacts.
 */
import { expect } from 'chai';
import { truncateSync, unlinkSync, type Stats } from 'node:fs';
import { appendFile, mkdir, mkdtemp, open, readFile, readdir, rename, rm, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FolderCache, FOLDER_CACHE_FILE } from '../../lib/backends/maildir/folder-cache.js';
import { FolderLog } from '../../lib/backends/maildir/folder-log.js';
import { maildirFs } from '../../lib/backends/maildir/maildir-fs.js';
import type { LogRecord } from '../../lib/backends/maildir/folder-state.js';
import type { MimePart } from '../../lib/mime/mime-parse.js';
import { openOn, openUnder } from '../support/open-files.js';

const line = (r: LogRecord): string => JSON.stringify(r) + '\n';
const x = (u: number): LogRecord => ({ t: 'x', u: [u], m: u });

describe('Maildir FolderLog (mutation testing)', () => {
  const original = { ...maildirFs };
  let dir: string;
  let path: string;
  const logs: FolderLog[] = [];
  const log = (durable = false): FolderLog => {
    const l = new FolderLog(path, durable);
    logs.push(l);
    return l;
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-folder-log-'));
    path = join(dir, 'postern-log');
  });
  afterEach(async () => {
    Object.assign(maildirFs, original);
    for (const l of logs.splice(0)) await l.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads nothing from a missing file, and is never unchanged then', async () => {
    const l = log();
    expect(await l.readNew()).to.equal(undefined);
    expect(l.unchanged()).to.equal(false);
    expect(l.records).to.equal(0);
  });

  it('reads the whole file first (replaced), then only what others append, skipping lines that do not parse', async () => {
    await writeFile(path, line(x(1)) + 'garbage\n' + line(x(2)));
    const l = log();
    expect(l.unchanged()).to.equal(false);
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [x(1), x(2)] });
    expect(l.records).to.equal(3);
    expect(l.unchanged()).to.equal(true);
    expect(await l.readNew()).to.deep.equal({ replaced: false, records: [] });
    await appendFile(path, line(x(3)));
    expect(l.unchanged()).to.equal(false);
    expect(await l.readNew()).to.deep.equal({ replaced: false, records: [x(3)] });
    expect(l.records).to.equal(4);
  });

  it('leaves a record without its newline for later, and reads it once complete', async () => {
    await writeFile(path, line(x(1)));
    const l = log();
    await l.readNew();
    const torn = line(x(2));
    await appendFile(path, torn.slice(0, 5));
    expect(await l.readNew()).to.deep.equal({ replaced: false, records: [] });
    expect(l.unchanged()).to.equal(false);
    await appendFile(path, torn.slice(5) + line(x(3)).slice(0, 4));
    expect(await l.readNew()).to.deep.equal({ replaced: false, records: [x(2)] });
    expect(l.records).to.equal(2);
  });

  it('counts an empty line as a record that does not parse, and reads past it', async () => {
    await writeFile(path, '\n');
    const l = log();
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [] });
    expect(l.records).to.equal(1);
    expect(l.unchanged()).to.equal(true);
  });

  it('is not unchanged when its path cannot be looked at, and reports a log that cannot be opened', async () => {
    await writeFile(join(dir, 'file'), '');
    expect(new FolderLog(join(dir, 'file', 'postern-log'), false).unchanged()).to.equal(false);
    await mkdir(path);
    let error: NodeJS.ErrnoException | undefined;
    await log()
      .readNew()
      .catch((e: NodeJS.ErrnoException) => (error = e));
    expect(error?.code).to.equal('EISDIR');
  });

  it('reads a file with only a torn record as empty', async () => {
    await writeFile(path, '{"t":"x"');
    const l = log();
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [] });
    expect(l.records).to.equal(0);
  });

  it('reads a replaced file whole, and a file shorter than what was read whole', async () => {
    await writeFile(path, line(x(1)) + line(x(2)));
    const l = log();
    await l.readNew();
    // The new file is longer than what was read of the old one: only its inode tells.
    await writeFile(join(dir, 'next'), line(x(5)) + line(x(6)) + line(x(7)));
    await rename(join(dir, 'next'), path);
    expect(l.unchanged()).to.equal(false);
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [x(5), x(6), x(7)] });
    expect(l.records).to.equal(3);
    await truncate(path, line(x(5)).length);
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [x(5)] });
    expect(l.records).to.equal(1);
  });

  it('reads the file whole again after close', async () => {
    await writeFile(path, line(x(1)));
    const l = log();
    await l.readNew();
    await l.close();
    await l.close();
    expect(l.unchanged()).to.equal(false);
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [x(1)] });
  });

  it('appends nothing without a read only when there is nothing to append', async () => {
    const l = log();
    await l.append([]);
    await writeFile(path, '');
    let error: Error | undefined;
    await l.append([x(1)]).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('folder log not read before append');
    let syncError: Error | undefined;
    await l.startSync().catch((e: Error) => (syncError = e));
    expect(syncError?.message).to.equal('folder log not open');
  });

  it('appends records at its offset, cutting off a torn record a crashed writer left, and counts them', async () => {
    await writeFile(path, line(x(1)));
    const l = log();
    await l.readNew();
    await appendFile(path, `{"t":"a","u":9,"m":9,"b":"${'b'.repeat(100)}`); // longer than what is appended
    await l.readNew();
    await l.append([x(2), x(3)]);
    expect(await readFile(path, 'utf8')).to.equal(line(x(1)) + line(x(2)) + line(x(3)));
    expect(l.records).to.equal(3);
    expect(l.unchanged()).to.equal(true);
    expect(await l.readNew()).to.deep.equal({ replaced: false, records: [] });
    const other = log();
    expect(await other.readNew()).to.deep.equal({ replaced: true, records: [x(1), x(2), x(3)] });
  });

  it('appends through the writeAt hook and syncs through the datasync hook', async () => {
    await writeFile(path, '');
    const l = log(true);
    await l.readNew();
    const calls: string[] = [];
    maildirFs.writeAt = async (handle, data, position) => {
      calls.push(`write ${data.length}@${position}`);
      return original.writeAt(handle, data, position);
    };
    maildirFs.datasync = async (handle) => {
      calls.push('datasync');
      return original.datasync(handle);
    };
    await l.append([x(1)]);
    await l.append([x(2)], false);
    await l.startSync();
    const n = line(x(1)).length;
    expect(calls).to.deep.equal([`write ${n}@0`, `write ${n}@${n}`, 'datasync']);
  });

  it('fsyncs appends and rewrites (file and directory) of a durable log only, and an append asked not to sync', async () => {
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void>; datasync: () => Promise<void> };
    await probe.close();
    const calls: string[] = [];
    const { sync, datasync } = proto;
    proto.sync = function (this: unknown) {
      calls.push('sync');
      return sync.call(this);
    };
    proto.datasync = function (this: unknown) {
      calls.push('datasync');
      return datasync.call(this);
    };
    try {
      const durable = log(true);
      await durable.rewrite([x(1)]);
      expect(calls.splice(0)).to.deep.equal(['sync', 'sync']); // the temporary file, then the directory
      await durable.append([x(2)]);
      expect(calls.splice(0)).to.deep.equal(['datasync']);
      await durable.append([x(3)], false);
      expect(calls.splice(0)).to.deep.equal([]);
      const loose = new FolderLog(join(dir, 'loose'), false);
      logs.push(loose);
      await loose.rewrite([x(1)]);
      await loose.append([x(2)]);
      expect(calls).to.deep.equal([]);
      await loose.append([x(3)], true);
      expect(calls).to.deep.equal(['datasync']);
    } finally {
      proto.sync = sync;
      proto.datasync = datasync;
    }
  });

  it('rewrites the log as a new file, leaving no temporary file, and goes on reading and appending from its end', async () => {
    await writeFile(path, line(x(1)) + line(x(2)) + line(x(3)));
    const l = log(true);
    await l.readNew();
    await l.rewrite([x(7), x(8)]);
    expect(await readdir(dir)).to.deep.equal(['postern-log']);
    expect(await readFile(path, 'utf8')).to.equal(line(x(7)) + line(x(8)));
    expect(l.records).to.equal(2);
    expect(l.unchanged()).to.equal(true);
    expect(await l.readNew()).to.deep.equal({ replaced: false, records: [] });
    await l.append([x(9)]);
    expect(await readFile(path, 'utf8')).to.equal(line(x(7)) + line(x(8)) + line(x(9)));
    expect(l.records).to.equal(3);
  });

  it('creates the log by a rewrite without a read, and keeps its file when the rename fails', async () => {
    const l = log();
    await l.rewrite([x(1)]);
    expect(await readFile(path, 'utf8')).to.equal(line(x(1)));
    expect(l.unchanged()).to.equal(true);
    await l.append([x(2)]);
    expect(await readFile(path, 'utf8')).to.equal(line(x(1)) + line(x(2)));
    // A rename over a non-empty directory fails: the error reaches the caller, the old log is untouched.
    await mkdir(join(dir, 'busy', 'postern-log', 'inside'), { recursive: true });
    const busy = new FolderLog(join(dir, 'busy', 'postern-log'), false);
    logs.push(busy);
    let error: NodeJS.ErrnoException | undefined;
    await busy.rewrite([x(3)]).catch((e: NodeJS.ErrnoException) => (error = e));
    expect(error?.code).to.be.oneOf(['EISDIR', 'ENOTEMPTY']);
    expect(await readFile(path, 'utf8')).to.equal(line(x(1)) + line(x(2)));
  });
  it('reads nothing when the log is removed between its stat and its open (ENOENT), as when it was never there', async () => {
    await writeFile(path, line(x(1)));
    const l = log();
    // readNew's stat is synchronous and its first await (closing a kept file) comes before the open: the file is gone then.
    const reading = l.readNew();
    unlinkSync(path);
    expect(await reading).to.equal(undefined);
    expect(l.unchanged()).to.equal(false);
    await writeFile(path, line(x(2)));
    expect(await l.readNew()).to.deep.equal({ replaced: true, records: [x(2)] });
  });

  describe('with a pass-through spy on FileHandle.prototype (real calls, counted or followed by a real change)', () => {
    type Proto = { stat: (...args: unknown[]) => Promise<Stats>; truncate: (len?: number) => Promise<void> };
    let proto: Proto;
    let realStat: Proto['stat'];
    let realTruncate: Proto['truncate'];
    /** Lengths passed to FileHandle.truncate. */
    let truncated: number[];
    /** When set, the next FileHandle.stat is followed by a truncation of the log to this length (another writer). */
    let cutAfterStat: number | undefined;
    beforeEach(async () => {
      truncated = [];
      cutAfterStat = undefined;
      const probe = await open(join(dir, 'probe'), 'w');
      proto = Object.getPrototypeOf(probe) as Proto;
      await probe.close();
      await rm(join(dir, 'probe'));
      realStat = proto.stat;
      realTruncate = proto.truncate;
      proto.stat = async function (this: FileHandle, ...args: unknown[]) {
        const info = await realStat.apply(this, args);
        if (cutAfterStat !== undefined) {
          truncateSync(path, cutAfterStat);
          cutAfterStat = undefined;
        }
        return info;
      };
      proto.truncate = function (this: FileHandle, len?: number) {
        truncated.push(len ?? 0);
        return realTruncate.call(this, len);
      };
    });
    afterEach(() => {
      proto.stat = realStat;
      proto.truncate = realTruncate;
    });

    it('truncates before an append only when the last read ended in a torn record, and then to its offset', async () => {
      await writeFile(path, line(x(1)));
      const l = log();
      await l.readNew();
      await l.append([x(2)]);
      await l.readNew();
      await l.append([x(3)]);
      expect(truncated).to.deep.equal([]);
      await appendFile(path, '{"t":"x","u"');
      await l.readNew();
      await l.append([x(4)]);
      expect(truncated).to.deep.equal([3 * line(x(1)).length]);
      expect(await readFile(path, 'utf8')).to.equal(line(x(1)) + line(x(2)) + line(x(3)) + line(x(4)));
    });

    it('reads the complete records that are left when another writer cuts the log short right after its stat', async () => {
      await writeFile(path, line(x(1)) + line(x(2)) + line(x(3)));
      const l = log();
      cutAfterStat = line(x(1)).length + 4; // x(1) and a torn piece of x(2)
      expect(await l.readNew()).to.deep.equal({ replaced: true, records: [x(1)] });
      expect(l.records).to.equal(1);
      expect(await l.readNew()).to.deep.equal({ replaced: false, records: [] });
      await l.append([x(4)]);
      expect(await readFile(path, 'utf8')).to.equal(line(x(1)) + line(x(4)));
      expect(l.records).to.equal(2);
      expect(l.unchanged()).to.equal(true);
    });

    it('reads nothing and counts no record when the log is emptied right after its stat', async () => {
      await writeFile(path, line(x(1)) + line(x(2)));
      const l = log();
      cutAfterStat = 0;
      expect(await l.readNew()).to.deep.equal({ replaced: true, records: [] });
      expect(l.records).to.equal(0);
      expect(l.unchanged()).to.equal(true);
      await appendFile(path, line(x(3)));
      expect(await l.readNew()).to.deep.equal({ replaced: false, records: [x(3)] });
      expect(l.records).to.equal(1);
    });
  });

  it('closes the kept file of a log that is collected without close(), without Node closing it on garbage collection', async function () {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await writeFile(path, line(x(1)));
    const openOnLog = (): number => openOn(path);
    const warnings: string[] = [];
    const onWarning = (w: Error): number => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await (async () => {
        const dropped = new FolderLog(path, false);
        expect(await dropped.readNew()).to.deep.equal({ replaced: true, records: [x(1)] });
      })();
      expect(openOnLog()).to.equal(1);
      // Each round collects what it can and lets the finalization callbacks and the closes they start run.
      for (let round = 0; round < 100 && openOnLog() > 0; round++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(openOnLog()).to.equal(0);
      expect(warnings.filter((w) => w.includes('on garbage collection'))).to.deep.equal([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('Maildir FolderCache (mutation testing)', () => {
  let dir: string;
  const structure = { type: 'text', subtype: 'plain' } as unknown as MimePart;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-folder-cache-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const lines = async (d = dir): Promise<unknown[]> =>
    (await readFile(join(d, FOLDER_CACHE_FILE), 'utf8'))
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as unknown);

  it('writes one line per structure in the background, batching the ones put together, and answers from memory', async () => {
    const c = new FolderCache(dir);
    expect(await c.get('a')).to.equal(undefined);
    c.put('a', { structure, canonicalSize: 5 });
    c.put('b', { structure, canonicalSize: 6 });
    expect(await c.get('a')).to.deep.equal({ structure, canonicalSize: 5 });
    await c.settled();
    expect(await lines()).to.deep.equal([
      { b: 'a', s: structure, w: 5 },
      { b: 'b', s: structure, w: 6 },
    ]);
    c.put('c', { structure, canonicalSize: 7 });
    await c.settled();
    expect(await lines()).to.have.length(3);
  });

  it('loads the lines another process wrote, skipping torn and ill-typed ones', async () => {
    const good = { b: 'ok', s: structure, w: 3 };
    const text = [good, { b: 1, s: structure, w: 3 }, { b: 'n', s: null, w: 3 }, { b: 's', s: 'x', w: 3 }, { b: 'w', s: structure, w: 1.5 }, { b: 'v', s: structure }]
      .map((l) => JSON.stringify(l))
      .join('\n');
    await writeFile(join(dir, FOLDER_CACHE_FILE), text + '\n{"b":"torn","s":{');
    const c = new FolderCache(dir);
    expect(await c.get('ok')).to.deep.equal({ structure, canonicalSize: 3 });
    for (const b of ['n', 's', 'w', 'v', 'torn']) expect(await c.get(b), b).to.equal(undefined);
  });

  it('compacts only past twice the live messages plus 1000 lines, keeping the live ones', async () => {
    const many = Array.from({ length: 1002 }, (_, i) => JSON.stringify({ b: `m${i}`, s: structure, w: i }) + '\n');
    await writeFile(join(dir, FOLDER_CACHE_FILE), many.slice(0, 1000).join(''));
    const c = new FolderCache(dir);
    await c.get('m0'); // loaded: 1000 lines
    await c.compact(new Set());
    expect(await lines()).to.have.length(1000);
    c.put('m1000', { structure, canonicalSize: 1000 });
    await c.settled();
    await c.compact(new Set(['m0'])); // 1001 lines, not more than 2 * 1 + 1000
    expect(await lines()).to.have.length(1001);
    await c.compact(new Set()); // 1001 > 1000
    expect(await lines()).to.deep.equal([]);
    expect(await readdir(dir)).to.deep.equal([FOLDER_CACHE_FILE]);
    c.put('p', { structure, canonicalSize: 1 });
    await c.settled();
    await c.compact(new Set(['p'])); // one line now
    expect(await lines()).to.deep.equal([{ b: 'p', s: structure, w: 1 }]);
  });

  it('compacts the entries put since loading together with those of the file', async () => {
    const many = Array.from({ length: 1005 }, (_, i) => JSON.stringify({ b: `m${i}`, s: structure, w: i }) + '\n');
    await writeFile(join(dir, FOLDER_CACHE_FILE), many.join(''));
    const c = new FolderCache(dir);
    await c.get('m0');
    c.put('new', { structure, canonicalSize: 9 });
    await c.settled();
    await c.compact(new Set(['m2', 'new'])); // 1006 lines > 2 * 2 + 1000
    expect(await lines()).to.deep.equal([
      { b: 'm2', s: structure, w: 2 },
      { b: 'new', s: structure, w: 9 },
    ]);
  });

  it('counts no line for a missing file: 1000 structures put since do not compact', async () => {
    const c = new FolderCache(dir);
    expect(await c.get('m0')).to.equal(undefined);
    for (let i = 0; i < 1000; i++) c.put(`m${i}`, { structure, canonicalSize: i });
    await c.settled();
    await c.compact(new Set());
    expect(await lines()).to.have.length(1000);
  });

  it('reports a cache file that cannot be read (not a missing one)', async () => {
    await mkdir(join(dir, FOLDER_CACHE_FILE));
    let error: NodeJS.ErrnoException | undefined;
    await new FolderCache(dir).get('a').catch((e: NodeJS.ErrnoException) => (error = e));
    expect(error?.code).to.equal('EISDIR');
  });

  it('leaves no file open after writing its lines and after a compaction', async () => {
    /** Descriptors of this process open on something under the folder. */
    const openInFolder = (): string[] => openUnder(dir + '/');
    const many = Array.from({ length: 1005 }, (_, i) => JSON.stringify({ b: `m${i}`, s: structure, w: i }) + '\n');
    await writeFile(join(dir, FOLDER_CACHE_FILE), many.join(''));
    const c = new FolderCache(dir);
    await c.get('m0'); // 1005 lines: more than 2 * 1 + 1000 after the put
    c.put('a', { structure, canonicalSize: 1 });
    await c.settled();
    expect(openInFolder()).to.deep.equal([]);
    await c.compact(new Set(['a']));
    expect(await lines()).to.deep.equal([{ b: 'a', s: structure, w: 1 }]);
    expect(openInFolder()).to.deep.equal([]);
  });

  it('loses a line quietly when its folder is gone, and follows a rename of the folder', async () => {
    const c = new FolderCache(join(dir, 'gone'));
    c.put('a', { structure, canonicalSize: 1 });
    await c.settled();
    c.moveTo(dir);
    c.put('b', { structure, canonicalSize: 2 });
    await c.settled();
    expect(await lines()).to.deep.equal([{ b: 'b', s: structure, w: 2 }]);
  });
});
