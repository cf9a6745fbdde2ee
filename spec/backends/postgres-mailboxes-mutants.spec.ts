import 'reflect-metadata';
import { expect } from 'chai';
import pg from 'pg';
import { storedMessage } from '../../lib/backends/postgres/pg-messages.js';
import { PostgresMailStore } from '../../lib/backends/postgres/postgres-mail-store.js';
import type { MailboxEvent, UserMailboxes } from '../../lib/contracts/mail-store.js';
import { useMigratedDatabase } from '../support/postgres-cluster.js';
import { message } from './mail-store-suite.js';

/**
 * The PostgreSQL store's per-user view (`pg-user-mailboxes.ts`, `pg-mailbox-sql.ts`, `pg-messages.ts`) beyond the
 * shared store suite: the exact refusals, the events each change sends, empty and missing mailboxes, rows the server
 * returns out of UID order (a flag change moves a row to the end of its table), a keyword order from a non-C
 * collation, and a body clean-up that fails (a fault-injection trigger on `postern_bodies`).
 */
describe('PostgreSQL user view, exact outcomes', function () {
  this.timeout(30_000);
  let url = '';
  let admin: pg.Client | undefined;
  let store: PostgresMailStore | undefined;
  let view: UserMailboxes | undefined;
  let events: MailboxEvent[] = [];

  const db = useMigratedDatabase(`
      CREATE TABLE test_faults (state text NOT NULL);
      CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE s text;
      BEGIN
        SELECT state INTO s FROM test_faults LIMIT 1;
        IF FOUND THEN RAISE EXCEPTION 'injected fault' USING ERRCODE = s; END IF;
        RETURN OLD;
      END $$;
      CREATE TRIGGER test_fault BEFORE DELETE ON postern_bodies FOR EACH ROW EXECUTE FUNCTION test_fault();`);
  before(() => ({ url, admin } = db));

  beforeEach(async () => {
    await admin!.query('DELETE FROM test_faults; DELETE FROM postern_messages; DELETE FROM postern_bodies; DELETE FROM postern_users');
    store = new PostgresMailStore({ url });
    await store.users.add({ username: 'alice', password: 'pw', addresses: ['alice@example.org'] });
    view = await store.openUser('alice');
    events = [];
    store.watch((event) => events.push(event));
  });

  afterEach(async () => {
    await view?.release();
    await store?.close();
  });

  async function deliver(count: number, mailbox = 'INBOX'): Promise<void> {
    for (let i = 0; i < count; i++) await store!.deliver('alice@example.org', message(`${mailbox} ${i}`), { mailbox });
  }

  async function refusal(promise: Promise<unknown>): Promise<string> {
    return promise.then(
      () => 'resolved',
      (err: unknown) => `${(err as { code?: string }).code}: ${(err as Error).message}`,
    );
  }

  it('refuses with the exact codes and texts', async () => {
    await view!.create('Box');
    expect(await refusal(view!.info('Nope'))).to.equal('NO_SUCH_MAILBOX: no mailbox Nope');
    expect(await refusal(view!.messages('Nope'))).to.equal('NO_SUCH_MAILBOX: no mailbox Nope');
    expect(await refusal(view!.create('Box'))).to.equal('ALREADY_EXISTS: mailbox Box exists');
    expect(await refusal(view!.delete('inbox'))).to.equal('CANNOT: INBOX cannot be deleted');
    expect(await refusal(view!.subscribe('Nope', true))).to.equal('NO_SUCH_MAILBOX: no mailbox Nope');
    await view!.release();
    expect(await refusal(view!.list())).to.equal('CANNOT: mailbox view released');
  });

  it('lists an empty mailbox as empty, and tells parents from childless mailboxes', async () => {
    await view!.create('A/B');
    await view!.create('AB');
    expect(await view!.messages('A')).to.deep.equal([]);
    expect([(await view!.info('A')).hasChildren, (await view!.info('AB')).hasChildren, (await view!.info('A/B')).hasChildren]).to.deep.equal([true, false, false]);
    await view!.delete('A'); // its child keeps it as a \Noselect level
    const a = (await view!.list()).find((m) => m.name === 'A');
    expect(a).to.deep.include({ name: 'A', noselect: true, hasChildren: true, keywords: [], messages: 0, subscribed: false });
  });

  it('subscribes again to a subscribed mailbox without a refusal', async () => {
    await view!.subscribe('INBOX', true);
    await view!.subscribe('INBOX', true);
    expect(await view!.subscriptions()).to.deep.equal(['INBOX']);
  });

  it('copies from a mailbox created after its target', async () => {
    await view!.create('Older');
    await view!.create('Newer');
    await deliver(1, 'Newer');
    expect(await view!.copy('Newer', [1], 'Older')).to.deep.equal([[1, 1]]);
    const [copied] = await view!.messages('Older');
    expect((await copied!.raw()).toString()).to.equal(message('Newer 0').toString());
  });

  it('copies nothing for UIDs that do not exist, without writing the target row (its xmin stays)', async () => {
    await view!.create('Box');
    await deliver(1);
    const version = async (): Promise<string> => (await admin!.query<{ v: string }>("SELECT xmin::text AS v FROM postern_mailboxes WHERE name = 'Box'")).rows[0]!.v;
    const before = await version();
    events = [];
    expect(await view!.copy('INBOX', [7, 8], 'Box')).to.deep.equal([]);
    expect(await view!.move('INBOX', [7], 'Box')).to.deep.equal([]);
    expect(await version()).to.equal(before);
    expect(events).to.deep.equal([]);
    expect(await view!.copy('INBOX', [1], 'Box')).to.deep.equal([[1, 1]]);
    expect(await version(), 'a copy writes it').to.not.equal(before);
  });

  it('changes nothing when expunging UIDs that do not exist', async () => {
    await deliver(1);
    const before = (await view!.info('INBOX')).highestModseq;
    events = [];
    expect(await view!.expunge('INBOX', [7, 8])).to.deep.equal([]);
    expect((await view!.info('INBOX')).highestModseq).to.equal(before);
    expect(events).to.deep.equal([]);
  });

  it('reports expunged UIDs ascending when the server returns them out of order (expunge and delete)', async () => {
    await view!.create('Box');
    await deliver(3);
    await deliver(3, 'Box');
    // A changed row is written anew at the end of the table: DELETE … RETURNING then yields UID 1 last.
    await view!.setFlags('INBOX', [1], ['\\Seen'], 'add');
    await view!.setFlags('Box', [1], ['\\Seen'], 'add');
    const order = await admin!.query<{ uid: string }>("SELECT m.uid FROM postern_messages m JOIN postern_mailboxes b ON b.id = m.mailbox_id WHERE b.name = 'INBOX'");
    expect(order.rows.map((r) => Number(r.uid)), 'the table order this case needs').to.deep.equal([2, 3, 1]);
    events = [];
    expect(await view!.expunge('INBOX', [1, 2, 3])).to.deep.equal([1, 2, 3]);
    await view!.delete('Box');
    expect(events).to.deep.equal([
      { type: 'expunge', username: 'alice', mailbox: 'INBOX', uids: [1, 2, 3] },
      { type: 'expunge', username: 'alice', mailbox: 'Box', uids: [1, 2, 3] },
      { type: 'mailbox', username: 'alice', mailbox: 'Box', change: 'deleted' },
    ]);
    const bodies = await admin!.query<{ n: string }>('SELECT count(*) AS n FROM postern_bodies');
    expect(bodies.rows[0]!.n).to.equal('0');
  });

  it('sends flag events only for the messages that changed', async () => {
    await deliver(2);
    await view!.setFlags('INBOX', [1], ['\\Seen'], 'add');
    events = [];
    await view!.setFlags('INBOX', [1, 2], ['\\Seen'], 'add');
    expect(events).to.deep.equal([{ type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [2] }]);
  });

  it('creates the missing superiors of a rename target, with one event each', async () => {
    await view!.create('a');
    await view!.create('p');
    events = [];
    await view!.rename('a', 'x/y/z');
    await view!.create('b');
    await view!.rename('b', 'p/q');
    expect(events).to.deep.equal([
      { type: 'mailbox', username: 'alice', mailbox: 'a', change: 'renamed', newName: 'x/y/z' },
      { type: 'mailbox', username: 'alice', mailbox: 'x', change: 'created' },
      { type: 'mailbox', username: 'alice', mailbox: 'x/y', change: 'created' },
      { type: 'mailbox', username: 'alice', mailbox: 'b', change: 'created' },
      { type: 'mailbox', username: 'alice', mailbox: 'b', change: 'renamed', newName: 'p/q' },
    ]);
  });

  it('refuses the body of an expunged message', async () => {
    await deliver(1);
    const [m] = await view!.messages('INBOX');
    await view!.expunge('INBOX', [1]);
    expect(await refusal(m!.raw())).to.equal('NO_SUCH_MESSAGE: message expunged');
  });

  it('loads no body for a row id that is not a safe integer (it is inlined into COPY)', async () => {
    const row = { uid: 1, modseq: 1, internal_date: new Date(0), size: 1, flags: [], envelope: null, body_hash: Buffer.alloc(32), saved_at: null };
    for (const id of [2 ** 53, 1.5, Number.NaN]) expect(await refusal(storedMessage(store!.db, { ...row, id }).raw())).to.equal('undefined: bad message id');
  });

  it('runs no body clean-up when nothing was removed (a statement trigger refuses any DELETE on postern_bodies)', async () => {
    await view!.create('Empty');
    await deliver(1);
    await admin!.query(`INSERT INTO test_faults VALUES ('22023');
      CREATE TRIGGER test_fault_statement BEFORE DELETE ON postern_bodies FOR EACH STATEMENT EXECUTE FUNCTION test_fault()`);
    try {
      expect(await view!.expunge('INBOX', [7])).to.deep.equal([]);
      expect(await refusal(view!.delete('Empty'))).to.equal('resolved');
      expect(await refusal(view!.expunge('INBOX', [1])), 'the trigger is in place').to.equal('22023: injected fault');
    } finally {
      await admin!.query('DROP TRIGGER test_fault_statement ON postern_bodies');
    }
  });

  it('leaves a body that a concurrent store started to share (23503 from its clean-up), and reports other failures', async () => {
    await deliver(2);
    await admin!.query("INSERT INTO test_faults VALUES ('23503')");
    expect(await view!.expunge('INBOX', [1])).to.deep.equal([1]);
    await admin!.query("UPDATE test_faults SET state = '22023'");
    expect(await refusal(view!.expunge('INBOX', [2]))).to.equal('22023: injected fault');
    const left = await admin!.query<{ n: string }>('SELECT count(*) AS n FROM postern_bodies');
    expect(left.rows[0]!.n).to.equal('2');
  });

  it('counts a view released twice once: its user is still resynced after a LISTEN gap while another view is open', async () => {
    await store!.users.add({ username: 'bob', password: 'pw', addresses: ['bob@example.org'] });
    const bob = await store!.openUser('bob');
    const second = await store!.openUser('alice');
    await second.release();
    await second.release();
    const resynced = (): string[] => events.filter((e) => e.type === 'flags' && e.uids.length === 0).map((e) => `${e.username}/${e.mailbox}`);
    const killed = await admin!.query<{ n: string }>(
      `SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity
       WHERE datname = current_database() AND query = 'LISTEN postern_events'`,
    );
    expect(killed.rows[0]!.n).to.equal('1');
    for (let i = 0; i < 1000 && !resynced().includes('bob/INBOX'); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(resynced().sort()).to.deep.equal(['alice/INBOX', 'bob/INBOX']);
    await bob.release();
  });

  it('sorts keywords in code-unit order whatever the database collation', async () => {
    await admin!.query('ALTER TABLE postern_messages ALTER COLUMN flags TYPE text[] COLLATE "und-x-icu"');
    try {
      await deliver(1);
      await view!.setFlags('INBOX', [1], ['apple', 'Banana'], 'add');
      expect((await view!.info('INBOX')).keywords).to.deep.equal(['Banana', 'apple']);
    } finally {
      await admin!.query('ALTER TABLE postern_messages ALTER COLUMN flags TYPE text[] COLLATE "default"');
    }
  });
});
