/**
 * SCRAM-SHA-256 from stored keys (RFC 5802 §3): a store that keeps only password hashes (Maildir) also keeps each
 * user's salt, iteration count, StoredKey and ServerKey, so SCRAM works without any plaintext on the server. Checked
 * against RFC 7677 §3's example, on the wire (salt announced from the store, a made-up stable salt for unknown
 * logins), with users written before keys existed (SCRAM then not offered), and with msmtp and mbsync.
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import type { SaslSessionInfo, SaslStep } from '../../lib/protocol/sasl/sasl-mechanism.js';
import { decodeScramKeys, deriveScramKeys, encodeScramKeys } from '../../lib/protocol/sasl/scram-keys.js';
import { scramSha256 } from '../../lib/protocol/sasl/scram-sha-256.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { mbsyncInboxConfig, runTool, type ToolRun } from '../support/tool.js';

/** RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations. */
const RFC7677 = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');

const base: SaslSessionInfo = {
  peer: { id: 'c1', protocol: 'imap', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security: { tls: true, policyErrors: SslPolicyErrors.None } },
  hostname: 'mx.test',
  supportsSharedSecrets: false,
};

describe('sasl: SCRAM-SHA-256 from stored keys', function () {
  this.timeout(60_000);

  describe('the keys and the mechanism', () => {
    it("runs RFC 7677 §3's example from keys alone: the store's salt is announced, the proof checks, the signature matches", async () => {
      const keys = deriveScramKeys('pencil', SALT, 4096);
      const asked: string[] = [];
      const session: SaslSessionInfo = { ...base, supportsScramKeys: true, scramParameters: async (login) => (asked.push(login), { salt: keys.salt, iterations: keys.iterations }) };
      const mechanism = scramSha256({ serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', salt: () => Buffer.from('not this one') });
      expect(mechanism.isAvailable(session)).to.equal(true);
      const server = mechanism.start(session);
      const first = (await server.next(Buffer.from(RFC7677.clientFirst))) as { challenge: Buffer };
      expect(first.challenge.toString()).to.equal(RFC7677.serverFirst);
      expect(asked).to.deep.equal(['user']);
      const done = (await server.next(Buffer.from(RFC7677.clientFinal))) as Extract<SaslStep, { done: unknown }>;
      expect(done.done.verifyWithScramKeys!(deriveScramKeys('pencils', SALT, 4096)), 'keys of another password').to.equal(false);
      expect(done.done.verifyWithScramKeys!(deriveScramKeys('pencil', Buffer.from('other salt'), 4096)), 'keys with another salt').to.equal(false);
      expect(done.done.verifyWithScramKeys!(keys)).to.equal(true);
      expect(done.successData!()!.toString()).to.equal(RFC7677.serverFinal);
    });

    it('encodes keys as SCRAM-SHA-256$iterations$salt$StoredKey$ServerKey and reads back only that form', () => {
      const keys = deriveScramKeys('pencil', SALT, 4096);
      const encoded = encodeScramKeys(keys);
      expect(encoded).to.match(/^SCRAM-SHA-256\$4096\$W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=\$[A-Za-z0-9+/]{43}=$/);
      expect(decodeScramKeys(encoded)).to.deep.equal(keys);
      for (const bad of ['', 'scrypt$1$2$3$4$5', encoded.replace('$4096$', '$0$'), encoded.replace('$4096$', '$x$'), encoded.split('$').slice(0, 4).join('$'), encoded.replace(/\$[^$]+$/, '$AAAA')]) {
        expect(decodeScramKeys(bad), bad).to.equal(undefined);
      }
    });

    it('is offered with stored keys, not without keys or secrets, and never where any login works', () => {
      const m = scramSha256();
      expect(m.isAvailable({ ...base, supportsScramKeys: true })).to.equal(true);
      expect(m.isAvailable(base)).to.equal(false);
      expect(m.isAvailable({ ...base, supportsScramKeys: true, acceptsAnyCredentials: true })).to.equal(false);
    });
  });

  describe('the Maildir store', () => {
    let dir: string;
    let server: RunningMailServer | undefined;
    const clients: LineClient[] = [];
    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'postern-scram-keys-'));
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.close();
      await server?.stop();
      server = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    const start = async (users: string[] = ['alice:pencil@example.com']): Promise<RunningMailServer> =>
      (server = await startMailServer({ protocols: ['smtps', 'imaps'], store: `maildir:${path.join(dir, 'store')}`, users }));
    const imaps = async (s: RunningMailServer): Promise<LineClient> => {
      const c = await LineClient.connect(s.ports.imaps!, { tls: { ca: s.ca, servername: 'localhost' } });
      clients.push(c);
      return c;
    };
    const serverFirst = async (s: RunningMailServer, login: string): Promise<string> => {
      const c = await imaps(s);
      await c.expect(/^\* OK /);
      const [line] = await c.command(`a AUTHENTICATE SCRAM-SHA-256 ${Buffer.from(`n,,n=${login},r=abc`).toString('base64')}`, /^(\+|a) /);
      return Buffer.from(line!.slice(2), 'base64').toString('utf8');
    };

    it('keeps SCRAM keys beside the scrypt hash and no plaintext, offers SCRAM-SHA-256 (not CRAM-MD5), and announces the stored salt', async () => {
      const s = await start();
      const file = JSON.parse(await readFile(path.join(dir, 'store', 'users.json'), 'utf8')) as { users: { username: string; scram?: string; scrypt?: string; password?: string }[] };
      const alice = file.users.find((u) => u.username === 'alice')!;
      expect(alice).to.have.property('scrypt').that.matches(/^scrypt\$/);
      expect(alice).not.to.have.property('password');
      const keys = decodeScramKeys(alice.scram!)!;
      expect(keys.iterations).to.equal(4096);
      const c = await imaps(s);
      const [greeting] = await c.expect(/^\* OK /);
      expect(greeting).to.contain(' AUTH=SCRAM-SHA-256').and.not.to.contain('CRAM-MD5');
      expect(await serverFirst(s, 'alice')).to.match(new RegExp(`^r=abc[^,]+,s=${keys.salt.toString('base64').replace(/[+/]/g, '\\$&')},i=4096$`));
    });

    it('gives an unknown login a made-up salt that stays the same, as for a known one (no user enumeration)', async () => {
      const s = await start();
      const a = await serverFirst(s, 'nobody');
      const b = await serverFirst(s, 'nobody');
      const salt = (t: string): string => /,s=([^,]+),i=4096$/.exec(t)![1]!;
      expect(salt(a)).to.equal(salt(b));
      expect(Buffer.from(salt(a), 'base64')).to.have.length(16);
      expect(salt(a)).not.to.equal(salt(await serverFirst(s, 'nobody2')));
    });

    it('does not offer SCRAM-SHA-256 while a user written by an earlier version has no keys; setting the password again makes them', async () => {
      await (await start(['alice:pencil@example.com', 'bob:secret@example.com'])).stop();
      server = undefined;
      const usersFile = path.join(dir, 'store', 'users.json');
      const file = JSON.parse(await readFile(usersFile, 'utf8')) as { users: { username: string; scram?: string }[] };
      for (const u of file.users) if (u.username === 'bob') delete u.scram;
      await writeFile(usersFile, JSON.stringify(file));
      const s = (server = await startMailServer({ protocols: ['imaps'], store: `maildir:${path.join(dir, 'store')}` }));
      const before = await imaps(s);
      expect((await before.expect(/^\* OK /))[0]).not.to.contain('SCRAM-SHA-256');
      await s.addUser('bob:secret@example.com');
      const after = await imaps(s);
      expect((await after.expect(/^\* OK /))[0]).to.contain(' AUTH=SCRAM-SHA-256');
    });

    describe('real clients', () => {
      const tool = async (ctx: Mocha.Context, command: string, args: readonly string[], input?: string): Promise<ToolRun> => {
        await mkdir(path.join(dir, 'home'), { recursive: true });
        const run = await runTool(command, args, { input, env: { HOME: path.join(dir, 'home') } });
        if (run === undefined) ctx.skip(); // .ci/run installs msmtp and isync
        return run!;
      };

      it('msmtp submits with SCRAM-SHA-256 from stored keys (and checks our signature); a wrong password gets 535 5.7.8', async function () {
        const s = await start();
        await writeFile(path.join(dir, 'ca.pem'), s.ca);
        const args = (password: string): string[] => ['--host=localhost', `--port=${s.ports.smtps}`, '--tls=on', '--tls-starttls=off', `--tls-trust-file=${path.join(dir, 'ca.pem')}`, '--auth=scram-sha-256', '--user=alice', `--passwordeval=echo ${password}`, '--from=alice@example.com', 'alice@example.com'];
        const ok = await tool(this, 'msmtp', args('pencil'), 'Subject: stored keys\n\nhi\n');
        expect(ok.code, ok.stderr).to.equal(0);
        expect((await s.waitForMessages(1))[0]!.subject).to.equal('stored keys');
        const wrong = await tool(this, 'msmtp', args('nope'), 'Subject: no\n\nhi\n');
        expect(wrong.code).to.equal(77);
        expect(wrong.stderr).to.contain('535 5.7.8 Authentication credentials invalid');
      });

      it('mbsync picks SCRAM-SHA-256 by itself against the Maildir store and syncs over IMAPS', async function () {
        const s = await start();
        await writeFile(path.join(dir, 'ca.pem'), s.ca);
        const rc = await mbsyncInboxConfig(dir, s.ports.imaps!, 'pencil', path.join(dir, 'ca.pem'));
        const run = await tool(this, 'mbsync', ['-V', '-c', rc, '-a']);
        expect(run.code, run.stderr).to.equal(0);
        expect(run.stdout + run.stderr).to.contain('Authenticating with SASL mechanism SCRAM-SHA-256');
      });
    });
  });
});
