import type pg from 'pg';
import { MailStoreError, type MailboxEvent, type MailboxInfo, type StoredMessage, type UserMailboxes } from '../../contracts/mail-store.js';
import { INBOX, hierarchyOf, isInbox, normalizeMailboxName, renamePlan, superiorsOf } from '../shared/mailbox-names.js';
import { applyFlags, sameFlags } from '../shared/message-flags.js';
import type { PgDatabase } from './pg-database.js';
import { MESSAGE_COLUMNS, collectBodies, storedMessage, type MessageRow } from './pg-messages.js';
import type { MessageInserter } from './pg-insert.js';
import type { PgUser } from './pg-user-directory.js';
import { MAILBOX_INFO, bumpModseq, copyMessages, describeMailbox, expungeMessages, lockMailbox, noSuchMailbox, type MailboxRow } from './pg-mailbox-sql.js';

/** What a {@link PgUserMailboxes} view needs from its store (implemented by PostgresMailStore). */
export interface PgUserContext {
  readonly db: PgDatabase;
  readonly node: string;
  /** Stores new messages (group commit per mailbox). */
  readonly inserter: MessageInserter;
  /** Runs `task` in a transaction that NOTIFYs the events it collects, then emits them locally after COMMIT. */
  change<T>(task: (client: pg.PoolClient, events: MailboxEvent[]) => Promise<T>): Promise<T>;
  /** Emits events of a change already committed (and NOTIFYed) by a single statement. */
  emit(event: MailboxEvent): void;
  /** A view of `user` was released (the store counts open views to resync them after a LISTEN gap). */
  viewReleased(user: PgUser): void;
}

/**
 * One session's view of a user in the PostgreSQL store. Every mutating call is one transaction; the UID and MODSEQ
 * counters are taken under the mailbox row's lock, so views on any node never hand out the same UID twice.
 */
export class PgUserMailboxes implements UserMailboxes {
  private released = false;
  readonly username: string;

  /** @param store the owning store. @param user the canonical user. */
  constructor(
    private readonly store: PgUserContext,
    private readonly user: PgUser,
  ) {
    this.username = user.username;
  }

  async list(): Promise<MailboxInfo[]> {
    this.check();
    const [boxes, subscribed] = await Promise.all([
      this.store.db.query<MailboxRow>(MAILBOX_INFO, [this.user.id]),
      this.subscriptionSet(),
    ]);
    const byName = new Map(boxes.rows.map((row) => [row.name, row]));
    return hierarchyOf(byName.keys()).map((entry) => {
      const row = byName.get(entry.name);
      if (row === undefined) {
        return { ...entry, uidValidity: 0, uidNext: 0, highestModseq: 0, messages: 0, unseen: 0, recent: 0, keywords: [], subscribed: subscribed.has(entry.name) };
      }
      return { ...describeMailbox(row), hasChildren: entry.hasChildren };
    });
  }

