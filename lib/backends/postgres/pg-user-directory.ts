import { createHash, timingSafeEqual } from 'node:crypto';
import { MailStoreError, type UserDirectory } from '../../contracts/mail-store.js';
import { decodeScramKeys, deriveScramKeys, encodeScramKeys, type ScramKeys } from '../../protocol/sasl/scram-keys.js';
import { INBOX } from '../shared/mailbox-names.js';
import { checkPassword, hashPassword } from '../shared/user-table.js';
import type { PgDatabase, Queryable } from './pg-database.js';
import { collectBodies } from './pg-messages.js';

/** A user row as the store needs it. */
export interface PgUser {
  readonly id: number;
  readonly username: string;
}

/** SQL matching a login: the exact username, or any of the user's addresses (lower-cased). `$1` is the login. */
export const USER_BY_LOGIN = `
  SELECT id, username FROM postern_users WHERE username = $1
  UNION ALL
  SELECT u.id, u.username FROM postern_addresses a JOIN postern_users u ON u.id = a.user_id WHERE a.address = lower($1)
  LIMIT 1`;

/** PostgreSQL text cannot hold NUL: such a login or address names nobody (and must not reach a query as an error). */
function unstorable(text: string): boolean {
  return text.includes('\u0000');
}

/**
 * How long a node trusts its answer to "does every user have SCRAM keys?" before asking the database again (on the
 * next EHLO/CAPA/CAPABILITY that reads it). Another node, or an operator's SQL, may add a user without keys.
 */
export const SCRAM_RECHECK_MS = 1000;

function sameText(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The {@link UserDirectory} of the PostgreSQL store: one table of users and one of addresses, shared by every node.
 * Same semantics as the memory and Maildir stores' `UserTable` (login by username or any address, addresses
 * lower-cased, a username with `@` is its own address), with scrypt hashes, SCRAM-SHA-256 keys, and plaintext only
 * when asked for. `add` is an idempotent upsert: nodes started with the same users do not conflict.
 */
export class PgUserDirectory implements UserDirectory {
  /** @param db the node's pool. @param keepPlaintext also store the password, for `secretFor` (APOP, CRAM-MD5). */
  constructor(
    private readonly db: PgDatabase,
    private readonly keepPlaintext: boolean,
  ) {}

  /** {@inheritDoc UserDirectory.keepsSecrets} */
  get keepsSecrets(): boolean {
    return this.keepPlaintext;
  }

  /**
   * {@inheritDoc UserDirectory.keepsScramKeys} Answered from the last check of the table (none yet: false) and checked
   * again in the background when that is older than {@link SCRAM_RECHECK_MS}: `add` and `remove` on this node
   * re-check before they resolve, other nodes' changes are seen within about a second.
   */
  get keepsScramKeys(): boolean {
    if (this.scramCheckedAt === undefined || Date.now() - this.scramCheckedAt >= SCRAM_RECHECK_MS) void this.checkScramKeys().catch(() => undefined);
    return this.allHaveScram;
  }

  private allHaveScram = false;
  /** When the last check started (undefined: never), so that concurrent readers start one query, not one each. */
  private scramCheckedAt?: number;

  /** Asks the database now whether every user has SCRAM keys: the store's `start()` does, so the first greeting knows. */
  async checkScramKeys(): Promise<void> {
    this.scramCheckedAt = Date.now();
    const { rows } = await this.db.query<{ all: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM postern_users WHERE scram IS NULL) AS all');
    this.allHaveScram = rows[0]!.all;
  }

  /** {@inheritDoc UserDirectory.scramKeysFor} */
  async scramKeysFor(username: string): Promise<ScramKeys | undefined> {
    if (unstorable(username)) return undefined;
    const { rows } = await this.db.query<{ scram: string | null }>('SELECT scram FROM postern_users WHERE username = $1', [username]);
    const encoded = rows[0]?.scram;
    return encoded ? decodeScramKeys(encoded) : undefined;
  }

