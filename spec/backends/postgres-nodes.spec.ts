import 'reflect-metadata';
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PostgresMailStore } from '../../lib/backends/postgres/postgres-mail-store.js';
import { runPostern, startPostern, type PosternProcess } from '../cli/cli-process.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';
import { postgresMissing, startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';

/** A unique small message; its Subject identifies it when read back. */
function mail(subject: string): string {
  return `From: s@example.net\r\nTo: alice@example.org\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`;
}

/**
 * One SMTP session sending `subjects` in order (MAIL, RCPT and DATA pipelined per RFC 2920, then the body).
 * Calls `accepted` for each message answered 250, and stops quietly when the server goes away.
 */
async function sendAll(port: number, subjects: string[], accepted: (subject: string) => void = () => undefined): Promise<void> {
  const client = await LineClient.connect(port, { timeoutMs: 15_000 });
  try {
    await client.expect(/^220 /);
    await client.command('EHLO nodes.test', /^250 /);
    for (const subject of subjects) {
      client.send('MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
      await client.expect(/^250 /);
      await client.expect(/^250 /);
      await client.expect(/^354 /);
      client.send(mail(subject) + '.\r\n');
      await client.expect(/^250 /);
      accepted(subject);
    }
    await client.command('QUIT', /^221 /);
  } catch (err) {
    if (!client.isClosed) throw err;
  } finally {
    client.raw.destroy();
  }
}

/** The Subject header of a raw message. */
function subjectOf(raw: Buffer): string {
  return /^Subject: (.*)\r$/m.exec(raw.toString('utf8'))?.[1] ?? '';
}

describe('two Postern nodes on one PostgreSQL database', function () {
  this.timeout(60_000);
  let cluster: PostgresCluster | undefined;
  let dir: string;
  let url: string;
  let nodes: PosternProcess[] = [];
  let store: PostgresMailStore | undefined;

  /** Starts `postern` on the shared database with plaintext listeners on free ports. */
  async function node(): Promise<PosternProcess> {
    const p = startPostern([
      '--store', url,
      '--user', 'alice:secret@example.org',
      '--only', 'smtp,pop3,imap',
      '--smtp-port', '0', '--pop3-port', '0', '--imap-port', '0',
      '--allow-insecure-auth',
      '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem'),
      '--log-level', 'error',
    ]);
    nodes.push(p);
    await p.ready(3, 30_000);
    return p;
  }

  before(async function () {
    if (postgresMissing() !== undefined) this.skip();
    cluster = await startPostgresCluster();
    dir = await mkdtemp(path.join(tmpdir(), 'postern-nodes-'));
    const certs = await testCertificates();
    await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
    await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
  });

  beforeEach(async () => {
    url = await cluster!.createDatabase();
    store = new PostgresMailStore({ url });
  });

  afterEach(async () => {
    await Promise.all(nodes.map((p) => p.stop('SIGKILL')));
    nodes = [];
    await store?.close();
  });

  after(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fails the start with exit 2 and one line when the database refuses the password, never printing it', async () => {
    const wrong = url.replace(/:[^:@/]+@/, ':hunter2@');
    const result = await runPostern(['--store', wrong, '--only', 'smtp', '--smtp-port', '0', '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem')]);
    expect(result.code).to.equal(2);
    expect(result.stderr.trim()).to.match(/^postern: error: password authentication failed for user "postern"$/);
    expect(result.stdout + result.stderr).to.not.include('hunter2');
    expect(result.stdout).to.not.match(/ready on/);
  });

  it('reads mail sent through node 1 over POP3 and IMAP on node 2, and IDLE on node 2 sees node 1 deliver', async () => {
    const [one, two] = await Promise.all([node(), node()]); // both create the same user at once
    await sendAll(one.ports.smtp!, ['first']);

    const pop = await LineClient.connect(two.ports.pop3!);
    await pop.expect(/^\+OK/);
    await pop.command('USER alice', /^\+OK/);
    await pop.command('PASS secret', /^\+OK/);
    expect((await pop.command('STAT', /^\+OK/))[0]).to.match(/^\+OK 1 \d+$/);
    const retr = await pop.command('RETR 1', /^\.$/);
    expect(retr).to.include('Subject: first');
    await pop.command('QUIT', /^\+OK/);

    const imap = await LineClient.connect(two.ports.imap!);
    await imap.expect(/^\* OK/);
    await imap.command('a LOGIN alice secret', /^a OK/);
    expect(await imap.command('b SELECT INBOX', /^b OK/)).to.include('* 1 EXISTS');
    const fetched = await imap.command('c FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])', /^c OK/);
    expect(fetched.join('\n')).to.include('Subject: first');
    await imap.command('d IDLE', /^\+ /);
    await sendAll(one.ports.smtp!, ['second']);
    expect(await imap.expect(/^\* \d+ EXISTS$/)).to.include('* 2 EXISTS');
    await imap.command('DONE', /^d OK/);
    await imap.command('e LOGOUT', /^e OK/);
  });

  it('gives 1,000 messages delivered concurrently through both nodes 1,000 distinct UIDs', async () => {
    const [one, two] = await Promise.all([node(), node()]);
    const sessions = 40; // 20 per node, 25 messages each
    await Promise.all(
      Array.from({ length: sessions }, (_, s) =>
        sendAll((s % 2 ? one : two).ports.smtp!, Array.from({ length: 25 }, (_, n) => `bulk-${s}-${n}`)),
      ),
    );
    const view = await store!.openUser('alice');
    const messages = await view.messages('INBOX', { peek: true });
    const uids = new Set(messages.map((m) => m.uid));
    expect(messages).to.have.length(1000);
    expect(uids.size).to.equal(1000);
    expect(Math.max(...uids)).to.equal(1000);
    expect((await view.info('INBOX')).uidNext).to.equal(1001);
    await view.release();
  });

  it('keeps every message answered 250 exactly once when a node is killed during delivery', async () => {
    const victim = await node();
    const accepted = new Set<string>();
    let killed = false;
    const onAccepted = (subject: string): void => {
      accepted.add(subject);
      if (accepted.size >= 60 && !killed) {
        killed = true;
        victim.child.kill('SIGKILL');
      }
    };
    await Promise.all(
      Array.from({ length: 6 }, (_, s) => sendAll(victim.ports.smtp!, Array.from({ length: 100 }, (_, n) => `kill-${s}-${n}`), onAccepted)),
    );
    expect(killed, 'the node was killed mid-delivery').to.equal(true);
    expect(await victim.exited()).to.equal(null);
    await store!.users.add({ username: 'alice', password: 'secret', addresses: ['alice@example.org'] });
    const view = await store!.openUser('alice');
    const counts = new Map<string, number>();
    for (const message of await view.messages('INBOX', { peek: true })) {
      const subject = subjectOf(await message.raw());
      counts.set(subject, (counts.get(subject) ?? 0) + 1);
    }
    for (const subject of accepted) expect(counts.get(subject), subject).to.equal(1);
    expect([...counts.values()].every((n) => n === 1), 'no message stored twice').to.equal(true);
    expect(counts.size, 'at most the ones in flight beyond those answered').to.be.lessThan(accepted.size + 7);
    await view.release();
  });
});
