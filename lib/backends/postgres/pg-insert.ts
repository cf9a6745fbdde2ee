import { createHash } from 'node:crypto';
import type { DeliveryEnvelope } from '../../contracts/mail-store.js';
import { normalizeFlags } from '../shared/message-flags.js';
import { sqlState, type PgDatabase } from './pg-database.js';
import { EVENT_CHANNEL } from './pg-events.js';
import { MESSAGE_COLUMNS, type MessageRow } from './pg-messages.js';
import { USER_BY_LOGIN, type PgUser } from './pg-user-directory.js';

/** How often a store is retried when a body it shares was cleaned up under it (FK violation, 23503). */
const INSERT_ATTEMPTS = 3;
/**
 * Most messages one statement stores. Deliveries to one mailbox queue behind the one in flight (its row lock is held
 * until COMMIT); up to this many then share the next statement and its WAL flush.
 */
const MAX_BATCH = 64;
/** A batch also stops growing at this many body octets, so large messages go (nearly) one per statement. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

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

/** Parameters per message after the four shared ones ($1 owner, $2 mailbox, $3 channel, $4 node). */
const PER_MESSAGE = 6;

function insertSql(owner: string, count: number): string {
  const rows = Array.from({ length: count }, (_, i) => {
    const p = (k: number): string => `$${5 + i * PER_MESSAGE + k}`;
    return `(${i + 1}, ${p(0)}::bytea, ${p(1)}::integer, ${p(2)}::bytea, ${p(3)}::timestamptz, ${p(4)}::text[], ${p(5)}::jsonb)`;
  });
  return `
    WITH owner AS (${owner}),
    input (ord, hash, size, data, internal_date, flags, envelope) AS (VALUES ${rows.join(', ')}),
    mb AS (
      UPDATE postern_mailboxes SET uidnext = uidnext + ${count}, highest_modseq = highest_modseq + ${count}
      WHERE user_id = (SELECT id FROM owner) AND name = $2
      RETURNING id, uidnext - ${count} AS first_uid, highest_modseq - ${count} AS base_modseq
    ), body AS (
      INSERT INTO postern_bodies (hash, size, data)
      SELECT DISTINCT ON (hash) hash, size, data FROM input WHERE EXISTS (SELECT 1 FROM mb)
      ON CONFLICT (hash) DO NOTHING
    ), m AS (
      INSERT INTO postern_messages (mailbox_id, uid, modseq, internal_date, size, body_hash, flags, envelope)
      SELECT mb.id, mb.first_uid + i.ord - 1, mb.base_modseq + i.ord, i.internal_date, i.size, i.hash, i.flags, i.envelope
      FROM mb, input i
      RETURNING ${MESSAGE_COLUMNS.replace(/m\./g, '')}
    )
    SELECT m.*, owner.username, pg_notify($3, json_build_object('n', $4::text, 'e',
      json_build_object('type', 'exists', 'username', owner.username, 'mailbox', $2::text, 'uids', json_build_array(m.uid)))::text)
    FROM m, owner ORDER BY m.uid`;
}

/**
 * Stores messages of ONE owner and mailbox in ONE statement and one round trip (so they are committed when it
 * resolves; RFC 5321 §6.1): the owner's lookup, each distinct body once (skipped when it exists), consecutive UIDs and
 * MODSEQs taken from the mailbox row (its row lock serializes every node's stores into that mailbox), the message
 * rows, and the NOTIFYs that tell the other nodes. Resolves the rows in input order, or undefined when the owner or
 * the mailbox does not exist (nothing is stored then).
 */
export async function insertMessages(db: PgDatabase, node: string, batch: readonly NewMessage[]): Promise<InsertedRow[] | undefined> {
  const owner = batch[0]!.owner;
  const byId = 'id' in owner;
  const values: unknown[] = [byId ? owner.id : owner.login, batch[0]!.mailbox, EVENT_CHANNEL, node];
  for (const m of batch) {
    const hash = createHash('sha256').update(m.raw).digest();
    values.push(hash, m.raw.length, m.raw, m.internalDate, normalizeFlags(m.flags), m.envelope === undefined ? null : JSON.stringify(m.envelope));
  }
  const sql = insertSql(byId ? OWNER_BY_ID : OWNER_BY_LOGIN, batch.length);
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await db.query<InsertedRow>(sql, values);
      return rows.length === 0 ? undefined : rows;
    } catch (err) {
      if (attempt >= INSERT_ATTEMPTS || sqlState(err) !== '23503') throw err;
    }
  }
}

interface Waiting {
  readonly message: NewMessage;
  resolve(row: InsertedRow | undefined): void;
  reject(err: unknown): void;
}

/**
 * Group commit per mailbox, within one node: a store into a mailbox with nothing in flight goes at once, alone;
 * stores arriving while one is in flight wait for it and then go together in one statement. Every store still
 * resolves only after the COMMIT that holds it, so `250` keeps meaning stored.
 */
export class MessageInserter {
  private readonly queues = new Map<string, Waiting[]>();

  /** @param db the node's pool. @param node this node's id for NOTIFY. */
  constructor(
    private readonly db: PgDatabase,
    private readonly node: string,
  ) {}

  /** Stores one message (see {@link insertMessages}); resolves undefined when the owner or mailbox does not exist. */
  insert(message: NewMessage): Promise<InsertedRow | undefined> {
    const owner = 'id' in message.owner ? `#${message.owner.id}` : `@${message.owner.login}`;
    const key = `${owner}\u0000${message.mailbox}`;
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(key);
      const idle = queue === undefined;
      if (queue === undefined) {
        queue = [];
        this.queues.set(key, queue);
      }
      queue.push({ message, resolve, reject });
      if (idle) void this.drain(key, queue);
    });
  }

  private async drain(key: string, queue: Waiting[]): Promise<void> {
    while (queue.length > 0) {
      let take = 1;
      let bytes = queue[0]!.message.raw.length;
      while (take < queue.length && take < MAX_BATCH && bytes + queue[take]!.message.raw.length <= MAX_BATCH_BYTES) bytes += queue[take++]!.message.raw.length;
      const batch = queue.splice(0, take);
      try {
        const rows = await insertMessages(this.db, this.node, batch.map((w) => w.message));
        batch.forEach((w, i) => w.resolve(rows?.[i]));
      } catch (err) {
        if (batch.length === 1) batch[0]!.reject(err);
        // One bad message (a value PostgreSQL refuses) must not fail the others it shared the statement with: each
        // goes again alone, so only the one that fails on its own is refused.
        else for (const w of batch) await insertMessages(this.db, this.node, [w.message]).then((rows) => w.resolve(rows?.[0]), w.reject);
      }
    }
    this.queues.delete(key);
  }
}
