/**
 * The Maildir folder state (issue 16, survivors of its mutation run): how each log record changes the state and its
 * STATUS counters, what a compaction snapshot holds, and which log lines parse (a torn or foreign line must be
 * skipped, never applied half).
 */
import { expect } from 'chai';
import { FolderState, appendRecordOf, fileNameOf, flagsOfEntry, noChanges, parseRecord, type Entry, type LogRecord } from '../../lib/backends/maildir/folder-state.js';

/** The counters and entries an IMAP STATUS and a listing read. */
function summary(s: FolderState): Record<string, unknown> {
  return {
    size: s.size,
    unseen: s.unseen,
    recent: s.recent,
    inNew: s.inNew(),
    keywords: s.keywords(),
    uids: s.list().map((e) => e.uid),
    uidNext: s.uidNext,
    highestModseq: s.highestModseq,
  };
}

const add = (u: number, m: number, more: Partial<Extract<LogRecord, { t: 'a' }>> = {}): LogRecord => ({ t: 'a', u, m, b: `base${u}`, d: 1000 + u, s: 10 * u, ...more });

describe('Maildir FolderState (mutation testing)', () => {
  it('takes UIDVALIDITY from a header and never lowers UIDNEXT or HIGHESTMODSEQ with it', () => {
    const s = new FolderState();
    s.apply({ t: 'h', v: 2, uv: 77, un: 5, hm: 9 });
    expect([s.uidValidity, s.uidNext, s.highestModseq]).to.deep.equal([77, 5, 9]);
    s.apply({ t: 'h', v: 2, uv: 78, un: 3, hm: 4 });
    expect([s.uidValidity, s.uidNext, s.highestModseq]).to.deep.equal([78, 5, 9]);
  });

  it('adds messages in new/ and cur/ with their counters, the UIDNEXT after them and the changes', () => {
    const s = new FolderState();
    const changes = noChanges();
    s.apply(add(1, 3, { n: 1, l: 'S' }), changes);
    s.apply(add(2, 2, { l: 'S', k: ['Work'] }), changes);
    s.apply(add(3, 4, { k: ['Work', 'Home'] }), changes);
    expect(changes).to.deep.equal({ added: [1, 2, 3], expunged: [], flagged: [] });
    expect(summary(s)).to.deep.equal({ size: 3, unseen: 2, recent: 1, inNew: [1], keywords: ['Home', 'Work'], uids: [1, 2, 3], uidNext: 4, highestModseq: 4 });
    // A message in new/ has no info letters, whatever the record says.
    expect(s.get(1)).to.deep.include({ dir: 'new', letters: '', keywords: [] });
    expect(s.get(2)).to.deep.equal({ uid: 2, base: 'base2', dir: 'cur', letters: 'S', keywords: ['Work'], size: 20, internalDate: 1002, modseq: 2 });
    expect(s.get(3)).to.deep.include({ dir: 'cur', letters: '' });
    expect(s.get(2)).to.not.have.property('envelope');
    expect(s.byBase('base3')?.uid).to.equal(3);
    expect(s.byBase('nope')).to.equal(undefined);
  });

  it('keeps the envelope of a delivery', () => {
    const s = new FolderState();
    const envelope = { mailFrom: 'a@example.org', rcptTo: ['b@example.org'], receivedAt: '2026-11-30T20:00:00.000Z' };
    s.apply(add(1, 1, { e: envelope }));
    expect(s.get(1)?.envelope).to.deep.equal(envelope);
    expect(appendRecordOf(s.get(1)!)).to.have.deep.property('e', envelope);
  });

  it('keeps the EMAILID a copy carries (RFC 8474), and none for a message whose base name gives it', () => {
    const s = new FolderState();
    s.apply(add(1, 1, { i: 'Mcopied' }));
    s.apply(add(2, 2));
    expect(s.get(1)?.emailId).to.equal('Mcopied');
    expect(appendRecordOf(s.get(1)!)).to.have.property('i', 'Mcopied');
    expect(s.get(2)).to.not.have.property('emailId');
    expect(appendRecordOf(s.get(2)!)).to.not.have.property('i');
  });

  it('ignores a second add of a UID, and moves a base name delivered again to its new UID', () => {
    const s = new FolderState();
    s.apply(add(1, 1, { n: 1 }));
    const changes = noChanges();
    s.apply(add(1, 2, { b: 'other', l: 'S' }), changes);
    expect(changes.added).to.deep.equal([]);
    expect(summary(s)).to.deep.include({ size: 1, unseen: 1, recent: 1, highestModseq: 2 });
    s.apply(add(5, 3, { b: 'base1', l: 'S', k: ['K'] }), changes);
    expect(summary(s)).to.deep.equal({ size: 1, unseen: 0, recent: 0, inNew: [], keywords: ['K'], uids: [5], uidNext: 6, highestModseq: 3 });
    expect(s.byBase('base1')?.uid).to.equal(5);
    expect(s.get(1)).to.equal(undefined);
  });

  it('lists entries in UID order when a log applies them out of order', () => {
    const s = new FolderState();
    s.apply(add(3, 1));
    s.apply(add(1, 2));
    s.apply(add(2, 3));
    expect(s.list().map((e) => e.uid)).to.deep.equal([1, 2, 3]);
    const ordered = new FolderState();
    ordered.apply(add(1, 1));
    ordered.apply(add(3, 2));
    ordered.apply(add(3, 3, { b: 'again' }));
    expect(ordered.list().map((e) => e.uid)).to.deep.equal([1, 3]);
  });

  it('applies flag changes to counters (moving the file to cur/), ignoring unknown UIDs but not their modseq', () => {
    const s = new FolderState();
    s.apply(add(1, 1, { n: 1, k: ['A'] }));
    s.apply(add(2, 2, { k: ['A'] }));
    const changes = noChanges();
    s.apply({ t: 'f', u: 1, m: 5, l: 'S', k: ['B'] }, changes);
    expect(changes).to.deep.equal({ added: [], expunged: [], flagged: [1] });
    expect(s.get(1)).to.deep.include({ dir: 'cur', letters: 'S', keywords: ['B'], modseq: 5 });
    expect(summary(s)).to.deep.include({ unseen: 1, recent: 0, inNew: [], keywords: ['A', 'B'], highestModseq: 5 });
    s.apply({ t: 'f', u: 2, m: 6, l: 'S' }, changes);
    expect(s.get(2)?.keywords).to.deep.equal([]);
    expect(summary(s)).to.deep.include({ unseen: 0, keywords: ['B'] });
    s.apply({ t: 'f', u: 9, m: 8, l: 'S' }, changes);
    expect(changes.flagged).to.deep.equal([1, 2]);
    expect(s.highestModseq).to.equal(8);
    s.apply({ t: 'f', u: 1, m: 7, l: '' });
    expect(s.highestModseq).to.equal(8);
  });

  it('moves messages from new/ to cur/ on a `c` record, skipping unknown UIDs and those already in cur/', () => {
    const s = new FolderState();
    s.apply(add(1, 1, { n: 1 }));
    s.apply(add(2, 2, { n: 1, k: ['K'] }));
    s.apply(add(3, 3, { l: 'S', k: ['K'] }));
    s.apply({ t: 'c', u: [9, 3, 1] });
    expect(summary(s)).to.deep.include({ recent: 1, inNew: [2], unseen: 2, keywords: ['K'] });
    expect(s.get(1)).to.deep.include({ dir: 'cur', letters: '' });
    expect(s.get(3)).to.deep.include({ dir: 'cur', letters: 'S' });
    s.apply({ t: 'c', u: [2] });
    expect(summary(s)).to.deep.include({ recent: 0, inNew: [], unseen: 2, keywords: ['K'] });
  });

  it('expunges known UIDs with one modseq, reporting only those, and keeps keyword counts right', () => {
    const s = new FolderState();
    s.apply(add(1, 1, { n: 1, k: ['K'] }));
    s.apply(add(2, 2, { k: ['K'] }));
    s.apply(add(3, 3, { l: 'S' }));
    const changes = noChanges();
    s.apply({ t: 'x', u: [1, 7, 3], m: 9 }, changes);
    expect(changes).to.deep.equal({ added: [], expunged: [1, 3], flagged: [] });
    expect(summary(s)).to.deep.equal({ size: 1, unseen: 1, recent: 0, inNew: [], keywords: ['K'], uids: [2], uidNext: 4, highestModseq: 9 });
    s.apply({ t: 'x', u: [2], m: 4 });
    expect(summary(s)).to.deep.include({ size: 0, unseen: 0, keywords: [], highestModseq: 9 });
  });

  it('keeps the directory stamp and writes it last in a snapshot, after the header and the messages in UID order', () => {
    const s = new FolderState();
    s.apply({ t: 'h', v: 2, uv: 42, un: 1, hm: 0 });
    expect(s.snapshot()).to.deep.equal([{ t: 'h', v: 2, uv: 42, un: 1, hm: 0 }]);
    s.apply(add(2, 2, { n: 1 }));
    s.apply(add(1, 1, { l: 'FS', k: ['K'] }));
    s.apply({ t: 's', n: '111', c: '222' });
    expect(s.dirStamp).to.deep.equal({ n: '111', c: '222' });
    expect(s.snapshot()).to.deep.equal([
      { t: 'h', v: 2, uv: 42, un: 3, hm: 2 },
      { t: 'a', u: 1, m: 1, b: 'base1', d: 1001, s: 10, l: 'FS', k: ['K'] },
      { t: 'a', u: 2, m: 2, b: 'base2', d: 1002, s: 20, n: 1 },
      { t: 's', n: '111', c: '222' },
    ]);
  });

  it('allocates UIDs after the last (post-increment) and modseqs above the highest (pre-increment)', () => {
    const s = new FolderState();
    s.apply(add(4, 6));
    expect([s.allocateUid(), s.allocateUid(), s.uidNext]).to.deep.equal([5, 6, 7]);
    expect([s.allocateModseq(), s.allocateModseq(), s.highestModseq]).to.deep.equal([7, 8, 8]);
  });

  it('names files and flags of entries; an append record copies the keywords', () => {
    const entry: Entry = { uid: 1, base: 'b1', dir: 'cur', letters: 'RS', keywords: ['K'], size: 1, internalDate: 2, modseq: 3 };
    expect(fileNameOf(entry)).to.equal('b1:2,RS');
    expect(fileNameOf({ ...entry, dir: 'new' })).to.equal('b1');
    expect([...flagsOfEntry(entry)].sort()).to.deep.equal(['K', '\\Answered', '\\Seen']);
    const record = appendRecordOf(entry) as { k: string[] };
    expect(record).to.deep.equal({ t: 'a', u: 1, m: 3, b: 'b1', d: 2, s: 1, l: 'RS', k: ['K'] });
    expect(record.k).to.not.equal(entry.keywords);
    expect(appendRecordOf({ ...entry, keywords: [] })).to.not.have.property('k');
  });
});

