/**
 * The subscription lists of a Maildir store's users (RFC 3501 §6.3.6 SUBSCRIBE), one file in each user's Maildir beside
 * its folders. `maildir-mail-store.ts` re-exports {@link SUBSCRIPTIONS_FILE}.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno, replaceFile } from './durable-fs.js';

/** Per-user subscription list (one UTF-8 mailbox name per line) in the user's Maildir. */
export const SUBSCRIPTIONS_FILE = 'postern-subscriptions';

/** Reads and replaces `postern-subscriptions` files, keeping the last content read per user. */
export class MaildirSubscriptions {
  /** The subscriptions last read per user, with the file's identity then (see {@link read}). */
  private readonly subscriptionsRead = new Map<string, { identity: string; names: string[] }>();

  /** @param durable fsync the file and its directory before a replacement resolves (the store's `fsync` option). */
  constructor(private readonly durable: boolean) {}

  /**
   * The names `username` subscribed to, from the file in `userRoot` (the user's Maildir); empty when there is none.
   * The last content read is reused while the file's identity (inode, size, mtime) is unchanged: one `stat` instead of
   * a read per STATUS/SELECT. A file changed less than a second before it was read is read again next time (a change
   * in the same mtime tick would not show in its stat).
   */
  async read(username: string, userRoot: string): Promise<Set<string>> {
    const path = join(userRoot, SUBSCRIPTIONS_FILE);
    let info;
    try {
      info = await stat(path, { bigint: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return new Set();
      throw err;
    }
    const identity = `${info.ino}:${info.size}:${info.mtimeNs}`;
    const cached = this.subscriptionsRead.get(username);
    if (cached?.identity === identity) return new Set(cached.names);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return new Set();
      throw err;
    }
    const names = text.split('\n').filter((line) => line.length > 0);
    if (Date.now() - Number(info.mtimeNs / 1_000_000n) > 1000) this.subscriptionsRead.set(username, { identity, names });
    else this.subscriptionsRead.delete(username);
    return new Set(names);
  }

  /** Replaces the file in `userRoot` (the user's Maildir) with `names`, sorted, one a line. */
  async write(userRoot: string, names: Set<string>): Promise<void> {
    const text = [...names].sort().map((name) => name + '\n').join('');
    await replaceFile(join(userRoot, SUBSCRIPTIONS_FILE), text, this.durable);
  }
}
