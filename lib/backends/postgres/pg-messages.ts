import { MailStoreError, type DeliveryEnvelope, type MessageIdentity, type StoredMessage } from '../../contracts/mail-store.js';
import { emailIdOfHash } from '../shared/object-ids.js';
import { sqlState, type PgDatabase, type Queryable } from './pg-database.js';

/** The metadata columns of `postern_messages` every listing reads (never the body). */
export const MESSAGE_COLUMNS = 'm.id, m.uid, m.modseq, m.internal_date, m.size, m.flags, m.envelope, m.body_hash, m.saved_at';

/** One `postern_messages` row as {@link MESSAGE_COLUMNS} reads it. */
export interface MessageRow {
  readonly id: number;
  readonly uid: number;
  readonly modseq: number;
  readonly internal_date: Date;
  readonly size: number;
  readonly flags: string[];
  readonly envelope: DeliveryEnvelope | null;
  /** SHA-256 of the body: the EMAILID (RFC 8474 §5.1). */
  readonly body_hash: Buffer;
  /** RFC 8514 save date; NULL for rows stored before schema version 2. */
  readonly saved_at: Date | null;
}

/**
 * The caller-owned {@link StoredMessage} of a row. `raw()` loads this one body with a binary COPY (no hex text
 * form, one copy into a buffer of the exact size).
 * @throws MailStoreError `NO_SUCH_MESSAGE` from `raw()` once the message was expunged.
 */
export function storedMessage(db: PgDatabase, row: MessageRow): StoredMessage & MessageIdentity {
  const id = row.id;
  const message: StoredMessage & MessageIdentity = {
    uid: row.uid,
    modseq: row.modseq,
    internalDate: new Date(row.internal_date.getTime()),
    size: row.size,
    flags: new Set(row.flags),
    emailId: emailIdOfHash(row.body_hash),
    ...(row.saved_at === null ? {} : { saveDate: new Date(row.saved_at.getTime()) }),
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
