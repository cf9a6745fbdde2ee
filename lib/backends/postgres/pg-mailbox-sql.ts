import type pg from 'pg';
import { MailStoreError, type MailboxEvent, type MailboxIdentity, type MailboxInfo } from '../../contracts/mail-store.js';
import { mailboxIdOf } from '../shared/object-ids.js';
import type { PgUser } from './pg-user-directory.js';

/** One row of {@link MAILBOX_INFO}. */
export interface MailboxRow {
  /** Row id: the MAILBOXID (RFC 8474 §4); RENAME updates the name only, a new mailbox gets a new row. */
  readonly id: number;
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
export const MAILBOX_INFO = `
  SELECT mb.id, mb.name, mb.uidvalidity, mb.uidnext, mb.highest_modseq, mb.special_use,
    (SELECT count(*) FROM postern_messages m WHERE m.mailbox_id = mb.id) AS messages,
    (SELECT count(*) FROM postern_messages m WHERE m.mailbox_id = mb.id AND NOT (m.flags @> ARRAY['\\Seen'])) AS unseen,
    (SELECT count(*) FROM postern_messages m WHERE m.mailbox_id = mb.id AND m.recent) AS recent,
    (SELECT coalesce(array_agg(DISTINCT k), '{}') FROM postern_messages m, unnest(m.flags) k
      WHERE m.mailbox_id = mb.id AND left(k, 1) <> '\\') AS keywords,
    EXISTS (SELECT 1 FROM postern_subscriptions s WHERE s.user_id = mb.user_id AND s.name = mb.name) AS subscribed
  FROM postern_mailboxes mb WHERE mb.user_id = $1`;

/** The refusal for a mailbox that does not exist (or is only a \\Noselect level). */
export function noSuchMailbox(name: string): MailStoreError {
  return new MailStoreError('NO_SUCH_MAILBOX', `no mailbox ${name}`);
}

/**
 * Copies messages inside the caller's transaction (COPY, and the first half of MOVE): each copy gets its own UID and
 * MODSEQ and points at the same body row. Pushes one `exists` event per copy. Resolves (source uid, new uid) pairs.
 * @throws MailStoreError `NO_SUCH_MAILBOX` for either name.
 */
export async function copyMessages(client: pg.PoolClient, user: PgUser, events: MailboxEvent[], source: string, uids: number[], target: string): Promise<Array<[number, number]>> {
  // Both mailbox rows are locked in id order, so two opposite MOVEs cannot deadlock.
  const { rows: boxes } = await client.query<{ id: number; name: string }>(
    'SELECT id, name FROM postern_mailboxes WHERE user_id = $1 AND name = ANY($2) ORDER BY id FOR UPDATE',
    [user.id, [source, target]],
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
  for (const [, uid] of pairs) events.push({ type: 'exists', username: user.username, mailbox: target, uid });
  return pairs;
}

/**
 * Deletes messages inside the caller's transaction and raises the mailbox's HIGHESTMODSEQ (RFC 7162 §3.2.10). Pushes
 * an `expunge` event. Resolves the removed UIDs (ascending) and their body hashes, for `collectBodies` after COMMIT.
 */
export async function expungeMessages(client: pg.PoolClient, user: PgUser, events: MailboxEvent[], name: string, uids: number[]): Promise<{ uids: number[]; hashes: Buffer[] }> {
  const box = await lockMailbox(client, user.id, name);
  const { rows } = await client.query<{ uid: number; body_hash: Buffer }>(
    'DELETE FROM postern_messages WHERE mailbox_id = $1 AND uid = ANY($2) RETURNING uid, body_hash',
    [box.id, uids],
  );
  if (rows.length === 0) return { uids: [], hashes: [] };
  await bumpModseq(client, box.id);
  const removed = rows.map((r) => r.uid).sort((a, b) => a - b);
  events.push({ type: 'expunge', username: user.username, mailbox: name, uids: removed });
  return { uids: removed, hashes: rows.map((r) => r.body_hash) };
}

/**
 * Locks a mailbox row until the transaction ends: the per-mailbox writer lock every UID, MODSEQ or flag change takes.
 * @throws MailStoreError `NO_SUCH_MAILBOX`.
 */
export async function lockMailbox(client: pg.PoolClient, userId: number, name: string): Promise<{ id: number }> {
  const { rows } = await client.query<{ id: number }>('SELECT id FROM postern_mailboxes WHERE user_id = $1 AND name = $2 FOR UPDATE', [userId, name]);
  if (rows[0] === undefined) throw noSuchMailbox(name);
  return rows[0];
}

/** Takes the next MODSEQ of a mailbox (its row must be locked by the caller's transaction). */
export async function bumpModseq(client: pg.PoolClient, mailboxId: number): Promise<number> {
  const { rows } = await client.query<{ modseq: number }>(
    'UPDATE postern_mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq AS modseq',
    [mailboxId],
  );
  return rows[0]!.modseq;
}

/** The {@link MailboxInfo} of a {@link MAILBOX_INFO} row (`hasChildren` is the caller's to set). */
export function describeMailbox(row: MailboxRow): MailboxInfo & MailboxIdentity {
  const info = {
    name: row.name,
    mailboxId: mailboxIdOf(Number(row.id)),
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

