import type pg from 'pg';
import { copyStreamsDriver, pgDriver } from './pg-driver.js';
import { migrate } from './pg-schema.js';

/** SQLSTATEs worth retrying a whole transaction for: serialization failure and deadlock (PostgreSQL Appendix A). */
const RETRYABLE = new Set(['40001', '40P01']);
/** How often a transaction is retried after a deadlock or serialization failure before the error is passed on. */
const MAX_TX_ATTEMPTS = 5;
/** Default pool size per node: enough for a few dozen concurrent sessions (each query holds a connection briefly). */
export const DEFAULT_POOL_SIZE = 10;

/** int8 (OID 20) as a JS number: ids, UIDs and MODSEQs stay far below 2^53. Everything else as `pg` parses it. */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (value: string) => Number(value) : pgDriver().types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATE of a `pg` error, if any. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 ? code : undefined;
}

/** Something that runs queries: the pool, or one client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * The connection pool of one node plus the start-up migration. Every query waits for {@link ready}; the first call
 * connects and migrates (see {@link migrate}), and a failed start is retried by the next call.
 */
export class PgDatabase {
  readonly pool: pg.Pool;
  private starting: Promise<void> | undefined;
  private closed = false;

  /**
   * @param config connection settings (`connectionString`, `max`…); nothing connects until the first query.
   * @param afterStart runs once the schema is in place, before {@link ready} resolves (the store starts LISTEN).
   */
  constructor(
    readonly config: pg.PoolConfig,
    private readonly afterStart: () => Promise<void> = async () => undefined,
  ) {
    this.pool = new (pgDriver().Pool)({ ...config, types: TYPES });
    // An idle client losing its server emits on the pool; the pool drops it and the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  /** Connects and migrates once; later calls share the result. */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('postgres store closed'));
    this.starting ??= this.start().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async start(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await migrate(client);
    } finally {
      client.release();
    }
    await this.afterStart();
  }

  /** One statement in its own implicit transaction: when it resolves, its changes are committed. */
  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    await this.ready();
    return this.pool.query<R>(text, values);
  }

  /**
   * Runs `task` in a READ COMMITTED transaction on one pooled client; resolves after COMMIT. The whole task is
   * retried on deadlock or serialization failure, so it must have no effects outside the database.
   */
  async tx<T>(task: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.ready();
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await task(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        if (attempt >= MAX_TX_ATTEMPTS || !RETRYABLE.has(sqlState(err) ?? '')) throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  /**
   * Streams the single bytea value `select` yields through `COPY … TO STDOUT (FORMAT binary)`: the octets arrive as
   * they are stored, without the hex text form of a normal result (which doubles the size on the wire and in memory),
   * and are copied once into a buffer of the exact size. Resolves undefined when `select` yields no row.
   * `select` is inlined into COPY (which takes no parameters): pass only SQL built from trusted numbers.
   */
  async copyOutBytea(select: string): Promise<Buffer | undefined> {
    await this.ready();
    const client = await this.pool.connect();
    let failure: Error | undefined;
    try {
      const stream = client.query(copyStreamsDriver().to(`COPY (${select}) TO STDOUT (FORMAT binary)`));
      const parser = new BinaryCopyValue();
      for await (const chunk of stream) parser.push(chunk as Buffer);
      return parser.value();
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      // A COPY that failed half-way leaves the connection in an unknown protocol state: the pool drops it.
      client.release(failure);
    }
  }

  /** Ends the pool. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * Parser of a binary COPY stream holding at most one row of one non-null field (PostgreSQL "COPY", binary format:
 * 11-octet signature, int32 flags, int32 extension length, then per row int16 field count, int32 length, data;
 * a trailer of int16 -1).
 */
class BinaryCopyValue {
  private head: Buffer = Buffer.alloc(0);
  private target: Buffer | undefined;
  private filled = 0;
  private headerDone = false;

  push(chunk: Buffer): void {
    if (this.target !== undefined) {
      const take = Math.min(chunk.length, this.target.length - this.filled);
      chunk.copy(this.target, this.filled, 0, take);
      this.filled += take;
      return;
    }
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    if (!this.headerDone) {
      if (this.head.length < 19) return;
      const extension = this.head.readInt32BE(15);
      if (this.head.length < 19 + extension) return;
      this.head = this.head.subarray(19 + extension);
      this.headerDone = true;
    }
    if (this.head.length < 2) return;
    const fields = this.head.readInt16BE(0);
    if (fields === -1) return; // trailer: no row
    if (this.head.length < 6) return;
    const length = this.head.readInt32BE(2);
    if (fields !== 1 || length < 0) throw new Error('unexpected COPY row shape');
    this.target = Buffer.allocUnsafe(length);
    const rest = this.head.subarray(6);
    this.head = Buffer.alloc(0);
    this.push(rest);
  }

  value(): Buffer | undefined {
    if (this.target === undefined) return undefined;
    if (this.filled !== this.target.length) throw new Error('truncated COPY value');
    return this.target;
  }
}
