import type pg from 'pg';
import { MailStoreError, type MailboxEvent, type MailboxInfo, type StoredMessage, type UserMailboxes } from '../../contracts/mail-store.js';
import { INBOX, hierarchyOf, isInbox, normalizeMailboxName, renamePlan, superiorsOf } from '../shared/mailbox-names.js';
import { applyFlags, sameFlags } from '../shared/message-flags.js';
import type { PgDatabase } from './pg-database.js';
import { MESSAGE_COLUMNS, collectBodies, insertMessage, storedMessage, type MessageRow } from './pg-messages.js';
import type { PgUser } from './pg-user-directory.js';

/** What a {@link PgUserMailboxes} view needs from its store (implemented by PostgresMailStore). */
export interface PgUserContext {
  readonly db: PgDatabase;
  readonly node: string;
  /** Runs `task` in a transaction that NOTIFYs the events it collects, then emits them locally after COMMIT. */
  change<T>(task: (client: pg.PoolClient, events: MailboxEvent[]) => Promise<T>): Promise<T>;
  /** Emits events of a change already committed (and NOTIFYed) by a single statement. */
  emit(event: MailboxEvent): void;
}

interface MailboxRow {
  readonly name: string;
  readonly uidvalidity: number;
  readonly uidnext: number;
  readonly highest_modseq: number;
  readonly special_use: string | null;
  readonly messages: number;
  readonly unseen: number;
  readonly recent: number;
  readonly keywords: string[];
  readonly subscribed: boolean;
}

// STATUS in one statement. The unseen and recent counts match the partial indexes of the schema.
const MAILBOX_INFO = `
  SELECT mb.name, mb.uidvalidity, mb.uidnext, mb.highest_modseq, mb.special_use,
    (SELECT count(*) FROM postern_messages m WHERE m.mailbox_id = mb.id) AS messages,
    (SELECT count(*) FROM postern_messages m WHERE m.mailbox_id = mb.id AND NOT (m.flags @> ARRAY['\\Seen'])) AS unseen,
    (SELECT count(*) FROM postern_messages m WHERE m.mailbox_id = mb.id AND m.recent) AS recent,
    (SELECT coalesce(array_agg(DISTINCT k), '{}') FROM postern_messages m, unnest(m.flags) k
      WHERE m.mailbox_id = mb.id AND left(k, 1) <> '\\') AS keywords,
    EXISTS (SELECT 1 FROM postern_subscriptions s WHERE s.user_id = mb.user_id AND s.name = mb.name) AS subscribed
  FROM postern_mailboxes mb WHERE mb.user_id = $1`;

