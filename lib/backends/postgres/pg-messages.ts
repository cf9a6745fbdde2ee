import { createHash } from 'node:crypto';
import { MailStoreError, type DeliveryEnvelope, type StoredMessage } from '../../contracts/mail-store.js';
import { normalizeFlags } from '../shared/message-flags.js';
import { EVENT_CHANNEL } from './pg-events.js';
import { sqlState, type PgDatabase, type Queryable } from './pg-database.js';
import { USER_BY_LOGIN, type PgUser } from './pg-user-directory.js';

/** The metadata columns of `postern_messages` every listing reads (never the body). */
export const MESSAGE_COLUMNS = 'm.id, m.uid, m.modseq, m.internal_date, m.size, m.flags, m.envelope';

/** One `postern_messages` row as {@link MESSAGE_COLUMNS} reads it. */
export interface MessageRow {
  readonly id: number;
  readonly uid: number;
  readonly modseq: number;
  readonly internal_date: Date;
  readonly size: number;
  readonly flags: string[];
  readonly envelope: DeliveryEnvelope | null;
}

/** How often a delivery is retried when the body it shares was cleaned up under it (FK violation, 23503). */
const INSERT_ATTEMPTS = 3;

/**
 * The caller-owned {@link StoredMessage} of a row. `raw()` loads this one body with a binary COPY (no hex text
 * form, one copy into a buffer of the exact size).
 * @throws MailStoreError `NO_SUCH_MESSAGE` from `raw()` once the message was expunged.
 */
export function storedMessage(db: PgDatabase, row: MessageRow): StoredMessage {
  const id = row.id;
  const message: StoredMessage = {
    uid: row.uid,
    modseq: row.modseq,
    internalDate: new Date(row.internal_date.getTime()),
    size: row.size,
    flags: new Set(row.flags),
    raw: async (): Promise<Buffer> => {
      if (!Number.isSafeInteger(id)) throw new Error('bad message id');
      const body = await db.copyOutBytea(
        `SELECT b.data FROM postern_messages m JOIN postern_bodies b ON b.hash = m.body_hash WHERE m.id = ${id}`,
      );
      if (body === undefined) throw new MailStoreError('NO_SUCH_MESSAGE', 'message expunged');
      return body;
    },
  };
  return row.envelope === null ? message : { ...message, envelope: row.envelope };
}

/** Everything needed to store one new message. */
export interface NewMessage {
  /** The owner: a known user (APPEND), or a login or address resolved in the same statement (delivery). */
  readonly owner: PgUser | { readonly login: string };
  readonly mailbox: string;
  readonly raw: Buffer;
  readonly flags: Iterable<string>;
  readonly internalDate: Date;
  readonly envelope?: DeliveryEnvelope;
}

/** A stored row and its canonical owner. */
export type InsertedRow = MessageRow & { readonly username: string };

// The owner CTE: by id (the view knows its user) or by login/address, as USER_BY_LOGIN.
const OWNER_BY_ID = 'SELECT id, username FROM postern_users WHERE id = $1::bigint';
const OWNER_BY_LOGIN = USER_BY_LOGIN.replace(/\$1/g, '$1::text');

function insertSql(owner: string): string {
  return `
    WITH owner AS (${owner}), mb AS (
      UPDATE postern_mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
      WHERE user_id = (SELECT id FROM owner) AND name = $2
      RETURNING id, uidnext - 1 AS uid, highest_modseq AS modseq
    ), body AS (
      INSERT INTO postern_bodies (hash, size, data) SELECT $3, $4, $5 WHERE EXISTS (SELECT 1 FROM mb)
      ON CONFLICT (hash) DO NOTHING
    ), m AS (
      INSERT INTO postern_messages (mailbox_id, uid, modseq, internal_date, size, body_hash, flags, envelope)
      SELECT mb.id, mb.uid, mb.modseq, $6, $4, $3, $7, $8 FROM mb
      RETURNING ${MESSAGE_COLUMNS.replace(/m\./g, '')}
    )
    SELECT m.*, owner.username, pg_notify($9, json_build_object('n', $10::text, 'e',
      json_build_object('type', 'exists', 'username', owner.username, 'mailbox', $2::text, 'uids', json_build_array(m.uid)))::text)
    FROM m, owner`;
}
const INSERT_BY_ID = insertSql(OWNER_BY_ID);
const INSERT_BY_LOGIN = insertSql(OWNER_BY_LOGIN);

/**
 * Stores one message in ONE statement and one round trip (so it is committed when it resolves; RFC 5321 §6.1): the
 * owner's lookup, the body row (skipped when an identical body exists), the UID and MODSEQ taken from the mailbox
 * row (its row lock serializes every node's deliveries to that mailbox), the message row, and the NOTIFY that tells
 * the other nodes. Resolves undefined when the owner or the mailbox does not exist (nothing is stored then).
 */
export async function insertMessage(db: PgDatabase, node: string, m: NewMessage): Promise<InsertedRow | undefined> {
  const hash = createHash('sha256').update(m.raw).digest();
  const flags = normalizeFlags(m.flags);
  const envelope = m.envelope === undefined ? null : JSON.stringify(m.envelope);
  const byId = 'id' in m.owner;
  const values = [byId ? (m.owner as PgUser).id : (m.owner as { login: string }).login, m.mailbox, hash, m.raw.length, m.raw, m.internalDate, flags, envelope, EVENT_CHANNEL, node];
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await db.query<InsertedRow>(byId ? INSERT_BY_ID : INSERT_BY_LOGIN, values);
      return rows[0];
    } catch (err) {
      if (attempt >= INSERT_ATTEMPTS || sqlState(err) !== '23503') throw err;
    }
  }
}

/**
 * Removes bodies no message points at any more (after an expunge or a mailbox delete has committed). A body that
 * a concurrent delivery or COPY just started to share makes the DELETE fail its foreign key: that is left alone.
 */
export async function collectBodies(db: Queryable, hashes: Buffer[]): Promise<void> {
  if (hashes.length === 0) return;
  try {
    await db.query(
      `DELETE FROM postern_bodies b WHERE b.hash = ANY($1)
       AND NOT EXISTS (SELECT 1 FROM postern_messages m WHERE m.body_hash = b.hash)`,
      [hashes],
    );
  } catch (err) {
    if (sqlState(err) !== '23503') throw err;
  }
}
