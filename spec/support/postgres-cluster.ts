import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Where Debian 12 puts the PostgreSQL 15 server binaries; `POSTERN_PG_BIN` overrides it. */
export const PG_BIN = process.env.POSTERN_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** The login role of every test cluster (a superuser with a password, so URLs carry credentials as in production). */
const ROLE = 'postern';

/** A private PostgreSQL cluster on a free loopback port, owned by one spec file. */
export interface PostgresCluster {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** `postgres://user:password@127.0.0.1:port/<database>`. */
  url(database: string): string;
  /** Creates an empty database with a fresh name and resolves its URL. */
  createDatabase(): Promise<string>;
  /** Drops a database made by {@link createDatabase} (closing its connections first). */
  dropDatabase(url: string): Promise<void>;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Why PostgreSQL cannot run here, or undefined when it can (the spec is then pending with this reason). */
export function postgresMissing(): string | undefined {
  for (const bin of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(PG_BIN, bin))) return `PostgreSQL server binaries not found in ${PG_BIN} (apt-get install postgresql)`;
  }
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root but no "postgres" user to run the server';
  return undefined;
}

function run(argv: string[], asUser: string | undefined): Promise<string> {
  const [file, args] = asUser ? ['runuser', ['-u', asUser, '--', ...argv]] : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv[0]} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const live = new Set<string>();
// A spec process that dies without its `after` hook must not leave a server behind.
process.once('exit', () => {
  for (const cmd of live) spawnSync('sh', ['-c', cmd], { stdio: 'ignore' });
});

/**
 * initdb into a temporary directory, then starts `postgres` on a free port of 127.0.0.1 with its unix socket in
 * that directory. As root, every server command runs as the `postgres` user (PostgreSQL refuses root).
 * Durability settings are relaxed (fsync off) unless `durable` (benchmarks): the tests kill Postern nodes, never the
 * database.
 * The caller stops it (`after` hook); check {@link postgresMissing} first.
 */
export async function startPostgresCluster(options: { durable?: boolean } = {}): Promise<PostgresCluster> {
  if (process.env.POSTERN_PG_SHARED_CLUSTER !== '1' || options.durable === true) return startOwnCluster(options);
  sharedCluster ??= startOwnCluster(options).then((cluster) => {
    // Stryker kills its test-runner processes with SIGKILL (no 'exit' hook runs), and pg_ctl's server is not their
    // child: a watchdog outside the process tree stops the server once this process is gone.
    // Its own process group (detached), so that a signal to this process's group (Ctrl-C, `kill -- -pgid`) spares it.
    spawn('sh', ['-c', `(while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${cluster.stopCommand}) >/dev/null 2>&1 &`], { stdio: 'ignore', detached: true }).unref();
    return { ...cluster, stop: async () => undefined };
  });
  return sharedCluster;
}

/**
 * Under mutation testing (`POSTERN_PG_SHARED_CLUSTER=1`, set by stryker.config.mjs for `lib/backends/postgres`),
 * mocha re-runs the same loaded spec files once per mutant in one process: every spec then gets this process's one
 * cluster (started at first use, stopped when the process ends; `stop()` does nothing), instead of an initdb and a
 * server start per mutant. Specs keep creating their own databases in it.
 */
let sharedCluster: Promise<PostgresCluster> | undefined;

async function startOwnCluster(options: { durable?: boolean }): Promise<PostgresCluster & { readonly stopCommand: string }> {
  const asUser = process.getuid?.() === 0 ? 'postgres' : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'postern-pg-'));
  const data = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  const password = randomBytes(12).toString('hex');
  await mkdir(socketDir);
  await writeFile(join(dir, 'pwfile'), password + '\n', { mode: 0o600 });
  if (asUser) {
    const uid = Number(spawnSync('id', ['-u', asUser]).stdout.toString().trim());
    const gid = Number(spawnSync('id', ['-g', asUser]).stdout.toString().trim());
    for (const path of [dir, socketDir, join(dir, 'pwfile')]) await chown(path, uid, gid);
  }
  const bin = (name: string): string => join(PG_BIN, name);
  let port = 0;
  try {
    await run(
      [bin('initdb'), '-D', data, '-U', ROLE, `--pwfile=${join(dir, 'pwfile')}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      asUser,
    );
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      const durability = options.durable === true ? '' : ' -c fsync=off -c full_page_writes=off';
      const serverOptions = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c max_connections=200${durability}`;
      try {
        await run([bin('pg_ctl'), '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', '-o', serverOptions, 'start'], asUser);
        break;
      } catch (err) {
        if (attempt >= 2) throw err; // another process took the port between freePort() and listen
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true }); // nothing runs yet: a failed start leaves no directory behind
    throw err;
  }
  const stopCmd = `${asUser ? `runuser -u ${asUser} -- ` : ''}${bin('pg_ctl')} -D ${data} -m immediate stop; rm -rf ${dir}`;
  live.add(stopCmd);
  const url = (database: string): string => `postgres://${ROLE}:${password}@127.0.0.1:${port}/${database}`;
  const admin = async <T>(task: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url('postgres') });
    await client.connect();
    try {
      return await task(client);
    } finally {
      await client.end();
    }
  };
  let counter = 0;
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    stopCommand: stopCmd,
    user: ROLE,
    password,
    url,
    createDatabase: async () => {
      const name = `t${process.pid}_${++counter}`;
      // FILE_COPY skips WAL-logging the template: much faster for the many small databases the suite makes.
      await admin((c) => c.query(`CREATE DATABASE ${name} STRATEGY FILE_COPY`));
      return url(name);
    },
    dropDatabase: async (dbUrl) => {
      const name = new URL(dbUrl).pathname.slice(1);
      if (!/^t\d+_\d+$/.test(name)) throw new Error(`not a test database: ${name}`);
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      live.delete(stopCmd);
      await run([bin('pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'], asUser).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What {@link useMigratedDatabase} gives a spec file once its `before` hook has run. */
export interface MigratedDatabase {
  readonly cluster: PostgresCluster;
  /** The spec file's own database. */
  readonly url: string;
  /** A client connected to it, for checks and set-up outside the store. */
  readonly admin: pg.Client;
}

/**
 * Mocha hooks for a describe block with its own database: a cluster started (or the shared one), a database created,
 * Postern's schema migrated into it and `setupSql` run once (fault triggers, sequences); dropped again after the
 * block. Skips the block when PostgreSQL is not installed. Read the fields inside hooks and tests only.
 */
export function useMigratedDatabase(setupSql = ''): MigratedDatabase {
  let cluster: PostgresCluster | undefined;
  let url = '';
  let admin: pg.Client | undefined;
  before(async function () {
    if (postgresMissing() !== undefined) this.skip();
    cluster = await startPostgresCluster();
    url = await cluster.createDatabase();
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const { migrate } = await import('../../lib/backends/postgres/pg-schema.js');
    await migrate(admin);
    if (setupSql !== '') await admin.query(setupSql);
  });
  after(async () => {
    await admin?.end();
    if (url !== '') await cluster?.dropDatabase(url);
    await cluster?.stop();
  });
  return {
    get cluster() {
      return cluster!;
    },
    get url() {
      return url;
    },
    get admin() {
      return admin!;
    },
  };
}