describe('Maildir parseRecord (mutation testing)', () => {
  const ok = (r: unknown): void => {
    expect(parseRecord(JSON.stringify(r)), JSON.stringify(r)).to.deep.equal(r);
  };
  const bad = (line: string): void => {
    expect(parseRecord(line), line).to.equal(undefined);
  };

  it('parses every well-formed record as it is', () => {
    ok({ t: 'h', v: 2, uv: 0, un: 1, hm: 0 });
    ok({ t: 'a', u: 1, m: 2, b: 'x', d: 0, s: 5 });
    ok({ t: 'a', u: 1, m: 2, b: 'x', d: 3, s: 5, l: 'S', k: ['K'], e: { mailFrom: '', rcptTo: [] } });
    ok({ t: 'a', u: 1, m: 2, b: 'x', d: 3, s: 5, n: 1, k: [] });
    ok({ t: 'a', u: 1, m: 2, b: 'x', d: 3, s: 5, n: 1, i: 'Mcopied' });
    ok({ t: 'f', u: 1, m: 2, l: '' });
    ok({ t: 'f', u: 1, m: 2, l: 'S', k: ['A', 'B'] });
    ok({ t: 'c', u: [] });
    ok({ t: 'c', u: [1, 2] });
    ok({ t: 'x', u: [3], m: 4 });
    ok({ t: 's', n: '1', c: '2' });
  });

  it('skips torn, foreign and ill-typed lines', () => {
    for (const line of ['', '{"t":"a","u":2,"m":2,"b":"17000', 'null', '5', '"h"', '[]', '{}', '{"t":"z"}']) bad(line);
    // header: each number a non-negative safe integer
    for (const r of [
      { t: 'h', v: 2, un: 1, hm: 0 },
      { t: 'h', v: 2, uv: 0, un: -1, hm: 0 },
      { t: 'h', v: 2, uv: 0, un: 1, hm: 1.5 },
      { t: 'h', v: 2, uv: 2 ** 53, un: 1, hm: 0 },
    ])
      bad(JSON.stringify(r));
    const a = { t: 'a', u: 1, m: 2, b: 'x', d: 3, s: 5 };
    for (const r of [
      { ...a, u: -1 },
      { ...a, m: '2' },
      { ...a, b: 7 },
      { ...a, d: -3 },
      { ...a, s: 0.5 },
      { ...a, l: 5 },
      { ...a, k: 'K' },
      { ...a, k: ['K', 1] },
      { ...a, e: null },
      { ...a, e: 'envelope' },
      { ...a, i: 7 },
      { ...a, i: null },
    ])
      bad(JSON.stringify(r));
    const f = { t: 'f', u: 1, m: 2, l: 'S' };
    for (const r of [{ ...f, u: 'x' }, { ...f, m: -2 }, { ...f, l: undefined }, { ...f, l: 1 }, { ...f, k: [2] }, { ...f, k: {} }]) bad(JSON.stringify(r));
    for (const r of [
      { t: 'c', u: 1 },
      { t: 'c', u: [1, -1] },
      { t: 'c' },
      { t: 'x', u: [1] },
      { t: 'x', u: 1, m: 1 },
      { t: 'x', u: ['1'], m: 1 },
      { t: 's', n: 1, c: '2' },
      { t: 's', n: '1' },
    ])
      bad(JSON.stringify(r));
  });
});
