import 'reflect-metadata';
import { expect } from 'chai';
import pg from 'pg';
import { parseCliArgs, UsageError } from '../../lib/cli/cli-args.js';
import { storeModule } from '../../lib/di/mail-server.js';
import { startMailServer } from '../../lib/test-double/start-mail-server.js';
import { testCertificates } from '../support/certs.js';
import { PostgresMailStore } from '../../lib/backends/postgres/postgres-mail-store.js';
import { MIGRATIONS, migrate } from '../../lib/backends/postgres/pg-schema.js';
import type { DeliveryEnvelope, MailboxEvent } from '../../lib/contracts/mail-store.js';
import { postgresMissing, startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { codeOf, mailStoreSuite, message } from './mail-store-suite.js';

describe('PostgresMailStore', function () {
  this.timeout(30_000);
  let cluster: PostgresCluster | undefined;

  before(async function () {
    const missing = postgresMissing();
    if (missing !== undefined) this.skip();
    cluster = await startPostgresCluster();
  });

  after(async () => {
    await cluster?.stop();
  });

  let shared: string | undefined;
  /**
   * An empty store database. Creating a database costs about a second here, so tests share one per file, migrated
   * once and emptied between tests; `fresh` gives a new, unmigrated database instead. `dispose` closes the stores.
   */
  async function database(fresh = false): Promise<{ url: string; stores: PostgresMailStore[]; open(options?: object): PostgresMailStore; dispose(): Promise<void> }> {
    let url: string;
    if (fresh) {
      url = await cluster!.createDatabase();
    } else {
      shared ??= await cluster!.createDatabase();
      url = shared;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await migrate(client);
        // DELETE, not TRUNCATE: on tables this small it avoids new relation files and is several times faster.
        await client.query('DELETE FROM postern_messages; DELETE FROM postern_bodies; DELETE FROM postern_users');
      } finally {
        await client.end();
      }
    }
    const stores: PostgresMailStore[] = [];
    return {
      url,
      stores,
      open: (options = {}) => {
        const store = new PostgresMailStore({ url, ...options });
        stores.push(store);
        return store;
      },
      dispose: async () => {
        await Promise.all(stores.map((s) => s.close()));
        if (fresh) await cluster!.dropDatabase(url);
      },
    };
  }

  mailStoreSuite(async (options) => {
    const db = await database();
    return { store: db.open(options), dispose: db.dispose };
  });

  describe('shared by several nodes', () => {
    let db: Awaited<ReturnType<typeof database>> | undefined;
    afterEach(async () => {
      await db?.dispose();
      db = undefined;
    });

    it('migrates once when two nodes start at the same time', async () => {
      db = await database(true);
      const clients = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
      await Promise.all(clients.map((c) => c.connect()));
      try {
        const versions = await Promise.all(clients.map((c) => migrate(c)));
        expect(versions).to.deep.equal([MIGRATIONS.length, MIGRATIONS.length]);
        const { rows } = await clients[0]!.query('SELECT version FROM postern_schema ORDER BY version');
        expect(rows.map((r: { version: number }) => r.version)).to.deep.equal(MIGRATIONS.map((m) => m.version));
        expect(await codeOfError(migrate(clients[0]!, [...MIGRATIONS.slice(0, -1)]))).to.match(/newer than this Postern/);
      } finally {
        await Promise.all(clients.map((c) => c.end()));
      }
    });

    it('shares users: adding the same user on two nodes never fails, a taken address does', async () => {
      db = await database();
      const [a, b] = [db.open(), db.open()];
      const alice = { username: 'alice', password: 'pw', addresses: ['alice@example.org'] };
      await Promise.all([a.users.add(alice), b.users.add(alice), a.users.add(alice)]);
      expect(await b.users.verify('alice@example.org', 'pw')).to.equal('alice');
      expect(await a.users.list()).to.deep.equal(['alice']);
      expect(await codeOf(b.users.add({ username: 'eve', password: 'x', addresses: ['ALICE@example.org'] }))).to.equal('ALREADY_EXISTS');
      expect(await a.users.findByAddress('alice@example.org')).to.equal('alice');
      expect(await a.users.secretFor('alice'), 'scrypt only by default').to.equal(undefined);
    });

    it('gives concurrent deliveries from two nodes distinct ascending UIDs and one MODSEQ each', async () => {
      db = await database();
      const [a, b] = [db.open(), db.open()];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      const stored = await Promise.all(Array.from({ length: 60 }, (_, n) => (n % 2 ? a : b).deliver('alice@example.org', message(`m${n}`))));
      const uids = stored.map((m) => m.uid).sort((x, y) => x - y);
      expect(uids).to.deep.equal(Array.from({ length: 60 }, (_, n) => n + 1));
      const modseqs = new Set(stored.map((m) => m.modseq));
      expect(modseqs.size).to.equal(60);
    });

    it('keeps concurrent stores of two users and of two mailboxes of one user apart (one group commit per owner and mailbox)', async () => {
      db = await database();
      const store = db.open();
      await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      await store.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.org'] });
      const alice = await store.openUser('alice');
      const bob = await store.openUser('bob');
      await alice.create('Sent');
      await bob.create('Sent');
      try {
        await Promise.all([
          ...[1, 2, 3].flatMap((n) => [store.deliver('alice@example.org', message(`to alice ${n}`)), store.deliver('bob@example.org', message(`to bob ${n}`))]),
          ...[1, 2, 3].flatMap((n) => [alice.append('Sent', message(`alice sent ${n}`)), bob.append('Sent', message(`bob sent ${n}`))]),
        ]);
        const subjects = async (view: typeof alice, mailbox: string): Promise<string[]> =>
          Promise.all((await view.messages(mailbox, { peek: true })).map(async (m) => /^Subject: (.*)$/m.exec((await m.raw()).toString())![1]!.trim()));
        expect(await subjects(alice, 'INBOX')).to.deep.equal(['to alice 1', 'to alice 2', 'to alice 3']);
        expect(await subjects(bob, 'INBOX')).to.deep.equal(['to bob 1', 'to bob 2', 'to bob 3']);
        expect(await subjects(alice, 'Sent')).to.deep.equal(['alice sent 1', 'alice sent 2', 'alice sent 3']);
        expect(await subjects(bob, 'Sent')).to.deep.equal(['bob sent 1', 'bob sent 2', 'bob sent 3']);
      } finally {
        await Promise.all([alice.release(), bob.release()]);
      }
    });

    it('tells another node about deliveries, flag changes, expunges and mailbox changes', async () => {
      db = await database();
      const [a, b] = [db.open(), db.open()];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      await b.start();
      const seen: MailboxEvent[] = [];
      let wake: () => void = () => undefined;
      b.watch((event) => {
        seen.push(event);
        wake();
      });
      const until = (count: number): Promise<void> =>
        new Promise((resolve) => {
          wake = () => seen.length >= count && resolve();
          wake();
        });
      await a.deliver('alice@example.org', message('x'));
      await until(1);
      const view = await a.openUser('alice');
      await view.setFlags('INBOX', [1], ['\\Seen'], 'add');
      await view.create('Box');
      await view.copy('INBOX', [1], 'Box');
      await view.expunge('INBOX', [1]);
      await until(5);
      expect(seen).to.deep.equal([
        { type: 'exists', username: 'alice', mailbox: 'INBOX', uid: 1 },
        { type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [1] },
        { type: 'mailbox', username: 'alice', mailbox: 'Box', change: 'created' },
        { type: 'exists', username: 'alice', mailbox: 'Box', uid: 1 },
        { type: 'expunge', username: 'alice', mailbox: 'INBOX', uids: [1] },
      ]);
      await view.release();
    });

    it('LISTENs again after its session is killed, and hears the other node from then on', async () => {
      db = await database();
      const [a, b] = [db.open(), db.open()];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      await b.start();
      const seen: number[] = [];
      let wake = (): void => undefined;
      b.watch((event) => {
        if (event.type === 'exists') seen.push(event.uid);
        wake();
      });
      const heard = (uid: number): Promise<void> =>
        new Promise((resolve) => {
          wake = () => seen.includes(uid) && resolve();
          wake();
        });
      const killed = await a.db.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND query = 'LISTEN postern_events' AND pid <> pg_backend_pid()`,
      );
      expect(killed.rows[0]!.n).to.equal(2); // a's and b's LISTEN sessions
      // Deliveries made while b is away are not replayed; b hears the first one after it is back (bounded tries).
      for (let tries = 0; seen.length === 0 && tries < 500; tries++) await a.deliver('alice@example.org', message(`m${tries}`));
      expect(seen).to.have.length.greaterThan(0);
      await heard((await a.deliver('alice@example.org', message('after'))).uid);
    });

    it('after a LISTEN gap tells the open views to re-read every mailbox, so a change made meanwhile is not missed', async () => {
      db = await database();
      const [a, b] = [db.open(), db.open()];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      await a.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.org'] });
      const view = await b.openUser('alice');
      await view.create('Archive');
      const released = await b.openUser('bob');
      await released.release(); // a released view is not resynced
      const resyncs: string[] = [];
      let wake = (): void => undefined;
      b.watch((event) => {
        if (event.type === 'flags' && event.uids.length === 0) resyncs.push(`${event.username}/${event.mailbox}`);
        wake();
      });
      const bothResynced = new Promise<void>((resolve) => {
        wake = () => resyncs.length >= 2 && resolve();
      });
      // Kill both LISTEN sessions (waiting until they are gone; a has no open view, so it resyncs nothing), then
      // change alice's INBOX through a while b is away.
      const killed = await a.db.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND query = 'LISTEN postern_events' AND pid <> pg_backend_pid()`,
      );
      expect(killed.rows[0]!.n).to.equal(2);
      await a.deliver('alice@example.org', message('while away'));
      await bothResynced;
      expect(resyncs.sort()).to.deep.equal(['alice/Archive', 'alice/INBOX']);
      expect((await view.messages('INBOX')).map((m) => m.uid)).to.deep.equal([1]);
      await view.release();
    });

    it('stores the rest of a group commit when PostgreSQL refuses one of its messages', async () => {
      db = await database();
      const store = db.open();
      await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      const envelope = (helo: string): DeliveryEnvelope => ({ mailFrom: 'a@b.test', rcptTo: ['alice@example.org'], helo, clientAddress: '127.0.0.1', clientPort: 1, receivedAt: new Date().toISOString() });
      // The first delivery goes alone; the nine queued behind it share one statement, and jsonb refuses \u0000.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => store.deliver('alice@example.org', message(`m${i}`), { envelope: envelope(i === 5 ? 'bad\u0000helo' : `h${i}`) })),
      );
      expect(outcomes.map((o) => o.status)).to.deep.equal([...Array(5).fill('fulfilled'), 'rejected', ...Array(4).fill('fulfilled')]);
      const view = await store.openUser('alice');
      expect((await view.messages('INBOX')).length).to.equal(9);
      await view.release();
    });

    it('holds the maildrop lock across nodes and frees it when the holder closes', async () => {
      db = await database();
      const [a, b] = [db.open(), db.open()];
      await a.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      const release = await a.lock('alice', 'pop3 a');
      expect(await codeOf(b.lock('alice@example.org', 'pop3 b'))).to.equal('IN_USE');
      await (release() as unknown as Promise<void>); // this store's release also resolves once other nodes can take it
      const again = await b.lock('alice', 'pop3 b');
      expect(await codeOf(a.lock('alice', 'pop3 a'))).to.equal('IN_USE');
      await b.close(); // a node that goes away loses its locks with its session
      (await a.lock('alice', 'pop3 a'))();
      again();
    });

    it('stores a body once for identical deliveries and copies, and removes it with the last message', async () => {
      db = await database();
      const store = db.open();
      await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      await store.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.org'] });
      const raw = message('same');
      await store.deliver('alice@example.org', raw);
      await store.deliver('bob@example.org', Buffer.from(raw));
      const view = await store.openUser('alice');
      await view.create('Copies');
      await view.copy('INBOX', [1], 'Copies');
      const count = async (): Promise<number> => Number((await store.db.query<{ n: number }>('SELECT count(*) AS n FROM postern_bodies')).rows[0]!.n);
      expect(await count()).to.equal(1);
      // Concurrent identical deliveries share one statement (group commit) and still one body row.
      const burst = await Promise.all(Array.from({ length: 10 }, () => store.deliver('bob@example.org', Buffer.from(raw))));
      expect(burst.map((m) => m.uid)).to.deep.equal(Array.from({ length: 10 }, (_, n) => n + 2));
      expect(new Set(burst.map((m) => m.modseq)).size).to.equal(10);
      expect(await count()).to.equal(1);
      await view.expunge('INBOX', [1]);
      await view.delete('Copies');
      expect(await count(), 'bob still has it').to.equal(1);
      const bob = await store.openUser('bob');
      await bob.expunge('INBOX', Array.from({ length: 11 }, (_, n) => n + 1));
      expect(await count()).to.equal(0);
      await view.release();
      await bob.release();
    });

    it('reads a large body byte-exact through the binary COPY path', async () => {
      db = await database();
      const store = db.open();
      await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      const big = Buffer.alloc(6 * 1024 * 1024 + 7);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
      await store.deliver('alice@example.org', big);
      const [stored] = await (await store.openUser('alice')).messages('INBOX');
      expect(stored!.size).to.equal(big.length);
      expect((await stored!.raw()).equals(big)).to.equal(true);
    });

    it('treats a login or address with NUL as nobody instead of failing the query', async () => {
      db = await database();
      const store = db.open();
      await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
      expect(await store.users.verify('alice\u0000', 'pw')).to.equal(undefined);
      expect(await store.users.find('al\u0000ice')).to.equal(undefined);
      expect(await codeOf(store.deliver('alice@example.org\u0000', message('x')))).to.equal('NO_SUCH_USER');
      expect(await codeOf(store.users.add({ username: 'bad\u0000', password: 'x' }))).to.equal('CANNOT');
    });

    it('backs the embedded test double with store: postgres://…', async () => {
      db = await database();
      const server = await startMailServer({ store: db.url, users: ['alice:pw@example.org'], protocols: ['smtp'], tls: { certificate: (await testCertificates()).server } });
      try {
        expect(server.store).to.be.instanceOf(PostgresMailStore);
        const waiting = server.waitForMessages(1);
        await server.store.deliver('alice@example.org', message('via the double'));
        const [received] = await waiting;
        expect(received!.subject).to.equal('via the double');
        await server.purge();
        expect(await server.receivedMessages()).to.deep.equal([]);
      } finally {
        await server.stop();
      }
    });

    it('closes its PostgreSQL connections when the test double fails to start after the store opened', async () => {
      db = await database();
      const sessions = async (): Promise<number> => {
        const client = new pg.Client({ connectionString: db!.url });
        await client.connect();
        try {
          const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'postern'");
          return rows[0]!.n;
        } finally {
          await client.end();
        }
      };
      const failing = startMailServer({ store: db.url, users: ['alice:pw@example.org'], protocols: ['smtp'], smtp: { postmaster: 'nobody' }, tls: { certificate: (await testCertificates()).server } });
      expect(await codeOfError(failing)).to.equal('postmaster "nobody" is not a user (add it with --user or users)');
      expect(await sessions(), 'pool and LISTEN sessions closed').to.equal(0);
    });

    it('refuses a URL without a database or with another scheme, never echoing the password', () => {
      expect(() => new PostgresMailStore({ url: 'postgres://u:hunter2@127.0.0.1:5432' })).to.throw(/without a database name/);
      expect(() => new PostgresMailStore({ url: 'mysql://u:hunter2@127.0.0.1/db' })).to.throw(/unknown scheme "mysql:"/);
      try {
        new PostgresMailStore({ url: 'postgres://u:hunter2@127.0.0.1:5432' });
      } catch (err) {
        expect((err as Error).message).to.not.include('hunter2');
      }
    });
  });
});

async function codeOfError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as Error).message;
  }
  return 'resolved';
}

describe('postern --store postgres://…', () => {
  it('accepts postgres:// and postgresql:// URLs, with or without a password', () => {
    for (const url of ['postgres://u:p@db.internal:5432/mail', 'postgresql://u@127.0.0.1/mail', 'postgres://u@localhost/mail?sslmode=require']) {
      expect(parseCliArgs(['--store', url]).config.store).to.equal(url);
    }
  });

  it('refuses a URL without a database with a one-line usage error that hides the password', () => {
    expect(() => parseCliArgs(['--store', 'postgres://u:hunter2@127.0.0.1:5432'])).to.throw(UsageError, /^--store: postgres URL without a database name/);
    try {
      parseCliArgs(['--store', 'postgres://u:hunter2@127.0.0.1:5432']);
    } catch (err) {
      expect((err as Error).message).to.not.include('hunter2');
    }
    expect(() => storeModule('mysql://u:hunter2@h/db')).to.throw(/unknown store "mysql:\/\/…@h\/db"/);
  });
});
