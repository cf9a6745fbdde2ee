/**
 * The changes a Maildir folder (`MaildirFolder`) queues for its group commit, and how one of them is done on disk once the
 * commit holds the folder lock: files renamed or removed, the change's log record made and applied to the state.
 */
import { rename, unlink } from 'node:fs/promises';
import { applyFlags, isKeyword } from '../shared/message-flags.js';
import { isErrno } from './durable-fs.js';
import { messagePath } from './folder-scan.js';
import { flagsOfEntry, type Entry, type FolderState, type LogRecord } from './folder-state.js';
import { lettersOfFlags } from './maildir-names.js';

/** How a queued change's caller is answered (after its whole group is durable). */
export interface Deferred<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}
/** A new message, already written and fsynced in `tmp/`. */
export type AddOp = { kind: 'add'; tmp: string; entry: Omit<Entry, 'uid' | 'modseq'>; done: Deferred<Entry> };
export type FlagsOp = { kind: 'flags'; uids: number[]; flags: string[]; mode: 'set' | 'add' | 'remove'; done: Deferred<{ entries: Entry[]; changed: number[] }> };
export type ExpungeOp = { kind: 'expunge'; uids: number[]; done: Deferred<number[]> };
/** `new/` → `cur/` for every message a client has now seen. */
export type CurrentOp = { kind: 'current'; done: Deferred<void> };
export type Op = AddOp | FlagsOp | ExpungeOp | CurrentOp;

/** What one change needs of its commit: the folder's state and directory, and where its records and touched directories go. */
export interface CommitContext {
  /** The folder's state as it is now (a deletion replaces it, and a change awaits its files between steps). */
  state(): FolderState;
  /** The folder's directory as it is now (a rename moves it). */
  path(): string;
  /** Applies a record to the state and adds it to the group's records. */
  record(r: LogRecord): void;
  /** The directories the group changed (each is fsynced once). */
  readonly touched: Set<'new' | 'cur'>;
}

/**
 * Does one queued change on disk and records it. The files one change touches are renamed (or removed) in parallel;
 * those that vanished meanwhile (another tool) are left to the next scan.
 * @param placed the rename of an `add`'s file into place, already started by the commit.
 * @returns what the change's caller is answered with.
 */
export async function performOp(op: Op, c: CommitContext, placed?: Promise<void>): Promise<unknown> {
  switch (op.kind) {
    case 'add':
      return performAdd(op, c, placed);
    case 'flags':
      return performFlags(op, c);
    case 'expunge':
      return performExpunge(op, c);
    case 'current':
      return performCurrent(c);
  }
}

async function performAdd(op: AddOp, c: CommitContext, placed: Promise<void> | undefined): Promise<Entry> {
  try {
    await placed;
  } catch (err) {
    await unlink(op.tmp).catch(() => undefined);
    throw err;
  }
  c.touched.add(op.entry.dir);
  const uid = c.state().allocateUid();
  const { base, dir, letters, keywords, size, internalDate, envelope, emailId } = op.entry;
  c.record({
    t: 'a',
    u: uid,
    m: c.state().allocateModseq(),
    b: base,
    d: internalDate,
    s: size,
    ...(dir === 'new' ? { n: 1 as const } : { l: letters }),
    ...(keywords.length > 0 ? { k: [...keywords] } : {}),
    ...(envelope === undefined ? {} : { e: envelope }),
    ...(emailId === undefined ? {} : { i: emailId }),
  });
  return { ...c.state().get(uid)! };
}

type FlagPlan = { uid: number; letters: string; keywords: string[]; move: Promise<void> | undefined; wasNew: boolean } | { uid: number; same: true };

async function performFlags(op: FlagsOp, c: CommitContext): Promise<{ entries: Entry[]; changed: number[] }> {
  const plans: FlagPlan[] = [];
  for (const uid of [...new Set(op.uids)].sort((a, b) => a - b)) {
    const entry = c.state().get(uid);
    if (entry === undefined) continue;
    const next = [...applyFlags(flagsOfEntry(entry), op.flags, op.mode)];
    const letters = lettersOfFlags(next, entry.letters);
    const keywords = next.filter(isKeyword);
    if (letters === entry.letters && keywords.join('\n') === entry.keywords.join('\n')) {
      plans.push({ uid, same: true });
      continue;
    }
    const move = letters !== entry.letters || entry.dir === 'new' ? rename(messagePath(c.path(), entry), messagePath(c.path(), { base: entry.base, dir: 'cur', letters })) : undefined;
    plans.push({ uid, letters, keywords, move, wasNew: entry.dir === 'new' });
  }
  const moved = await Promise.allSettled(plans.map((plan) => ('same' in plan ? undefined : plan.move)));
  const entries: Entry[] = [];
  const changed: number[] = [];
  let failure: unknown;
  plans.forEach((plan, i) => {
    if (!('same' in plan)) {
      const outcome = moved[i]!;
      if (outcome.status === 'rejected') {
        // ENOENT: removed by another tool, the next scan expunges it.
        if (!isErrno(outcome.reason, 'ENOENT')) failure ??= outcome.reason;
        return;
      }
      if (plan.move !== undefined) {
        c.touched.add('cur');
        if (plan.wasNew) c.touched.add('new');
      }
      c.record({ t: 'f', u: plan.uid, m: c.state().allocateModseq(), l: plan.letters, ...(plan.keywords.length > 0 ? { k: plan.keywords } : {}) });
      changed.push(plan.uid);
    }
    entries.push({ ...c.state().get(plan.uid)! });
  });
  if (failure !== undefined) throw failure;
  return { entries, changed };
}

async function performExpunge(op: ExpungeOp, c: CommitContext): Promise<number[]> {
  const doomed = [...new Set(op.uids)].sort((a, b) => a - b).flatMap((uid) => c.state().get(uid) ?? []);
  const outcomes = await Promise.allSettled(doomed.map((entry) => unlink(messagePath(c.path(), entry))));
  const removed: number[] = [];
  let failure: unknown;
  doomed.forEach((entry, i) => {
    const outcome = outcomes[i]!;
    if (outcome.status === 'rejected' && !isErrno(outcome.reason, 'ENOENT')) {
      failure ??= outcome.reason;
      return;
    }
    c.touched.add(entry.dir);
    removed.push(entry.uid);
  });
  if (removed.length > 0) c.record({ t: 'x', u: removed, m: c.state().allocateModseq() });
  if (failure !== undefined) throw failure;
  return removed;
}

async function performCurrent(c: CommitContext): Promise<undefined> {
  const fresh = c.state().inNew().map((uid) => c.state().get(uid)!);
  const outcomes = await Promise.allSettled(fresh.map((entry) => rename(messagePath(c.path(), entry), messagePath(c.path(), { base: entry.base, dir: 'cur', letters: '' }))));
  const moved: number[] = [];
  let failure: unknown;
  fresh.forEach((entry, i) => {
    const outcome = outcomes[i]!;
    if (outcome.status === 'fulfilled') moved.push(entry.uid);
    else if (!isErrno(outcome.reason, 'ENOENT')) failure ??= outcome.reason;
  });
  if (moved.length > 0) {
    c.touched.add('new').add('cur');
    c.record({ t: 'c', u: moved });
  }
  if (failure !== undefined) throw failure;
  return undefined;
}
