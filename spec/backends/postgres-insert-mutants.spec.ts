import 'reflect-metadata';
import { expect } from 'chai';
import pg from 'pg';
import { PgDatabase } from '../../lib/backends/postgres/pg-database.js';
import { insertMessages } from '../../lib/backends/postgres/pg-insert.js';
import { PostgresMailStore } from '../../lib/backends/postgres/postgres-mail-store.js';
import { useMigratedDatabase } from '../support/postgres-cluster.js';
import { message } from './mail-store-suite.js';

/**
 * The group commit of `pg-insert.ts`, observed on the real server: how many statements stored the messages (rows
 * one statement inserts share its transaction id, `xmin`), and how many times a statement was tried. The latter
 * comes from a fault-injection trigger in the test database (the way the Maildir specs inject file-system faults):
 * for a message of a size listed in `test_faults` it takes `nextval('test_attempts')` (sequences are not rolled
 * back, so failed attempts count too) and raises the listed SQLSTATE while the count is at most `times`.
 */
describe('PostgreSQL group commit (pg-insert), counted on the server', function () {
  this.timeout(30_000);
  let url = '';
  let admin: pg.Client | undefined;
  let store: PostgresMailStore | undefined;

  const db = useMigratedDatabase(`
      CREATE SEQUENCE test_attempts;
      CREATE TABLE test_faults (size integer PRIMARY KEY, state text NOT NULL, times integer NOT NULL);
      CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE f test_faults;
      BEGIN
        SELECT * INTO f FROM test_faults WHERE size = NEW.size;
        IF FOUND AND nextval('test_attempts') <= f.times THEN
          RAISE EXCEPTION 'injected fault' USING ERRCODE = f.state;
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_fault BEFORE INSERT ON postern_messages FOR EACH ROW EXECUTE FUNCTION test_fault();`);
  before(() => ({ url, admin } = db));

  beforeEach(async () => {
    await admin!.query(`DELETE FROM postern_messages; DELETE FROM postern_bodies; DELETE FROM postern_users; DELETE FROM test_faults;
      SELECT setval('test_attempts', 1, false)`);
    store = new PostgresMailStore({ url });
    await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  /** How many messages each storing statement wrote, in UID order. */
  async function statements(): Promise<number[]> {
    const { rows } = await admin!.query<{ n: string }>('SELECT count(*) AS n FROM postern_messages GROUP BY xmin::text ORDER BY min(uid)');
    return rows.map((r) => Number(r.n));
  }

  /** The attempts the trigger counted. */
  async function attempts(): Promise<number> {
    const { rows } = await admin!.query<{ n: string }>("SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM test_attempts");
    return Number(rows[0]!.n);
  }

  /** Makes every insert of a message of `size` octets fail with `state`, its first `times` attempts. */
  async function fault(size: number, state: string, times: number): Promise<void> {
    await admin!.query('INSERT INTO test_faults (size, state, times) VALUES ($1, $2, $3)', [size, state, times]);
  }

  it('stores a queue of 100 behind a lone delivery in statements of 64 and 36 messages, in order', async () => {
    const stored = await Promise.all(Array.from({ length: 101 }, (_, i) => store!.deliver('alice@example.org', message(`m${i}`))));
    expect(stored.map((m) => m.uid)).to.deep.equal(Array.from({ length: 101 }, (_, i) => i + 1));
    expect(await statements()).to.deep.equal([1, 64, 36]);
    const view = await store!.openUser('alice');
    const listed = await view.messages('INBOX', { peek: true });
    expect((await listed[100]!.raw()).toString()).to.equal(message('m100').toString());
    expect((await listed[37]!.raw()).toString()).to.equal(message('m37').toString());
    await view.release();
  });

  it('lets a statement grow to exactly 8 MiB of bodies and no further', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 'x'); // one body row, four messages of 4 MiB
    const stored = await Promise.all([message('lone'), big, big, big, big].map((raw) => store!.deliver('alice@example.org', raw)));
    expect(stored.map((m) => m.size)).to.deep.equal([message('lone').length, ...Array(4).fill(big.length)]);
    expect(await statements()).to.deep.equal([1, 2, 2]);
  });

  it('retries a store that lost its body to a concurrent clean-up (23503) up to three times in all', async () => {
    const raw = message('gone body');
    await fault(raw.length, '23503', 2);
    const stored = await store!.deliver('alice@example.org', raw);
    expect(stored.uid).to.equal(1);
    expect(await attempts()).to.equal(3);
    expect(await statements()).to.deep.equal([1]);

    await admin!.query("DELETE FROM test_faults; SELECT setval('test_attempts', 1, false)");
    const always = message('always gone');
    await fault(always.length, '23503', 100);
    const failure = await store!.deliver('alice@example.org', always).then(
      () => undefined,
      (err: unknown) => err as { code?: string; message?: string },
    );
    expect(failure?.code).to.equal('23503');
    expect(failure?.message).to.equal('injected fault');
    expect(await attempts()).to.equal(3);
  });

  it('does not retry other errors: a lone message fails once, a group is retried one message at a time', async () => {
    const bad = message('refused');
    await fault(bad.length, '22023', 100);
    const failure = await store!.deliver('alice@example.org', bad).then(
      () => undefined,
      (err: unknown) => err as { code?: string },
    );
    expect(failure?.code).to.equal('22023');
    expect(await attempts()).to.equal(1);

    await admin!.query("SELECT setval('test_attempts', 1, false)");
    const outcomes = await Promise.allSettled(['first', 'a', 'bb', 'refused', 'ccc'].map((s) => store!.deliver('alice@example.org', s === 'refused' ? bad : message(s))));
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(await attempts(), 'the group statement, then the refused message alone').to.equal(2);
    expect(await statements()).to.deep.equal([1, 1, 1, 1]);
  });

  it('queues stores per owner and mailbox: concurrent stores for other users or mailboxes never share a statement', async () => {
    await store!.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.org'] });
    const alice = await store!.openUser('alice');
    const bob = await store!.openUser('bob');
    try {
      await alice.create('Other');
      // By login (delivery): the first goes alone, the next three queue behind it, each in its own queue.
      const delivered = await Promise.all([
        store!.deliver('alice@example.org', message('a1')),
        store!.deliver('bob@example.org', message('b1')),
        store!.deliver('alice@example.org', message('a2'), { mailbox: 'Other' }),
        store!.deliver('alice@example.org', message('a3')),
      ]);
      expect(delivered.map((m) => m.uid)).to.deep.equal([1, 1, 1, 2]);
      // By user id (APPEND): the same.
      const appended = await Promise.all([
        alice.append('INBOX', message('a4')),
        bob.append('INBOX', message('b2')),
        alice.append('INBOX', message('a6')),
        alice.append('Other', message('a5')),
      ]);
      expect(appended.map((m) => m.uid)).to.deep.equal([3, 2, 4, 2]);
      const subjects = async (view: typeof alice, mailbox: string): Promise<string[]> => {
        const listed = await view.messages(mailbox, { peek: true });
        return Promise.all(listed.map(async (m) => /Subject: (\w+)/.exec((await m.raw()).toString())![1]!));
      };
      expect(await subjects(alice, 'INBOX')).to.deep.equal(['a1', 'a3', 'a4', 'a6']);
      expect(await subjects(alice, 'Other')).to.deep.equal(['a2', 'a5']);
      expect(await subjects(bob, 'INBOX')).to.deep.equal(['b1', 'b2']);
    } finally {
      await alice.release();
      await bob.release();
    }
  });

  it('insertMessages resolves undefined for a mailbox that does not exist, and the rows in input order', async () => {
    const db = new PgDatabase({ connectionString: url });
    try {
      const user = (await store!.users.resolve(db, 'alice'))!;
      const at = new Date('2026-01-02T03:04:05Z');
      expect(await insertMessages(db, 'node', [{ owner: user, mailbox: 'Nowhere', raw: message('x'), flags: [], internalDate: at }])).to.equal(undefined);
      expect(await insertMessages(db, 'node', [{ owner: { login: 'nobody@example.org' }, mailbox: 'INBOX', raw: message('x'), flags: [], internalDate: at }])).to.equal(undefined);
      const rows = await insertMessages(db, 'node', [
        { owner: { login: 'ALICE@example.org' }, mailbox: 'INBOX', raw: message('one'), flags: ['\\Seen'], internalDate: at },
        { owner: { login: 'ALICE@example.org' }, mailbox: 'INBOX', raw: message('two'), flags: [], internalDate: at },
      ]);
      expect(rows?.map((r) => [r.uid, r.username, r.flags, r.envelope])).to.deep.equal([
        [1, 'alice', ['\\Seen'], null],
        [2, 'alice', [], null],
      ]);
      const envelope = { mailFrom: 'a@b.test', rcptTo: ['alice@example.org'], helo: 'h', receivedAt: '2026-01-02T03:04:05.000Z' };
      const withEnvelope = await insertMessages(db, 'node', [{ owner: user, mailbox: 'INBOX', raw: message('three'), flags: [], internalDate: at, envelope }]);
      expect(withEnvelope?.map((r) => [r.uid, r.envelope])).to.deep.equal([[3, envelope]]);
    } finally {
      await db.close();
    }
  });
});
