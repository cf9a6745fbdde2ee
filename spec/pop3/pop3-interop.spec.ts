import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ALICE, message, startPop3, type Pop3Harness } from './pop3-harness.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a binary; resolves with its exit code and output, or undefined when it is not installed. */
function run(file: string, args: string[]): Promise<Run | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'buffer', timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

const STUFFED = message('interop', 'first line\r\n.leading dot\r\n..two\r\n\u00e9t\u00e9 latin1\r\nlast\r\n');

describe('pop3: real clients', () => {
  let h: Pop3Harness;
  let dir: string;
  let caFile: string;

  beforeEach(async () => {
    h = await startPop3();
    await h.deliver(STUFFED);
    await h.deliver(message('second'));
    dir = await mkdtemp(path.join(tmpdir(), 'postern-pop3-'));
    caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, h.certs.ca.cert);
  });

  afterEach(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  const stored = async (i: number): Promise<Buffer> => (await allMessages(h.store))[i].message.raw();

  describe('python poplib', () => {
    const script = (connect: string): string => `
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
${connect}
p.user('alice')
p.pass_(${JSON.stringify(ALICE.password)})
count, size = p.stat()
resp, lines, octets = p.retr(1)
sys.stdout.buffer.write(b'%d %d %d\\n' % (count, size, octets))
sys.stdout.buffer.write(b'\\r\\n'.join(lines) + b'\\r\\n')
p.dele(2)
p.quit()
`;

    async function poplib(connect: string, port: number): Promise<void> {
      const r = await run('python3', ['-c', script(connect), caFile, String(port)]);
      if (!r) return;
      expect(r.stderr).to.equal('');
      expect(r.code).to.equal(0);
      const out = r.stdout;
      const nl = out.indexOf(0x0a);
      const [count, , octets] = out.subarray(0, nl).toString().split(' ').map(Number);
      const raw = await stored(0);
      expect(count).to.equal(2);
      expect(octets).to.be.at.least(raw.length);
      expect(out.subarray(nl + 1).equals(raw)).to.equal(true);
      expect(await allMessages(h.store)).to.have.length(1);
    }

    it('stls(), user/pass_, retr byte for byte, dele + quit', async function () {
      if (!(await run('python3', ['-c', 'import poplib']))) this.skip();
      await poplib(`p = poplib.POP3('127.0.0.1', int(sys.argv[2]), timeout=10)\np.stls(context=ctx)`, h.port);
    });

    it('POP3_SSL on the implicit-TLS port', async function () {
      if (!(await run('python3', ['-c', 'import poplib']))) this.skip();
      await poplib(`p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[2]), context=ctx, timeout=10)`, h.securePort);
    });
  });

  describe('curl', () => {
    const auth = ['-u', `alice:${ALICE.password}`, '--cacert'];

    it('pop3:// with --ssl-reqd lists and retrieves (STLS + SASL)', async function () {
      const base = `pop3://127.0.0.1:${h.port}/`;
      const list = await run('curl', ['-sS', '--ssl-reqd', ...auth, caFile, base]);
      if (!list) this.skip();
      expect(list.stderr).to.equal('');
      const sizes = (await allMessages(h.store)).map((m) => m.message.size);
      expect(list.stdout.toString()).to.equal(`1 ${sizes[0]}\r\n2 ${sizes[1]}\r\n`);
      const retr = await run('curl', ['-sS', '--ssl-reqd', ...auth, caFile, base + '1']);
      expect(retr?.stderr).to.equal('');
      expect(retr?.stdout.equals(await stored(0))).to.equal(true);
    });

    it('pop3s:// with --cacert retrieves with AUTH PLAIN, AUTH LOGIN, APOP and (curl\'s pick) CRAM-MD5', async function () {
      const base = `pop3s://127.0.0.1:${h.securePort}/`;
      for (const mech of ['AUTH=PLAIN', 'AUTH=LOGIN', 'AUTH=+APOP', 'AUTH=*']) {
        const r = await run('curl', ['-sS', '--login-options', mech, ...auth, caFile, base + '2']);
        if (!r) this.skip();
        expect(r.stderr, mech).to.equal('');
        expect(r.stdout.equals(await stored(1)), mech).to.equal(true);
      }
    });

    it('pop3:// without --ssl-reqd cannot log in in plaintext: -ERR [AUTH] to its APOP, curl exit 67', async function () {
      const r = await run('curl', ['-sS', '-v', ...auth, caFile, `pop3://127.0.0.1:${h.port}/1`]);
      if (!r) this.skip();
      expect(r.stderr).to.contain('< -ERR [AUTH] TLS required: use STLS first'); // RFC 3206 AUTH response code
      expect(r.stderr).to.not.match(/^< \+OK (?!Postern POP3 server ready|capability)/m); // nothing else accepted
      expect(r.stdout.length).to.equal(0);
      expect(r.code).to.equal(67); // CURLE_LOGIN_DENIED
    });
  });

  describe('node client', () => {
    it('STLS, AUTH PLAIN, RETR byte for byte through a TLS socket', async () => {
      const c = await h.connect();
      await c.readLine();
      await c.command('STLS', /^\+OK/);
      await c.startTls(h.trust());
      const plain = Buffer.from(`\0alice\0${ALICE.password}`).toString('base64');
      await c.command(`AUTH PLAIN ${plain}`, /^\+OK/);
      const lines = await c.command('RETR 1', /^\.$/);
      const body = lines
        .slice(1, -1)
        .map((l) => (l.startsWith('.') ? l.slice(1) : l))
        .join('\r\n');
      expect(Buffer.from(body + '\r\n', 'latin1').equals(await stored(0))).to.equal(true);
      await c.command('QUIT', /^\+OK/);
      await c.closed();
    });
  });
});
