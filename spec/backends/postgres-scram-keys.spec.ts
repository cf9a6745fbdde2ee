/**
 * SCRAM-SHA-256 from the PostgreSQL store's stored keys (RFC 5802 §3): each user row keeps its salt, iteration count,
 * StoredKey and ServerKey beside the scrypt hash (schema step 3), so SCRAM is offered with no plaintext in the
 * database, the announced salt is the stored one, users from before the step turn SCRAM off until their password is
 * set again (also when another node or an operator's SQL adds one), and a real client logs in with it.
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { decodeScramKeys } from '../../lib/protocol/sasl/scram-keys.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { postgresMissing, startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { runTool } from '../support/tool.js';

interface UserRow {
  username: string;
  scrypt: string | null;
  scram: string | null;
  password: string | null;
}

describe('PostgreSQL store: SCRAM-SHA-256 from stored keys', function () {
  this.timeout(60_000);
  let cluster: PostgresCluster | undefined;
  let url: string;
  let sql: pg.Client;
  const servers: RunningMailServer[] = [];
  const clients: LineClient[] = [];

  before(async function () {
    if (postgresMissing() !== undefined) this.skip(); // .ci/run installs postgresql
    cluster = await startPostgresCluster();
  });
  after(async () => {
    await cluster?.stop();
  });
  beforeEach(async () => {
    url = await cluster!.createDatabase();
    sql = new pg.Client({ connectionString: url });
    await sql.connect();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of servers.splice(0)) await s.stop();
    await sql.end();
    await cluster!.dropDatabase(url);
  });

  const start = async (users: string[] = ['alice:pencil@example.com']): Promise<RunningMailServer> => {
    const s = await startMailServer({ protocols: ['smtps', 'imaps'], store: url, users });
    servers.push(s);
    return s;
  };
  const greeting = async (s: RunningMailServer): Promise<string> => {
    const c = await LineClient.connect(s.ports.imaps!, { tls: { ca: s.ca, servername: 'localhost' } });
    clients.push(c);
    return (await c.expect(/^\* OK /))[0]!;
  };
  const serverFirst = async (s: RunningMailServer, login: string): Promise<string> => {
    const c = await LineClient.connect(s.ports.imaps!, { tls: { ca: s.ca, servername: 'localhost' } });
    clients.push(c);
    await c.expect(/^\* OK /);
    const [line] = await c.command(`a AUTHENTICATE SCRAM-SHA-256 ${Buffer.from(`n,,n=${login},r=abc`).toString('base64')}`, /^(\+|a) /);
    return Buffer.from(line!.slice(2), 'base64').toString('utf8');
  };
  /** Greets again every 100 ms until the IMAP greeting offers SCRAM-SHA-256 (or not), for at most 5 s. */
  const untilScram = async (s: RunningMailServer, offered: boolean): Promise<void> => {
    for (const until = Date.now() + 5000; (await greeting(s)).includes(' AUTH=SCRAM-SHA-256') !== offered; ) {
      if (Date.now() > until) throw new Error(`SCRAM-SHA-256 still ${offered ? 'not ' : ''}offered after 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const row = async (username: string): Promise<UserRow> =>
    (await sql.query<UserRow>('SELECT username, scrypt, scram, password FROM postern_users WHERE username = $1', [username])).rows[0]!;

  it('keeps the keys beside the scrypt hash and no plaintext, offers SCRAM-SHA-256 (not CRAM-MD5) and announces the stored salt', async () => {
    const s = await start();
    const alice = await row('alice');
    expect(alice.scrypt).to.match(/^scrypt\$/);
    expect(alice.password).to.equal(null);
    const keys = decodeScramKeys(alice.scram!)!;
    expect(keys.iterations).to.equal(4096);
    expect(await greeting(s)).to.contain(' AUTH=SCRAM-SHA-256').and.not.to.contain('CRAM-MD5');
    const salt = keys.salt.toString('base64').replace(/[+/]/g, '\\$&');
    expect(await serverFirst(s, 'alice')).to.match(new RegExp(`^r=abc[^,]+,s=${salt},i=4096$`));
    expect(await serverFirst(s, 'alice@example.com'), 'by address').to.match(new RegExp(`,s=${salt},i=4096$`));
  });

  it('keeps the keys of an unchanged password across a restart and makes new ones for a new password', async () => {
    await (await start()).stop();
    servers.length = 0;
    const first = (await row('alice')).scram;
    await (await start()).stop();
    servers.length = 0;
    expect((await row('alice')).scram, 'same password').to.equal(first);
    await start(['alice:changed@example.com']);
    const changed = (await row('alice')).scram!;
    expect(changed).not.to.equal(first);
    expect(decodeScramKeys(changed)!.salt.equals(decodeScramKeys(first!)!.salt)).to.equal(false);
  });

  it('does not offer SCRAM-SHA-256 while a user from before schema step 3 has no keys; setting the password again makes them', async () => {
    await (await start(['alice:pencil@example.com', 'bob:secret@example.com'])).stop();
    servers.length = 0;
    await sql.query("UPDATE postern_users SET scram = NULL WHERE username = 'bob'");
    const s = await start([]);
    expect(await greeting(s)).not.to.contain('SCRAM-SHA-256');
    await s.addUser('bob:secret@example.com');
    expect((await row('bob')).scram).to.match(/^SCRAM-SHA-256\$4096\$/);
    expect(await greeting(s)).to.contain(' AUTH=SCRAM-SHA-256');
  });

  it('offers SCRAM-SHA-256 in the first greeting of a node started without --user on a database whose users have keys', async () => {
    await (await start()).stop();
    servers.length = 0;
    const s = await start([]);
    expect(await greeting(s)).to.contain(' AUTH=SCRAM-SHA-256');
  });

  it('offers SCRAM-SHA-256 as soon as this node removes the last user without keys', async () => {
    await (await start(['alice:pencil@example.com', 'bob:secret@example.com'])).stop();
    servers.length = 0;
    await sql.query("UPDATE postern_users SET scram = NULL WHERE username = 'bob'");
    const s = await start([]);
    expect(await greeting(s)).not.to.contain('SCRAM-SHA-256');
    expect(await s.store.users.remove!('bob')).to.equal(true);
    expect(await greeting(s)).to.contain(' AUTH=SCRAM-SHA-256');
  });

  it("sees within about a second a user without keys that another node's SQL added, and stops offering SCRAM-SHA-256", async () => {
    const s = await start();
    expect(await greeting(s)).to.contain(' AUTH=SCRAM-SHA-256');
    await sql.query("INSERT INTO postern_users (username, scrypt) SELECT 'carol', scrypt FROM postern_users WHERE username = 'alice'");
    await untilScram(s, false);
    await sql.query("DELETE FROM postern_users WHERE username = 'carol'");
    await untilScram(s, true);
  });

  it('re-checks on the first greeting after a quiet second: a user without keys added meanwhile turns SCRAM-SHA-256 off', async () => {
    const s = await start();
    await sql.query("INSERT INTO postern_users (username, scrypt) SELECT 'carol', scrypt FROM postern_users WHERE username = 'alice'");
    await new Promise((resolve) => setTimeout(resolve, 1200)); // no reader: the answer is older than SCRAM_RECHECK_MS
    await untilScram(s, false);
  });

  it('answers the stored keys by username, and none for a user without keys, an unknown user or a name with NUL', async () => {
    const s = await start(['alice:pencil@example.com', 'bob:secret@example.com']);
    await sql.query("UPDATE postern_users SET scram = NULL WHERE username = 'bob'");
    expect(await s.store.users.scramKeysFor!('alice')).to.deep.equal(decodeScramKeys((await row('alice')).scram!));
    expect(await s.store.users.scramKeysFor!('bob')).to.equal(undefined);
    expect(await s.store.users.scramKeysFor!('nobody')).to.equal(undefined);
    expect(await s.store.users.scramKeysFor!('al\u0000ice')).to.equal(undefined);
  });

  it('msmtp submits with SCRAM-SHA-256 from the stored keys (and checks our signature); a wrong password gets 535 5.7.8', async function () {
    const s = await start();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-pg-scram-'));
    try {
      await mkdir(path.join(dir, 'home'));
      await writeFile(path.join(dir, 'ca.pem'), s.ca);
      const args = (password: string): string[] => ['--host=localhost', `--port=${s.ports.smtps}`, '--tls=on', '--tls-starttls=off', `--tls-trust-file=${path.join(dir, 'ca.pem')}`, '--auth=scram-sha-256', '--user=alice', `--passwordeval=echo ${password}`, '--from=alice@example.com', 'alice@example.com'];
      const ok = await runTool('msmtp', args('pencil'), { input: 'Subject: pg keys\n\nhi\n', env: { HOME: path.join(dir, 'home') } });
      if (ok === undefined) this.skip(); // .ci/run installs msmtp
      expect(ok!.code, ok!.stderr).to.equal(0);
      expect((await s.waitForMessages(1))[0]!.subject).to.equal('pg keys');
      const wrong = (await runTool('msmtp', args('nope'), { input: 'Subject: no\n\nhi\n', env: { HOME: path.join(dir, 'home') } }))!;
      expect(wrong.code).to.equal(77);
      expect(wrong.stderr).to.contain('535 5.7.8 Authentication credentials invalid');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
