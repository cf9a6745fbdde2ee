import type pg from 'pg';
import { pgDriver } from './pg-driver.js';
import { MailStoreError, type MailboxEvent } from '../../contracts/mail-store.js';
import { MaildropLocks } from '../shared/store-events.js';
import { TYPES } from './pg-database.js';
import { EVENT_CHANNEL, decodeEvents } from './pg-events.js';

/** First and longest wait before reconnecting a dedicated session (doubling in between). */
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 5_000;

/** Advisory-lock namespace of maildrop locks ("POP3" in ASCII); the second key is the user id (two-int4 form). */
export const MAILDROP_LOCK_NAMESPACE = 0x504f5033;

/** What a dedicated session reports (the store passes its logger's warn). */
export type SessionWarning = (message: string, meta: Record<string, unknown>) => void;

/**
 * One long-lived connection outside the pool, for state that lives in a server session (LISTEN, session-level
 * advisory locks). Reconnects with backoff when the server goes away and runs `onConnect` on every new session.
 */
class DedicatedSession {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private delay = RECONNECT_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly name: string,
    private readonly onConnect: (client: pg.Client) => Promise<void>,
    private readonly warn: SessionWarning,
  ) {}

  /** The connected client (connecting first if needed). */
  get(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('postgres store closed'));
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new (pgDriver().Client)({ ...this.config, types: TYPES });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    await client.connect();
    try {
      await this.onConnect(client);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('postgres store closed');
    }
    this.client = client;
    this.delay = RECONNECT_MIN_MS;
    return client;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.warn('postgres session lost', { session: this.name, reason: err.message });
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.get().catch(() => {
        this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
        this.schedule();
      });
    }, this.delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/**
 * Receives the changes other nodes make: LISTEN on {@link EVENT_CHANNEL} on a dedicated session, and every
 * notification not sent by this node is passed to `emit`. After a lost session it reconnects and LISTENs again;
 * notifications sent while it was away are lost, so once it listens again it calls `resumed` (the store then tells
 * its open sessions to re-read their mailboxes).
 */
export class PgEventFeed {
  private readonly session: DedicatedSession;
  private listened = false;

  /**
   * @param node this node's id (its own notifications are skipped: it emitted them locally already).
   * @param resumed runs after every LISTEN but the first, once notifications flow again.
   */
  constructor(config: pg.ClientConfig, node: string, emit: (event: MailboxEvent) => void, warn: SessionWarning, resumed: () => void = () => undefined) {
    this.session = new DedicatedSession(
      config,
      'listen',
      async (client) => {
        client.on('notification', (message) => {
          if (message.channel !== EVENT_CHANNEL || message.payload === undefined) return;
          const decoded = decodeEvents(message.payload);
          if (decoded === undefined || decoded.node === node) return;
          for (const event of decoded.events) emit(event);
        });
        await client.query(`LISTEN ${EVENT_CHANNEL}`);
        if (this.listened) resumed();
        this.listened = true;
      },
      warn,
    );
  }

  /** Connects and LISTENs; resolves once notifications flow. */
  async start(): Promise<void> {
    await this.session.get();
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

/**
 * The POP3 maildrop lock across nodes (RFC 1939 §8): a session-level advisory lock per user, held on one dedicated
 * connection of this node. Advisory locks are re-entrant within a session, so an in-process lock first excludes
 * other sessions of this node. If the connection drops, PostgreSQL releases the locks; on reconnect the node
 * takes back the ones its sessions still hold (and warns about any another node took meanwhile).
 */
export class PgMaildropLocks {
  private readonly local = new MaildropLocks();
  private readonly held = new Set<number>();
  private readonly session: DedicatedSession;

  constructor(
    config: pg.ClientConfig,
    private readonly warn: SessionWarning,
  ) {
    this.session = new DedicatedSession(
      config,
      'locks',
      async (client) => {
        for (const userId of this.held) {
          const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [MAILDROP_LOCK_NAMESPACE, userId]);
          if (rows[0]?.ok !== true) this.warn('maildrop lock lost to another node', { userId });
        }
      },
      warn,
    );
  }

  /**
   * Takes the maildrop lock of a user; resolves an idempotent release, whose promise settles once the lock is free
   * for other nodes too.
   * @throws MailStoreError `IN_USE` when a session of any node holds it.
   */
  async acquire(userId: number, username: string, owner: string): Promise<() => Promise<void>> {
    const releaseLocal = this.local.acquire(username, owner);
    let ok = false;
    try {
      const client = await this.session.get();
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [MAILDROP_LOCK_NAMESPACE, userId]);
      ok = rows[0]?.ok === true;
    } finally {
      if (!ok) releaseLocal();
    }
    if (!ok) throw new MailStoreError('IN_USE', `maildrop of ${username} is locked`);
    this.held.add(userId);
    let released: Promise<void> | undefined;
    // The contract's release is synchronous; this one also returns when the other nodes can take the lock.
    return () => {
      if (released !== undefined) return released;
      this.held.delete(userId);
      releaseLocal();
      // Queued on the same session after any earlier statement, so a later acquire on this node sees it unlocked.
      released = this.session
        .get()
        .then((client) => client.query('SELECT pg_advisory_unlock($1, $2)', [MAILDROP_LOCK_NAMESPACE, userId]))
        .then(
          () => undefined,
          () => undefined,
        );
      return released;
    };
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
