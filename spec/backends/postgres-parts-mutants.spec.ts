import 'reflect-metadata';
import { expect } from 'chai';
import net from 'node:net';
import pg from 'pg';
import { PgDatabase, sqlState } from '../../lib/backends/postgres/pg-database.js';
import { MIGRATION_LOCK_KEY, MIGRATIONS, migrate } from '../../lib/backends/postgres/pg-schema.js';
import { MAILDROP_LOCK_NAMESPACE, PgMaildropLocks } from '../../lib/backends/postgres/pg-sessions.js';
import { PostgresMailStore, checkPostgresUrl } from '../../lib/backends/postgres/postgres-mail-store.js';
import type { MailboxEvent } from '../../lib/contracts/mail-store.js';
import { useMigratedDatabase, type PostgresCluster } from '../support/postgres-cluster.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { message } from './mail-store-suite.js';

/**
 * The PostgreSQL store's parts, each against the real server: the pool and its transactions (`pg-database.ts`, with
 * failures raised by a PL/pgSQL function that counts its calls in a sequence, which no rollback undoes), migrations
 * (`pg-schema.ts`), the user directory, the dedicated LISTEN and lock sessions after their server process is
 * terminated (`pg-sessions.ts`), and the store's options and logging (`postgres-mail-store.ts`).
 */
