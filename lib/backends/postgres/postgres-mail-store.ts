import { inject, injectable, optional, preDestroy, type ServiceIdentifier } from '../../vendor/inversify.js';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import {
  MailStoreError,
  type DeliverOptions,
  type MailStore,
  type MailStoreOptions,
  type MailboxWatching,
  type MaildropLocking,
  type MailboxEvent,
  type ObjectIdentity,
  type StoredMessage,
  type UserMailboxes,
} from '../../contracts/mail-store.js';
import { Logger } from '../../log/logger.js';
import { INBOX, normalizeMailboxName } from '../shared/mailbox-names.js';
import { MailboxEvents } from '../shared/store-events.js';
import { DEFAULT_POOL_SIZE, PgDatabase } from './pg-database.js';
import { EVENT_CHANNEL, encodeEvents } from './pg-events.js';
import { MessageInserter } from './pg-insert.js';
import { storedMessage } from './pg-messages.js';
import { PgEventFeed, PgMaildropLocks } from './pg-sessions.js';
import { PgUserDirectory, type PgUser } from './pg-user-directory.js';
import type { PgUserContext } from './pg-user-mailboxes.js';

/** The per-user view (mailbox SQL) loads with the first `openUser`, not at `import 'postern'` (issue 11: start time). */
let userCode: Promise<typeof import('./pg-user-mailboxes.js')> | undefined;

/** How long a new connection may take before it fails (pg's default is to wait forever on an unreachable host). */
const CONNECT_TIMEOUT_MS = 10_000;

/** Options of {@link PostgresMailStore}. */
export interface PostgresMailStoreOptions extends MailStoreOptions {
  /**
   * `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`). Without a password in the URL, `PGPASSWORD`
   * (then `~/.pgpass`) is used, as by libpq. Query parameters such as `?sslmode=require` or
   * `?host=/run/postgresql` (unix socket) pass through to the driver.
   */
  readonly url: string;
  /** Connections in this node's pool (default {@link DEFAULT_POOL_SIZE}); LISTEN and the maildrop locks use two more. */
  readonly poolSize?: number;
  /** Also store plaintext passwords so that `secretFor` serves APOP and CRAM-MD5 (default false: scrypt only). */
  readonly keepPlaintextPasswords?: boolean;
}
/** Injection token of {@link PostgresMailStoreOptions}. */
export const PostgresMailStoreOptions = Symbol.for('postern.PostgresMailStoreOptions') as ServiceIdentifier<PostgresMailStoreOptions>;

/**
 * Checks a `postgres://` / `postgresql://` URL and returns it; the message never repeats the password.
 * @throws Error naming what is wrong (scheme, host, database).
 */
export function checkPostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('expected postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`unknown scheme "${parsed.protocol}" (use postgres:// or postgresql://)`);
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) throw new Error('postgres URL without a host');
  if (parsed.pathname.length <= 1) throw new Error('postgres URL without a database name (…/DATABASE)');
  return url;
}

/**
 * A {@link MailStore} in PostgreSQL, shared by any number of Postern nodes (processes or machines) on one database.
 *
 * - The schema is created and migrated on first use (versioned steps under an advisory lock, see `pg-schema.ts`).
 * - Users, addresses and scrypt hashes live in the database, so every node and its authenticator see them.
 * - A delivery is one statement: when `deliver` resolves, the message is committed (RFC 5321 §6.1).
 * - UIDs and MODSEQs are allocated under the mailbox row's lock: unique and ascending across nodes.
 * - Bodies are stored once per SHA-256 and shared by COPY; listings read metadata only and `raw()` one body.
 * - Changes are NOTIFYed to every node (IMAP IDLE on node B sees node A's delivery); `watch` listeners also get
 *   this node's own changes synchronously, before the changing call resolves.
 * - The POP3 maildrop lock is a session-level advisory lock, so it holds across nodes.
 *
 * Nothing connects until the first call; `close()` ends the pool and the two dedicated sessions.
 */
@injectable()
export class PostgresMailStore implements MailStore, MaildropLocking, MailboxWatching, ObjectIdentity, PgUserContext {
  /** {@inheritDoc ObjectIdentity.hasObjectIdentity} */
  readonly hasObjectIdentity = true;
  /** {@inheritDoc MailStore.users} */
  readonly users: PgUserDirectory;
  /** @internal The node's pool. */
  readonly db: PgDatabase;
  /** @internal This process's id in NOTIFY payloads. */
  readonly node = randomUUID();
  private readonly events = new MailboxEvents();
  /** Open views per user id: whose mailboxes to resync after a LISTEN gap. */
  private readonly openViews = new Map<number, number>();
  private readonly feed: PgEventFeed;
  private readonly locks: PgMaildropLocks;
  /** @internal Group commit of new messages per mailbox. */
  readonly inserter: MessageInserter;

  /** Stores options only; the database is reached on first use. */
  constructor(
    @inject(PostgresMailStoreOptions) private readonly options: PostgresMailStoreOptions,
    @inject(Logger) @optional() log?: Logger,
  ) {
    const config: pg.ClientConfig = {
      connectionString: checkPostgresUrl(options.url),
      application_name: 'postern',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    };
    const warn = (message: string, meta: Record<string, unknown>): void => log?.warn(message, meta);
    this.feed = new PgEventFeed(config, this.node, (event) => this.events.emit(event), warn, () => void this.resync(warn));
    this.locks = new PgMaildropLocks(config, warn);
    // LISTEN starts with the pool: a node that has served anything also hears every other node's changes.
    this.db = new PgDatabase(
      { ...config, max: options.poolSize ?? DEFAULT_POOL_SIZE },
      () => this.feed.start(),
      (err) => warn('postgres pool connection lost', { reason: err.message }),
    );
    this.users = new PgUserDirectory(this.db, options.keepPlaintextPasswords === true);
    this.inserter = new MessageInserter(this.db, this.node);
  }