function noSuchMailbox(name: string): MailStoreError {
  return new MailStoreError('NO_SUCH_MAILBOX', `no mailbox ${name}`);
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
      return { ...this.describe(row), hasChildren: entry.hasChildren };
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
    return { ...this.describe(rows[0]), hasChildren: children.rowCount !== 0 };
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
      const box = await this.lockMailbox(client, name);
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
    const row = await insertMessage(this.store.db, this.store.node, { userId: this.user.id, username: this.username, mailbox: name, raw, flags, internalDate });
    if (row === undefined) throw noSuchMailbox(name);
    this.store.emit({ type: 'exists', username: this.username, mailbox: name, uid: row.uid });
    return storedMessage(this.store.db, row);
  }

  async setFlags(mailbox: string, uids: number[], flags: string[], mode: 'set' | 'add' | 'remove'): Promise<StoredMessage[]> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    const rows = await this.store.change(async (client, events) => {
      const box = await this.lockMailbox(client, name);
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
      const modseq = await this.bumpModseq(client, box.id);
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
    return this.store.change((client, events) => this.copyIn(client, events, source, uids, target));
  }

  async move(from: string, uids: number[], to: string): Promise<Array<[number, number]>> {
    this.check();
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    // RFC 6851 §3.1: MOVE is atomic here: the copy and the expunge commit together.
    return this.store.change(async (client, events) => {
      const pairs = await this.copyIn(client, events, source, uids, target);
      await this.expungeIn(client, events, source, pairs.map(([uid]) => uid));
      return pairs;
    });
  }

  async expunge(mailbox: string, uids: number[]): Promise<number[]> {
    this.check();
    const name = normalizeMailboxName(mailbox);
    const removed = await this.store.change((client, events) => this.expungeIn(client, events, name, uids));
    await collectBodies(this.store.db, removed.hashes);
    return removed.uids;
  }

  async release(): Promise<void> {
    this.released = true;
  }

  private async copyIn(client: pg.PoolClient, events: MailboxEvent[], source: string, uids: number[], target: string): Promise<Array<[number, number]>> {
    // Both mailbox rows are locked in id order, so two opposite MOVEs cannot deadlock.
    const { rows: boxes } = await client.query<{ id: number; name: string }>(
      'SELECT id, name FROM postern_mailboxes WHERE user_id = $1 AND name = ANY($2) ORDER BY id FOR UPDATE',
      [this.user.id, [source, target]],
    );
    const from = boxes.find((b) => b.name === source);
    const into = boxes.find((b) => b.name === target);
    if (from === undefined) throw noSuchMailbox(source);
    if (into === undefined) throw noSuchMailbox(target);
    const { rows } = await client.query<{ id: number; uid: number }>(
      'SELECT id, uid FROM postern_messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid',
      [from.id, uids],
    );
    if (rows.length === 0) return [];
    // Each copy gets its own UID and MODSEQ, both taken in one step under the target row's lock.
    const { rows: next } = await client.query<{ first: number; modseq: number }>(
      `UPDATE postern_mailboxes SET uidnext = uidnext + $2, highest_modseq = highest_modseq + $2
       WHERE id = $1 RETURNING uidnext - $2 AS first, highest_modseq - $2 + 1 AS modseq`,
      [into.id, rows.length],
    );
    const { first, modseq } = next[0]!;
    // The body is shared, not copied: only a metadata row per message. A copy carries no envelope (see StoredMessage).
    await client.query(
      `INSERT INTO postern_messages (mailbox_id, uid, modseq, internal_date, size, body_hash, flags)
       SELECT $1, $2 + s.ord - 1, $3 + s.ord - 1, m.internal_date, m.size, m.body_hash, m.flags
       FROM unnest($4::bigint[]) WITH ORDINALITY AS s(id, ord) JOIN postern_messages m ON m.id = s.id`,
      [into.id, first, modseq, rows.map((r) => r.id)],
    );
    const pairs = rows.map((row, i): [number, number] => [row.uid, first + i]);
    for (const [, uid] of pairs) events.push({ type: 'exists', username: this.username, mailbox: target, uid });
    return pairs;
  }

  private async expungeIn(client: pg.PoolClient, events: MailboxEvent[], name: string, uids: number[]): Promise<{ uids: number[]; hashes: Buffer[] }> {
    const box = await this.lockMailbox(client, name);
    const { rows } = await client.query<{ uid: number; body_hash: Buffer }>(
      'DELETE FROM postern_messages WHERE mailbox_id = $1 AND uid = ANY($2) RETURNING uid, body_hash',
      [box.id, uids],
    );
    if (rows.length === 0) return { uids: [], hashes: [] };
    await this.bumpModseq(client, box.id);
    const removed = rows.map((r) => r.uid).sort((a, b) => a - b);
    events.push({ type: 'expunge', username: this.username, mailbox: name, uids: removed });
    return { uids: removed, hashes: rows.map((r) => r.body_hash) };
  }

  /** Locks a mailbox row for this transaction (the per-mailbox writer lock). */
  private async lockMailbox(client: pg.PoolClient, name: string): Promise<{ id: number }> {
    const { rows } = await client.query<{ id: number }>('SELECT id FROM postern_mailboxes WHERE user_id = $1 AND name = $2 FOR UPDATE', [this.user.id, name]);
    if (rows[0] === undefined) throw noSuchMailbox(name);
    return rows[0];
  }

  private async bumpModseq(client: pg.PoolClient, mailboxId: number): Promise<number> {
    const { rows } = await client.query<{ modseq: number }>(
      'UPDATE postern_mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq AS modseq',
      [mailboxId],
    );
    return rows[0]!.modseq;
  }

  private async names(): Promise<string[]> {
    const { rows } = await this.store.db.query<{ name: string }>('SELECT name FROM postern_mailboxes WHERE user_id = $1', [this.user.id]);
    return rows.map((r) => r.name);
  }

  private async subscriptionSet(): Promise<Set<string>> {
    const { rows } = await this.store.db.query<{ name: string }>('SELECT name FROM postern_subscriptions WHERE user_id = $1', [this.user.id]);
    return new Set(rows.map((r) => r.name));
  }

  private describe(row: MailboxRow): MailboxInfo {
    const info = {
      name: row.name,
      uidValidity: row.uidvalidity,
      uidNext: row.uidnext,
      highestModseq: row.highest_modseq,
      messages: row.messages,
      unseen: row.unseen,
      recent: row.recent,
      keywords: [...row.keywords].sort(),
      subscribed: row.subscribed,
      hasChildren: false,
      noselect: false,
    };
    return row.special_use === null ? info : { ...info, specialUse: row.special_use };
  }

  private check(): void {
    if (this.released) throw new MailStoreError('CANNOT', 'mailbox view released');
  }
}