describe('PostgreSQL store parts, on the real server', function () {
  this.timeout(30_000);
  let cluster: PostgresCluster | undefined;
  let url = '';
  let admin: pg.Client | undefined;
  const open: Array<{ close(): Promise<void> }> = [];

  const db = useMigratedDatabase(`
      CREATE SEQUENCE test_tries;
      CREATE FUNCTION test_fail(state text, times integer) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('test_tries') <= times THEN RAISE EXCEPTION 'injected %', state USING ERRCODE = state; END IF;
      END $$;
      CREATE TABLE test_rows (x integer);`);
  before(() => ({ cluster, url, admin } = db));

  beforeEach(async () => {
    await admin!.query(`DELETE FROM postern_messages; DELETE FROM postern_bodies; DELETE FROM postern_users; DELETE FROM test_rows;
      SELECT setval('test_tries', 1, false)`);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((o) => o.close()));
  });

  function store(options: { poolSize?: number; keepPlaintextPasswords?: boolean; autoCreateUsers?: boolean } = {}, log?: RecordingLogger): PostgresMailStore {
    const s = new PostgresMailStore({ url, ...options }, log);
    open.push(s);
    return s;
  }

  async function tries(): Promise<number> {
    const { rows } = await admin!.query<{ n: string }>('SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM test_tries');
    return Number(rows[0]!.n);
  }

  /** Terminates the server processes whose last statement matches `like` (this database, other sessions). */
  async function terminate(like: string): Promise<number> {
    const { rows } = await admin!.query<{ n: string }>(
      `SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE $1`,
      [like],
    );
    return Number(rows[0]!.n);
  }

  async function failure(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
    return promise.then(
      () => ({ message: 'resolved' }),
      (err: unknown) => err as { code?: string; message: string },
    );
  }

  describe('PgDatabase', () => {
    function database(): PgDatabase {
      const db = new PgDatabase({ connectionString: url });
      open.push(db);
      return db;
    }

    it('reads SQLSTATEs only from five-character string codes', () => {
      expect(sqlState({ code: '40P01' })).to.equal('40P01');
      expect(sqlState({ code: 'ECONNREFUSED' })).to.equal(undefined);
      expect(sqlState({ code: 23503 })).to.equal(undefined);
      expect(sqlState({ code: '2350' })).to.equal(undefined);
      expect(sqlState(null)).to.equal(undefined);
      expect(sqlState(undefined)).to.equal(undefined);
    });

    it('parses int8 as a number and leaves the other types to pg', async () => {
      const { rows } = await database().query<{ big: unknown; small: unknown; exact: unknown; at: unknown }>(
        "SELECT 9007199254740991::bigint AS big, 7::int4 AS small, 1.50::numeric AS exact, '2026-01-02T03:04:05Z'::timestamptz AS at",
      );
      expect(rows[0]).to.deep.equal({ big: 9007199254740991, small: 7, exact: '1.50', at: new Date('2026-01-02T03:04:05Z') });
    });

    it('retries a transaction after a serialization failure or deadlock, five attempts in all, and nothing else', async () => {
      const db = database();
      const task = (state: string, times: number) => (client: pg.PoolClient) =>
        client.query('INSERT INTO test_rows VALUES (1)').then(() => client.query('SELECT test_fail($1, $2)', [state, times])).then(() => 'done');
      expect(await db.tx(task('40001', 4))).to.equal('done');
      expect(await tries()).to.equal(5);
      expect((await admin!.query('SELECT x FROM test_rows')).rows, 'the failed attempts were rolled back').to.deep.equal([{ x: 1 }]);
      await admin!.query("DELETE FROM test_rows; SELECT setval('test_tries', 1, false)");
      const deadlock = await failure(db.tx(task('40P01', 5)));
      expect([deadlock.code, deadlock.message, await tries()]).to.deep.equal(['40P01', 'injected 40P01', 5]);
      await admin!.query("SELECT setval('test_tries', 1, false)");
      const other = await failure(db.tx(task('23505', 5)));
      expect([other.code, await tries()]).to.deep.equal(['23505', 1]);
      expect((await admin!.query('SELECT x FROM test_rows')).rows).to.deep.equal([]);
      expect((await db.query<{ n: number }>('SELECT count(*) AS n FROM test_rows')).rows[0]!.n, 'the pool still works').to.equal(0);
    });

    it('keeps its pooled connection across transactions, also after a failed one (the same server process)', async () => {
      const db = new PgDatabase({ connectionString: url, max: 1 });
      open.push(db);
      const pid = (client: pg.PoolClient): Promise<number> => client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid').then((r) => r.rows[0]!.pid);
      const first = await db.tx(pid);
      const failed = await failure(
        db.tx(async (client) => {
          await pid(client);
          throw new Error('task failed');
        }),
      );
      expect(failed.message).to.equal('task failed');
      expect(await db.tx(pid)).to.equal(first);
    });

    it('reads a bytea whose COPY stream arrives one octet at a time (a TCP relay in front of the server)', async () => {
      const target = new URL(url);
      let trickle = false;
      const sockets = new Set<net.Socket>();
      const relay = net.createServer((client) => {
        const server = net.connect(Number(target.port), target.hostname);
        client.setNoDelay(true);
        sockets.add(client).add(server);
        client.pipe(server);
        let queue = Promise.resolve();
        server.on('data', (chunk: Buffer) => {
          queue = queue.then(async () => {
            if (!trickle) return void client.write(chunk);
            for (const octet of chunk) {
              client.write(Buffer.of(octet));
              await new Promise((resolve) => setTimeout(resolve, 1));
            }
          });
        });
        server.on('end', () => void queue.then(() => client.end()));
        client.on('error', () => server.destroy());
        server.on('error', () => client.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      const relayed = new URL(url);
      relayed.port = String((relay.address() as net.AddressInfo).port);
      const db = new PgDatabase({ connectionString: relayed.toString(), max: 1 });
      try {
        await db.ready();
        trickle = true;
        const body = Buffer.from(Array.from({ length: 40 }, (_, i) => (i * 37) % 256));
        expect(await db.copyOutBytea(`SELECT '\\x${body.toString('hex')}'::bytea`)).to.deep.equal(body);
        expect(await db.copyOutBytea("SELECT 'x'::bytea WHERE false")).to.equal(undefined);
        expect(await db.copyOutBytea("SELECT ''::bytea")).to.deep.equal(Buffer.alloc(0));
      } finally {
        await db.close();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => relay.close(resolve));
      }
    });

    it('retries a failed start on the next call, runs afterStart once, and refuses calls once closed', async () => {
      const name = `t${process.pid}_${Date.now() % 100000}9`;
      const missing = new URL(url);
      missing.pathname = `/${name}`;
      let started = 0;
      const db = new PgDatabase({ connectionString: missing.href }, async () => {
        started++;
      });
      open.push(db);
      expect((await failure(db.ready())).code).to.equal('3D000'); // no such database yet
      await admin!.query(`CREATE DATABASE ${name}`);
      try {
        await db.ready();
        await db.query('SELECT 1');
        expect(started).to.equal(1);
        expect((await db.query<{ version: number }>('SELECT max(version) AS version FROM postern_schema')).rows[0]!.version).to.equal(MIGRATIONS.length);
        await db.close();
        await db.close();
        expect((await failure(db.query('SELECT 1'))).message).to.equal('postgres store closed');
        expect((await failure(db.tx(async () => 1))).message).to.equal('postgres store closed');
      } finally {
        await db.close();
        await cluster!.dropDatabase(missing.href);
      }
    });

    it('reads one bytea through binary COPY: none, empty, and a refused row shape', async () => {
      const db = database();
      expect(await db.copyOutBytea("SELECT 'x'::bytea WHERE false")).to.equal(undefined);
      expect(await db.copyOutBytea("SELECT ''::bytea")).to.deep.equal(Buffer.alloc(0));
      expect(await db.copyOutBytea("SELECT '\\x00ff10'::bytea")).to.deep.equal(Buffer.from([0, 255, 16]));
      expect((await failure(db.copyOutBytea('SELECT NULL::bytea'))).message).to.equal('unexpected COPY row shape');
      expect((await failure(db.copyOutBytea("SELECT 'a'::bytea, 'b'::bytea"))).message).to.equal('unexpected COPY row shape');
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    });
  });

  describe('migrate', () => {
    async function withFreshDatabase(task: (client: pg.Client, other: pg.Client) => Promise<void>): Promise<void> {
      const fresh = await cluster!.createDatabase();
      const client = new pg.Client({ connectionString: fresh });
      const other = new pg.Client({ connectionString: fresh });
      await Promise.all([client.connect(), other.connect()]);
      try {
        await task(client, other);
      } finally {
        await Promise.all([client.end(), other.end()]);
        await cluster!.dropDatabase(fresh);
      }
    }

    it('applies steps in version order once, rolls a failed step back, and always releases its lock', async () => {
      await withFreshDatabase(async (client, other) => {
        const steps = [
          { version: 3, name: 'c', sql: 'CREATE TABLE c3 (x integer REFERENCES b2)' },
          { version: 1, name: 'a', sql: 'CREATE TABLE a1 (x integer PRIMARY KEY)' },
          { version: 2, name: 'b', sql: 'CREATE TABLE b2 (x integer PRIMARY KEY REFERENCES a1)' },
        ];
        expect(await migrate(client, [steps[2]!, steps[1]!])).to.equal(2);
        expect(await migrate(client, steps)).to.equal(3);
        expect(await migrate(client, steps)).to.equal(3);
        const { rows } = await client.query<{ version: number; name: string }>('SELECT version, name FROM postern_schema ORDER BY version');
        expect(rows).to.deep.equal([
          { version: 1, name: 'a' },
          { version: 2, name: 'b' },
          { version: 3, name: 'c' },
        ]);
        const bad = [...steps, { version: 4, name: 'd', sql: 'CREATE TABLE d4 (x integer); SELECT no_such_function()' }];
        expect((await failure(migrate(client, bad))).code).to.equal('42883');
        expect((await client.query("SELECT to_regclass('d4') AS t")).rows[0].t, 'the failed step left nothing').to.equal(null);
        expect((await client.query('SELECT max(version) AS v FROM postern_schema')).rows[0].v).to.equal(3);
        // A step whose record cannot be written (no name) leaves its table out too: the step and its record are one
        // transaction, not just the step's own statements.
        const unrecorded = [...steps, { version: 4, name: null as unknown as string, sql: 'CREATE TABLE e4 (x integer)' }];
        expect((await failure(migrate(client, unrecorded))).code).to.equal('23502');
        expect((await client.query("SELECT to_regclass('e4') AS t")).rows[0].t).to.equal(null);
        expect((await failure(migrate(client, steps.slice(1)))).message).to.equal('database schema version 3 is newer than this Postern (2); upgrade Postern');
        expect((await failure(migrate(client, []))).message).to.equal('database schema version 3 is newer than this Postern (0); upgrade Postern');
        const free = await other.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [MIGRATION_LOCK_KEY]);
        expect(free.rows[0]!.ok, 'the lock is free after every outcome').to.equal(true);
        await other.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      });
    });

    it('waits for the migration lock another session holds', async () => {
      await withFreshDatabase(async (client, holder) => {
        await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        let done = false;
        const migrating = migrate(client).then((v) => {
          done = true;
          return v;
        });
        // The migration queues behind the lock: its session waits on an advisory lock (bounded polling).
        for (let i = 0; i < 200; i++) {
          const { rows } = await holder.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
          if (Number(rows[0].n) > 0) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(done).to.equal(false);
        await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
        expect(await migrating).to.equal(MIGRATIONS.length);
      });
    });
  });

  describe('PgUserDirectory', () => {
    it('refuses empty and NUL names, lower-cases addresses, and gives a username with @ its own address', async () => {
      const s = store();
      expect(await failure(s.users.add({ username: '', password: 'x' }))).to.deep.include({ code: 'CANNOT', message: 'empty username' });
      expect(await failure(s.users.add({ username: 'x', password: 'x', addresses: ['a\u0000@b'] }))).to.deep.include({ code: 'CANNOT', message: 'NUL in a username or address' });
      await s.users.add({ username: 'Carol@Example.ORG', password: 'pw', addresses: ['C.Two@Example.org'] });
      const { rows } = await s.db.query<{ address: string }>('SELECT address FROM postern_addresses ORDER BY address');
      expect(rows.map((r) => r.address)).to.deep.equal(['c.two@example.org', 'carol@example.org']);
      expect(await s.users.findByAddress('CAROL@example.org')).to.equal('Carol@Example.ORG');
      expect(await s.users.verify('c.two@EXAMPLE.org', 'pw')).to.equal('Carol@Example.ORG');
      expect(await s.users.findByAddress('x\u0000')).to.equal(undefined);
      expect(await s.users.secretFor('a\u0000')).to.equal(undefined);
      expect(await s.users.remove('a\u0000')).to.equal(false);
      const boxes = await s.db.query<{ name: string }>('SELECT name FROM postern_mailboxes');
      expect(boxes.rows).to.deep.equal([{ name: 'INBOX' }]);
    });

    it('keeps an unchanged password hash, replaces addresses, and refuses a taken address without a trace', async () => {
      const s = store();
      await s.users.add({ username: 'dave', password: 'pw', addresses: ['d1@example.org', 'd2@example.org'] });
      const hash = async (): Promise<string> => (await s.db.query<{ scrypt: string }>("SELECT scrypt FROM postern_users WHERE username = 'dave'")).rows[0]!.scrypt;
      const first = await hash();
      await s.users.add({ username: 'dave', password: 'pw', addresses: ['d2@example.org', 'D3@example.org'] });
      expect(await hash()).to.equal(first);
      expect(await s.users.find('d1@example.org')).to.equal(undefined);
      expect(await s.users.find('d3@example.org')).to.equal('dave');
      expect(await s.users.findByAddress('dave'), 'a username without @ is no address').to.equal(undefined);
      await s.users.add({ username: 'dave', password: 'new', addresses: ['d2@example.org'] });
      expect(await hash()).to.not.equal(first);
      expect([await s.users.verify('dave', 'pw'), await s.users.verify('dave', 'new')]).to.deep.equal([undefined, 'dave']);
      const taken = await failure(s.users.add({ username: 'eve', password: 'x', addresses: ['e@example.org', 'D2@example.org'] }));
      expect(taken.message).to.equal('address d2@example.org belongs to another user');
      expect(await s.users.list()).to.deep.equal(['dave']);
      expect(await s.users.find('e@example.org')).to.equal(undefined);
    });

    it('keeps plaintext only when asked, checks it when there is no hash, and lists in code-unit order', async () => {
      const plain = store({ keepPlaintextPasswords: true });
      await plain.users.add({ username: 'zed', password: 'zpw', addresses: ['z@example.org'] });
      await plain.users.add({ username: 'Mia', password: 'mpw' });
      await store().users.add({ username: 'adam', password: 'apw' });
      expect(await plain.users.secretFor('z@example.org')).to.equal('zpw');
      expect([plain.users.keepsSecrets, store().users.keepsSecrets]).to.deep.equal([true, false]);
      expect(await plain.users.secretFor('adam')).to.equal(undefined);
      expect(await plain.users.secretFor('nobody')).to.equal(undefined);
      expect(await plain.users.list()).to.deep.equal(['Mia', 'adam', 'zed']);
      await admin!.query("UPDATE postern_users SET scrypt = NULL WHERE username IN ('zed', 'adam')");
      expect(await plain.users.verify('zed', 'zpw')).to.equal('zed');
      expect(await plain.users.verify('zed', 'zpx')).to.equal(undefined);
      expect(await plain.users.verify('adam', 'apw'), 'neither hash nor plaintext').to.equal(undefined);
      expect(await plain.users.verify('nobody', 'x')).to.equal(undefined);
    });

    it('removes a user with its mailboxes and the bodies only it had', async () => {
      const s = store();
      await s.users.add({ username: 'ann', password: 'pw', addresses: ['ann@example.org'] });
      await s.users.add({ username: 'ben', password: 'pw', addresses: ['ben@example.org'] });
      await s.deliver('ann@example.org', message('shared'));
      await s.deliver('ben@example.org', message('shared'));
      await s.deliver('ann@example.org', message('own'));
      expect(await s.users.remove('nobody')).to.equal(false);
      expect(await s.users.remove('ann')).to.equal(true);
      expect(await s.users.list()).to.deep.equal(['ben']);
      const { rows } = await s.db.query<{ n: number }>('SELECT count(*) AS n FROM postern_bodies');
      expect(rows[0]!.n).to.equal(1);
      expect((await s.db.query('SELECT 1 FROM postern_mailboxes m JOIN postern_users u ON u.id = m.user_id WHERE u.username = $1', ['ann'])).rowCount).to.equal(0);
    });
  });

  describe('PostgresMailStore', () => {
    it('checks URLs: scheme, host (or ?host=), database, and a parse failure', () => {
      expect(checkPostgresUrl('postgresql:///mail?host=/run/postgresql')).to.equal('postgresql:///mail?host=/run/postgresql');
      expect(() => checkPostgresUrl('postgres:///mail')).to.throw('postgres URL without a host');
      expect(() => checkPostgresUrl('postgres://u@h/')).to.throw('postgres URL without a database name (…/DATABASE)');
      expect(() => checkPostgresUrl('postgres://u@h/d')).to.not.throw();
      expect(() => checkPostgresUrl('not a url')).to.throw('expected postgres://USER:PASSWORD@HOST:PORT/DATABASE');
      expect(() => checkPostgresUrl('http://h/d')).to.throw('unknown scheme "http:" (use postgres:// or postgresql://)');
    });

    it('names its sessions "postern" and sizes its pool from poolSize (default 10)', async () => {
      const s = store({ poolSize: 3 });
      await s.start();
      expect((s.db.pool as unknown as { options: { max: number } }).options.max).to.equal(3);
      expect((store().db.pool as unknown as { options: { max: number } }).options.max).to.equal(10);
      const { rows } = await admin!.query<{ name: string }>(
        'SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> \'\''
      );
      expect(rows).to.deep.equal([{ name: 'postern' }]);
    });

    it('creates users on first delivery when asked, an address lower-cased and a plain name as given', async () => {
      const s = store({ autoCreateUsers: true });
      await s.deliver('Bob@Example.ORG', message('hi'), { mailbox: 'inbox', flags: ['\\Flagged'], internalDate: new Date('2026-02-03T04:05:06Z') });
      await s.lock('Carol', 'pop3').then((release) => release());
      expect(await s.users.list()).to.deep.equal(['Carol', 'bob@example.org']);
      expect(await s.users.verify('bob@example.org', 'Bob@Example.ORG')).to.equal('bob@example.org');
      const [m] = await (await s.openUser('bob@example.org')).messages('INBOX');
      expect([m!.uid, [...m!.flags], m!.internalDate.toISOString()]).to.deep.equal([1, ['\\Flagged'], '2026-02-03T04:05:06.000Z']);
      expect(await failure(store().deliver('nobody@example.org', message('x')))).to.deep.include({ code: 'NO_SUCH_USER', message: 'no such user' });
      expect(await failure(s.deliver('bob@example.org', message('x'), { mailbox: 'Nowhere' }))).to.deep.include({ code: 'NO_SUCH_MAILBOX', message: 'no mailbox Nowhere' });
    });

    it('starts LISTEN when watched before anything else, and logs lost sessions and pooled connections', async () => {
      const log = new RecordingLogger();
      const [a, b] = [store(), store({}, log)];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      const seen: MailboxEvent[] = [];
      b.watch((event) => seen.push(event)); // b has done nothing else: watching alone starts its LISTEN
      const listening = async (): Promise<number> =>
        Number((await admin!.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN postern_events'")).rows[0]!.n);
      for (let i = 0; i < 500 && (await listening()) < 2; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(await terminate('LISTEN postern_events')).to.equal(2);
      const lost = await log.next('postgres session lost');
      expect(lost.meta.session).to.equal('listen');
      expect(lost.meta.reason, "the server's own reason, not the socket's end").to.equal('terminating connection due to administrator command');
      // b's one pooled connection is idle after the migration's last statement.
      expect(await terminate('SELECT pg_advisory_unlock%')).to.be.at.least(1);
      expect((await log.next('postgres pool connection lost')).meta.reason).to.be.a('string').and.not.equal('');
      // b listens again and hears a's deliveries (bounded tries: those made while it was away are not replayed).
      for (let i = 0; seen.length === 0 && i < 500; i++) await a.deliver('alice@example.org', message(`m${i}`));
      expect(seen[0]).to.include({ type: 'exists', username: 'alice', mailbox: 'INBOX' });
      // One warning per lost session (its 'error' and its 'end' both report the loss), and none for closing the store.
      expect(log.find('warn', 'postgres session lost').map((r) => r.meta.session)).to.deep.equal(['listen']);
      await b.close();
      expect(log.find('warn', 'postgres session lost'), 'closing is not losing').to.have.length(1);
    });

    it('re-takes its maildrop locks after the lock session is lost, and warns about one another node took', async () => {
      const log = new RecordingLogger();
      const [a, b] = [store({}, log), store()];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      await a.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.org'] });
      const ids = Object.fromEntries((await admin!.query<{ username: string; id: string }>('SELECT username, id FROM postern_users')).rows.map((r) => [r.username, Number(r.id)]));
      const releaseAlice = await a.lock('alice', 'a1');
      const releaseBob = await a.lock('bob', 'a2');
      // a's lock session ends (its locks with it) while no new session may start, and "another node" (this session)
      // takes bob's lock before a can reconnect.
      const database = new URL(url).pathname.slice(1);
      const root = new pg.Client({ connectionString: cluster!.url('postgres') }); // ALTER DATABASE from outside it
      await root.connect();
      await root.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
      try {
        expect(await terminate('SELECT pg_try_advisory_lock%')).to.equal(1);
        const { rows: taken } = await admin!.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [MAILDROP_LOCK_NAMESPACE, ids.bob]);
        expect(taken[0]!.ok).to.equal(true);
      } finally {
        await root.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
        await root.end();
      }
      const warned = await log.next('maildrop lock lost to another node');
      expect(warned.meta).to.deep.equal({ userId: ids.bob });
      expect(log.find('warn', 'postgres session lost')[0]!.meta).to.include({ session: 'locks' });
      expect(await failure(b.lock('alice', 'b')), 'a holds alice again').to.deep.include({ code: 'IN_USE', message: 'maildrop of alice is locked' });
      const { rows } = await admin!.query<{ objid: string }>(
        "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted ORDER BY objid",
        [MAILDROP_LOCK_NAMESPACE],
      );
      expect(rows.map((r) => Number(r.objid))).to.deep.equal([ids.alice, ids.bob].sort((x, y) => x - y));
      const first = releaseAlice() as unknown as Promise<void>;
      expect(releaseAlice() as unknown as Promise<void>).to.equal(first);
      await first;
      (await b.lock('alice', 'b'))();
      releaseBob();
      await admin!.query('SELECT pg_advisory_unlock($1, $2)', [MAILDROP_LOCK_NAMESPACE, ids.bob]);
    });

    it('refuses a lock once its lock session is closed, also while it was connecting', async () => {
      const locks = new PgMaildropLocks({ connectionString: url }, () => undefined);
      const connecting = locks.acquire(1, 'alice', 'x');
      await locks.close();
      expect((await failure(connecting)).message).to.equal('postgres store closed');
      expect((await failure(locks.acquire(1, 'alice', 'x'))).message).to.equal('postgres store closed');
    });

    it('frees the node-local lock when the lock session cannot connect', async () => {
      const locks = new PgMaildropLocks({ connectionString: url }, () => undefined);
      open.push(locks);
      const database = new URL(url).pathname.slice(1);
      const root = new pg.Client({ connectionString: cluster!.url('postgres') });
      await root.connect();
      try {
        await root.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
        expect((await failure(locks.acquire(1, 'alice', 'x'))).code).to.equal('55000'); // database does not allow connections
      } finally {
        await root.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
        await root.end();
      }
      const release = await locks.acquire(1, 'alice', 'y');
      await release();
    });

    it('warns when the resync after a LISTEN gap fails', async () => {
      const log = new RecordingLogger();
      const s = store({}, log);
      await s.users.add({ username: 'alice', password: 'pw' });
      const view = await s.openUser('alice');
      await admin!.query('ALTER TABLE postern_mailboxes RENAME TO test_moved');
      try {
        expect(await terminate('LISTEN postern_events')).to.equal(1);
        const warned = await log.next('postgres resync after a LISTEN gap failed');
        expect(warned.meta).to.deep.equal({ reason: 'relation "postern_mailboxes" does not exist' });
      } finally {
        await admin!.query('ALTER TABLE test_moved RENAME TO postern_mailboxes');
      }
      await view.release();
    });
  });
});