  /**
   * Connects, migrates the schema, starts listening for other nodes' changes and reads whether SCRAM-SHA-256 can be
   * offered (every user has keys), so the first greeting already knows. Optional: every call does the rest.
   */
  async start(): Promise<void> {
    await this.db.ready();
    await this.users.checkScramKeys();
  }

  /** {@inheritDoc MailStore.deliver} */
  async deliver(address: string, raw: Buffer, options: DeliverOptions = {}): Promise<StoredMessage> {
    const mailbox = normalizeMailboxName(options.mailbox ?? INBOX);
    const message = { mailbox, raw, flags: options.flags ?? [], internalDate: options.internalDate ?? new Date(), envelope: options.envelope };
    // The common case is one round trip: the recipient is resolved inside the storing statement.
    let row = address.includes('\u0000') ? undefined : await this.inserter.insert({ ...message, owner: { login: address } });
    if (row === undefined) {
      const user = await this.resolveUser(address); // NO_SUCH_USER, or creates the user in test-double mode
      row = await this.inserter.insert({ ...message, owner: user });
      if (row === undefined) throw new MailStoreError('NO_SUCH_MAILBOX', `no mailbox ${mailbox}`);
    }
    this.emit({ type: 'exists', username: row.username, mailbox, uid: row.uid });
    return storedMessage(this.db, row);
  }

  /** {@inheritDoc MailStore.openUser} */
  async openUser(username: string): Promise<UserMailboxes> {
    userCode ??= import('./pg-user-mailboxes.js');
    const { PgUserMailboxes } = await userCode;
    const user = await this.resolveUser(username);
    this.openViews.set(user.id, (this.openViews.get(user.id) ?? 0) + 1);
    return new PgUserMailboxes(this, user);
  }

  /** @internal {@inheritDoc PgUserContext.viewReleased} */
  viewReleased(user: PgUser): void {
    const left = (this.openViews.get(user.id) ?? 1) - 1;
    if (left > 0) this.openViews.set(user.id, left);
    else this.openViews.delete(user.id);
  }

  /**
   * After a LISTEN gap: other nodes' changes made meanwhile were never heard, so every mailbox of every user with an
   * open view gets a `flags` event without UIDs ("re-read this mailbox"; an IDLE session then reports what changed).
   */
  private async resync(warn: (message: string, meta: Record<string, unknown>) => void): Promise<void> {
    const ids = [...this.openViews.keys()];
    if (ids.length === 0) return;
    try {
      const { rows } = await this.db.query<{ username: string; name: string }>(
        'SELECT u.username, b.name FROM postern_mailboxes b JOIN postern_users u ON u.id = b.user_id WHERE u.id = ANY($1)',
        [ids],
      );
      for (const row of rows) this.events.emit({ type: 'flags', username: row.username, mailbox: row.name, uids: [] });
    } catch (err) {
      warn('postgres resync after a LISTEN gap failed', { reason: (err as Error).message });
    }
  }

  /** {@inheritDoc MaildropLocking.lock} */
  async lock(username: string, owner: string): Promise<() => void> {
    const user = await this.resolveUser(username);
    return this.locks.acquire(user.id, user.username, owner);
  }

  /** {@inheritDoc MailboxWatching.watch} */
  watch(listener: (event: MailboxEvent) => void): () => void {
    const stop = this.events.watch(listener);
    // Make sure this node LISTENs even if nothing else touched the database yet.
    this.db.ready().catch(() => undefined);
    return stop;
  }

  /** @internal {@inheritDoc PgUserContext.change} */
  async change<T>(task: (client: pg.PoolClient, events: MailboxEvent[]) => Promise<T>): Promise<T> {
    let events: MailboxEvent[] = [];
    const result = await this.db.tx(async (client) => {
      events = [];
      const value = await task(client, events);
      const payloads = encodeEvents(this.node, events);
      // NOTIFY inside the transaction: PostgreSQL delivers it on COMMIT, and never for a rollback.
      if (payloads.length > 0) await client.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [EVENT_CHANNEL, payloads]);
      return value;
    });
    for (const event of events) this.emit(event);
    return result;
  }

  /** @internal {@inheritDoc PgUserContext.emit} */
  emit(event: MailboxEvent): void {
    this.events.emit(event);
  }

  /** Ends the pool and the LISTEN and lock sessions (held maildrop locks are released by the server). Idempotent. */
  @preDestroy()
  async close(): Promise<void> {
    await Promise.all([this.feed.close(), this.locks.close()]);
    await this.db.close();
  }

  private async resolveUser(login: string): Promise<PgUser> {
    const known = await this.users.resolve(this.db, login);
    if (known !== undefined) return known;
    if (this.options.autoCreateUsers !== true) throw new MailStoreError('NO_SUCH_USER', 'no such user');
    // GreenMail convention: the address is the username and the password.
    const username = login.includes('@') ? login.toLowerCase() : login;
    await this.users.add({ username, password: login });
    const created = await this.users.resolve(this.db, username);
    if (created === undefined) throw new MailStoreError('NO_SUCH_USER', 'no such user');
    return created;
  }
}