  /** {@inheritDoc UserDirectory.add} */
  async add(user: { username: string; password: string; addresses?: string[] }): Promise<void> {
    if (user.username.length === 0) throw new MailStoreError('CANNOT', 'empty username');
    if ([user.username, ...(user.addresses ?? [])].some(unstorable)) throw new MailStoreError('CANNOT', 'NUL in a username or address');
    const addresses = new Set((user.addresses ?? []).map((a) => a.toLowerCase()));
    if (user.username.includes('@')) addresses.add(user.username.toLowerCase());
    const wanted = [...addresses].sort();
    // An unchanged password keeps its hash and SCRAM keys: restarting a node with the same --user flags writes nothing
    // new, except the keys a user from before they existed lacks (the password is at hand to make them).
    const current = await this.db.query<{ scrypt: string | null; scram: string | null }>(
      'SELECT scrypt, scram FROM postern_users WHERE username = $1',
      [user.username],
    );
    const row = current.rows[0];
    const same = row?.scrypt ? await checkPassword(user.password, row.scrypt) : false;
    const scrypt = same ? row!.scrypt! : await hashPassword(user.password);
    const scram = same && row!.scram ? row!.scram : encodeScramKeys(deriveScramKeys(user.password));
    const plaintext = this.keepPlaintext ? user.password : null;
    await this.db.tx(async (client) => {
      const { rows } = await client.query<{ id: number }>(
        `INSERT INTO postern_users (username, scrypt, scram, password) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO UPDATE SET scrypt = EXCLUDED.scrypt, scram = EXCLUDED.scram, password = EXCLUDED.password
         RETURNING id`,
        [user.username, scrypt, scram, plaintext],
      );
      const id = rows[0]!.id;
      await client.query('INSERT INTO postern_addresses (address, user_id) SELECT unnest($1::text[]), $2 ON CONFLICT (address) DO NOTHING', [wanted, id]);
      const taken = await client.query('SELECT address FROM postern_addresses WHERE address = ANY($1) AND user_id <> $2 LIMIT 1', [wanted, id]);
      if (taken.rowCount !== 0) throw new MailStoreError('ALREADY_EXISTS', `address ${String(taken.rows[0].address)} belongs to another user`);
      await client.query('DELETE FROM postern_addresses WHERE user_id = $1 AND NOT (address = ANY($2))', [id, wanted]);
      await client.query('INSERT INTO postern_mailboxes (user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, INBOX]);
    });
    await this.checkScramKeys();
  }

  /** {@inheritDoc UserDirectory.verify} */
  async verify(login: string, password: string): Promise<string | undefined> {
    if (unstorable(login)) return undefined;
    const { rows } = await this.db.query<{ username: string; scrypt: string | null; password: string | null }>(
      `SELECT u.username, u.scrypt, u.password FROM (${USER_BY_LOGIN}) l JOIN postern_users u ON u.id = l.id`,
      [login],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    if (row.scrypt !== null) return (await checkPassword(password, row.scrypt)) ? row.username : undefined;
    if (row.password !== null) return sameText(password, row.password) ? row.username : undefined;
    return undefined;
  }

  /** {@inheritDoc UserDirectory.findByAddress} */
  async findByAddress(address: string): Promise<string | undefined> {
    if (unstorable(address)) return undefined;
    const { rows } = await this.db.query<{ username: string }>(
      'SELECT u.username FROM postern_addresses a JOIN postern_users u ON u.id = a.user_id WHERE a.address = lower($1)',
      [address],
    );
    return rows[0]?.username;
  }

  /** {@inheritDoc UserDirectory.find} */
  async find(login: string): Promise<string | undefined> {
    return (await this.resolve(this.db, login))?.username;
  }

  /** {@inheritDoc UserDirectory.secretFor} */
  async secretFor(username: string): Promise<string | undefined> {
    if (unstorable(username)) return undefined;
    const { rows } = await this.db.query<{ password: string | null }>(
      `SELECT u.password FROM (${USER_BY_LOGIN}) l JOIN postern_users u ON u.id = l.id`,
      [username],
    );
    return rows[0]?.password ?? undefined;
  }

  /** {@inheritDoc UserDirectory.list} */
  async list(): Promise<string[]> {
    const { rows } = await this.db.query<{ username: string }>('SELECT username FROM postern_users');
    return rows.map((r) => r.username).sort();
  }

  /**
   * {@inheritDoc UserDirectory.remove}
   * Here the user's mailboxes, subscriptions and messages go with it (their rows reference the user); bodies no
   * other message shares are collected afterwards.
   */
  async remove(username: string): Promise<boolean> {
    if (unstorable(username)) return false;
    const hashes = await this.db.tx(async (client) => {
      const bodies = await client.query<{ body_hash: Buffer }>(
        `SELECT DISTINCT m.body_hash FROM postern_messages m JOIN postern_mailboxes b ON b.id = m.mailbox_id
         JOIN postern_users u ON u.id = b.user_id WHERE u.username = $1`,
        [username],
      );
      const gone = await client.query('DELETE FROM postern_users WHERE username = $1', [username]);
      return gone.rowCount === 0 ? undefined : bodies.rows.map((r) => r.body_hash);
    });
    if (hashes === undefined) return false;
    await this.checkScramKeys();
    await collectBodies(this.db, hashes);
    return true;
  }

  /** The user a login (username or address) names, or undefined. */
  async resolve(db: Queryable, login: string): Promise<PgUser | undefined> {
    if (unstorable(login)) return undefined;
    const { rows } = await db.query<{ id: number; username: string }>(USER_BY_LOGIN, [login]);
    const row = rows[0];
    return row === undefined ? undefined : { id: row.id, username: row.username };
  }
}
