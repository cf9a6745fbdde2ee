import type pg from 'pg';

/** One schema step. Versions only grow; a released step is never edited, a change is a new step. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Advisory lock key (a constant of our own, "PSTN" in ASCII) taken around migrations, so that two nodes starting at
 * once apply each step exactly once: the second waits, then finds nothing left to do.
 */
export const MIGRATION_LOCK_KEY = 0x5053544e;

/**
 * The schema, oldest step first.
 *
 * - `users`/`addresses`: the shared user directory (scrypt hashes and SCRAM-SHA-256 keys; plaintext only when asked for).
 * - `mailboxes`: one row per selectable mailbox. UIDNEXT and HIGHESTMODSEQ live here, and every UID or MODSEQ is
 *   taken by an UPDATE of this row, whose row lock serializes allocation across every node (RFC 3501 §2.3.1.1,
 *   RFC 7162 §3.1). UIDVALIDITY comes from a sequence seeded with the epoch second, so a recreated name always gets a
 *   larger value.
 * - `bodies`: each distinct message body once, keyed by its SHA-256; COPY and identical deliveries share it.
 * - `messages`: per-mailbox metadata (uid, modseq, flags, internal date, size, envelope, save date) pointing at a body.
 * - Indexes: `(mailbox_id, uid)` for FETCH/SEARCH ranges and the UID-ordered listing, `(mailbox_id, modseq)` for
 *   CHANGEDSINCE, partial indexes for the STATUS UNSEEN and RECENT counts, `body_hash` for body clean-up.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE postern_users (
        id bigserial PRIMARY KEY,
        username text NOT NULL UNIQUE,
        scrypt text,
        password text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE postern_addresses (
        address text PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES postern_users (id) ON DELETE CASCADE
      );
      CREATE INDEX postern_addresses_user ON postern_addresses (user_id);
      CREATE SEQUENCE postern_uidvalidity;
      SELECT setval('postern_uidvalidity', extract(epoch FROM now())::bigint);
      CREATE TABLE postern_mailboxes (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES postern_users (id) ON DELETE CASCADE,
        name text NOT NULL,
        uidvalidity bigint NOT NULL DEFAULT nextval('postern_uidvalidity'),
        uidnext bigint NOT NULL DEFAULT 1,
        highest_modseq bigint NOT NULL DEFAULT 1,
        special_use text,
        UNIQUE (user_id, name)
      );
      CREATE TABLE postern_subscriptions (
        user_id bigint NOT NULL REFERENCES postern_users (id) ON DELETE CASCADE,
        name text NOT NULL,
        PRIMARY KEY (user_id, name)
      );
      CREATE TABLE postern_bodies (
        hash bytea PRIMARY KEY,
        size integer NOT NULL,
        data bytea NOT NULL
      );
      -- Message bodies are mostly already compressed or short; pglz on multi-megabyte attachments costs CPU at
      -- every delivery and read for little gain.
      ALTER TABLE postern_bodies ALTER COLUMN data SET STORAGE EXTERNAL;
      CREATE TABLE postern_messages (
        id bigserial PRIMARY KEY,
        mailbox_id bigint NOT NULL REFERENCES postern_mailboxes (id) ON DELETE CASCADE,
        uid bigint NOT NULL,
        modseq bigint NOT NULL,
        internal_date timestamptz NOT NULL,
        size integer NOT NULL,
        body_hash bytea NOT NULL REFERENCES postern_bodies (hash),
        flags text[] NOT NULL DEFAULT '{}',
        recent boolean NOT NULL DEFAULT true,
        envelope jsonb,
        UNIQUE (mailbox_id, uid)
      );
      CREATE INDEX postern_messages_modseq ON postern_messages (mailbox_id, modseq);
      CREATE INDEX postern_messages_unseen ON postern_messages (mailbox_id) WHERE NOT (flags @> ARRAY['\\Seen']);
      CREATE INDEX postern_messages_recent ON postern_messages (mailbox_id) WHERE recent;
      CREATE INDEX postern_messages_body ON postern_messages (body_hash);
    `,
  },
  {
    version: 2,
    name: 'save dates',
    // RFC 8514: when each message was saved into its mailbox. Rows stored before this step keep NULL (unknown: IMAP
    // answers SAVEDATE NIL for them); new rows, copies included, get the time of their insert.
    sql: `
      ALTER TABLE postern_messages ADD COLUMN saved_at timestamptz;
      ALTER TABLE postern_messages ALTER COLUMN saved_at SET DEFAULT now();
    `,
  },
  {
    version: 3,
    name: 'scram keys',
    // RFC 5802 §3: each user's SCRAM-SHA-256 salt, iteration count, StoredKey and ServerKey (`encodeScramKeys`' form),
    // written beside the scrypt hash so SCRAM works without plaintext. Users from before this step keep NULL until
    // their password is set again (SCRAM is not offered while any user has none).
    sql: 'ALTER TABLE postern_users ADD COLUMN scram text;',
  },
];

/**
 * Brings the database to the newest schema. Holds {@link MIGRATION_LOCK_KEY} (a session-level advisory lock) on
 * `client` for the whole run and applies each missing step in its own transaction, recording it in
 * `postern_schema`. Resolves the version now in place.
 * @throws Error when the database holds a newer schema than this build knows (an older node must not touch it).
 */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    await client.query(
      'CREATE TABLE IF NOT EXISTS postern_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM postern_schema');
    let current = rows[0]!.version;
    const newest = migrations.reduce((max, m) => Math.max(max, m.version), 0);
    if (current > newest) throw new Error(`database schema version ${current} is newer than this Postern (${newest}); upgrade Postern`);
    for (const step of [...migrations].sort((a, b) => a.version - b.version)) {
      if (step.version <= current) continue;
      await client.query('BEGIN');
      try {
        await client.query(step.sql);
        await client.query('INSERT INTO postern_schema (version, name) VALUES ($1, $2)', [step.version, step.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      current = step.version;
    }
    return current;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}