  async info(mailbox: string): Promise<MailboxInfo> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    const [{ rows }, children] = await Promise.all([
      this.store.db.query<MailboxRow>(`${MAILBOX_INFO} AND mb.name = $2`, [this.user.id, name]),
      this.store.db.query('SELECT 1 FROM postern_mailboxes WHERE user_id = $1 AND starts_with(name, $2) LIMIT 1', [this.user.id, name + '/']),
    ]);
    if (rows[0] === undefined) throw noSuchMailbox(name);
    return { ...describeMailbox(rows[0]), hasChildren: children.rowCount !== 0 };
  }

  async create(mailbox: string): Promise<void> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    await this.store.change(async (client, events) => {
      for (const level of [...superiorsOf(name), name]) {
        const { rowCount } = await client.query('INSERT INTO postern_mailboxes (user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [this.user.id, level]);
        if (rowCount !== 0) events.push({ type: 'mailbox', username: this.username, mailbox: level, change: 'created' });
        else if (level === name) throw new MailStoreError('ALREADY_EXISTS', `mailbox ${name} exists`);
      }
    });
  }

  async delete(mailbox: string): Promise<void> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    if (isInbox(name)) throw new MailStoreError('CANNOT', 'INBOX cannot be deleted');
    const hashes = await this.store.change(async (client, events) => {
      const box = await lockMailbox(client, this.user.id, name);
      const removed = await client.query<{ uid: number; body_hash: Buffer }>(
        'DELETE FROM postern_messages WHERE mailbox_id = $1 RETURNING uid, body_hash',
        [box.id],
      );
      await client.query('DELETE FROM postern_mailboxes WHERE id = $1', [box.id]);
      const uids = removed.rows.map((r) => r.uid).sort((a, b) => a - b);
      if (uids.length > 0) events.push({ type: 'expunge', username: this.username, mailbox: name, uids });
      events.push({ type: 'mailbox', username: this.username, mailbox: name, change: 'deleted' });
      return removed.rows.map((r) => r.body_hash);
    });
    await collectBodies(this.store.db, hashes);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check();
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    if (isInbox(source)) {
      // RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name and leaves INBOX empty.
      renamePlan(await this.names(), source, target);
      await this.create(target);
      const inbox = await this.messages(INBOX, { peek: true });
      await this.move(INBOX, inbox.map((m) => m.uid), target);
      return;
    }
    await this.store.change(async (client, events) => {
      const { rows } = await client.query<{ name: string }>('SELECT name FROM postern_mailboxes WHERE user_id = $1 ORDER BY id FOR UPDATE', [this.user.id]);
      const names = rows.map((r) => r.name);
      if (!names.includes(source)) throw noSuchMailbox(source);
      const plan = renamePlan(names, source, target);
      for (const [oldName, newName] of plan) {
        await client.query('UPDATE postern_mailboxes SET name = $3 WHERE user_id = $1 AND name = $2', [this.user.id, oldName, newName]);
        await client.query('UPDATE postern_subscriptions SET name = $3 WHERE user_id = $1 AND name = $2', [this.user.id, oldName, newName]);
      }
      for (const [oldName, newName] of plan) events.push({ type: 'mailbox', username: this.username, mailbox: oldName, change: 'renamed', newName });
      // RFC 3501 §6.3.5: superior names needed by the new name are created.
      for (const superior of superiorsOf(target)) {
        const { rowCount } = await client.query('INSERT INTO postern_mailboxes (user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [this.user.id, superior]);
        if (rowCount !== 0) events.push({ type: 'mailbox', username: this.username, mailbox: superior, change: 'created' });
      }
    });
  }

  async subscribe(mailbox: string, subscribed: boolean): Promise<void> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    if (!subscribed) {
      await this.store.db.query('DELETE FROM postern_subscriptions WHERE user_id = $1 AND name = $2', [this.user.id, name]);
      return;
    }
    const { rowCount } = await this.store.db.query(
      `INSERT INTO postern_subscriptions (user_id, name)
       SELECT user_id, name FROM postern_mailboxes WHERE user_id = $1 AND name = $2 ON CONFLICT DO NOTHING RETURNING 1`,
      [this.user.id, name],
    );
    if (rowCount === 0 && !(await this.names()).includes(name)) throw noSuchMailbox(name);
  }

  async subscriptions(): Promise<string[]> {
    this.check();
    return [...(await this.subscriptionSet())].sort();
  }

  async messages(mailbox: string, options: { peek?: boolean } = {}): Promise<StoredMessage[]> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    // One round trip: the mailbox (none: it does not exist), its messages in UID order (metadata only), and the
    // recent hint cleared unless peeking.
    const { rows } = await this.store.db.query<MessageRow & { found: number }>(
      `WITH mb AS (SELECT id FROM postern_mailboxes WHERE user_id = $1 AND name = $2),
       cleared AS (UPDATE postern_messages SET recent = false WHERE mailbox_id = (SELECT id FROM mb) AND recent AND $3::boolean)
       SELECT mb.id AS found, ${MESSAGE_COLUMNS} FROM mb LEFT JOIN postern_messages m ON m.mailbox_id = mb.id ORDER BY m.uid`,
      [this.user.id, name, options.peek !== true],
    );
    if (rows.length === 0) throw noSuchMailbox(name);
    return rows.filter((row) => row.id !== null).map((row) => storedMessage(this.store.db, row));
  }

  async append(mailbox: string, raw: Buffer, flags: string[] = [], internalDate = new Date()): Promise<StoredMessage> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    const row = await this.store.inserter.insert({ owner: this.user, mailbox: name, raw, flags, internalDate });
    if (row === undefined) throw noSuchMailbox(name);
    this.store.emit({ type: 'exists', username: this.username, mailbox: name, uid: row.uid });
    return storedMessage(this.store.db, row);
  }

  async setFlags(mailbox: string, uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<StoredMessage[]> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    const rows = await this.store.change(async (client, events) => {
      const box = await lockMailbox(client, this.user.id, name);
      const found = await client.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM postern_messages m WHERE m.mailbox_id = $1 AND m.uid = ANY($2) ORDER BY m.uid`, [box.id, uids]);
      const changed: Array<{ id: number; flags: string[] }> = [];
      const result = found.rows.map((row) => {
        const next = applyFlags(row.flags, flags, mode);
        if (sameFlags(next, new Set(row.flags))) return row;
        changed.push({ id: row.id, flags: [...next] });
        return { ...row, flags: [...next] };
      });
      if (changed.length === 0) return result;
      // RFC 7162 §3.1: every changed message gets a new MODSEQ; one STORE may give them the same one.
      const modseq = await bumpModseq(client, box.id);
      await client.query(
        `UPDATE postern_messages m SET flags = v.flags, modseq = $2
         FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, flags text[]) WHERE m.id = v.id`,
        [JSON.stringify(changed), modseq],
      );
      const ids = new Set(changed.map((c) => c.id));
      events.push({ type: 'flags', username: this.username, mailbox: name, uids: result.filter((r) => ids.has(r.id)).map((r) => r.uid) });
      return result.map((row) => (ids.has(row.id) ? { ...row, modseq } : row));
    });
    return rows.map((row) => storedMessage(this.store.db, row));
  }

  async copy(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    this.check();
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    return this.store.change((client, events) => copyMessages(client, this.user, events, source, uids, target));
  }

  async move(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    this.check();
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    // RFC 6851 §3.1: MOVE is atomic here: the copy and the expunge commit together.
    return this.store.change(async (client, events) => {
      const pairs = await copyMessages(client, this.user, events, source, uids, target);
      await expungeMessages(client, this.user, events, source, pairs.map(([uid]) => uid));
      return pairs;
    });
  }

  async expunge(mailbox: string, uids: number[]): Promise<number[]> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    const removed = await this.store.change((client, events) => expungeMessages(client, this.user, events, name, uids));
    await collectBodies(this.store.db, removed.hashes);
    return removed.uids;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.store.viewReleased(this.user);
  }

  private async names(): Promise<string[]> {
    const { rows } = await this.store.db.query<{ name: string }>('SELECT name FROM postern_mailboxes WHERE user_id = $1', [this.user.id]);
    return rows.map((r) => r.name);
  }

  private async subscriptionSet(): Promise<Set<string>> {
    const { rows } = await this.store.db.query<{ name: string }>('SELECT name FROM postern_subscriptions WHERE user_id = $1', [this.user.id]);
    return new Set(rows.map((r) => r.name));
  }

  private check(): void {
    if (this.released) throw new MailStoreError('CANNOT', 'mailbox view released');
  }
}
