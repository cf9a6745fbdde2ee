/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677): the mechanism against RFC 7677 §3's example exchange and its refusals, then on
 * the wire of SMTP, POP3 and IMAP (the server signature as one more challenge before the success reply), and with the
 * real clients that speak it: msmtp and mpop (GNU SASL) and mbsync (Cyrus SASL, which picks it by itself).
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { SaslMalformedError, type SaslSessionInfo, type SaslStep } from '../../lib/protocol/sasl/sasl-mechanism.js';
import { scramSha256 } from '../../lib/protocol/sasl/scram-sha-256.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { mbsyncInboxConfig, runTool, type ToolRun } from '../support/tool.js';

const session: SaslSessionInfo = {
  peer: { id: 'c1', protocol: 'smtp', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security: { tls: true, policyErrors: SslPolicyErrors.None } },
  hostname: 'mx.test',
  supportsSharedSecrets: true,
};

/** RFC 7677 §3: user "user", password "pencil", with the example's server nonce and salt. */
const RFC7677 = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const exampleMechanism = (): ReturnType<typeof scramSha256> =>
  scramSha256({ serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', salt: () => Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') });

/** Runs the two client messages through a fresh exchange; the last step. */
async function exchange(first: string, final: string): Promise<SaslStep> {
  const server = exampleMechanism().start(session);
  const challenge = await server.next(Buffer.from(first));
  expect(challenge).to.have.property('challenge');
  return server.next(Buffer.from(final));
}

describe('sasl: SCRAM-SHA-256', function () {
  this.timeout(60_000);

  describe('the mechanism', () => {
    it("runs RFC 7677 §3's example: server-first, proof accepted for 'pencil', server signature v=6rriTRBi…", async () => {
      const server = exampleMechanism().start(session);
      const first = await server.next(Buffer.from(RFC7677.clientFirst));
      expect('challenge' in first && first.challenge.toString()).to.equal(RFC7677.serverFirst);
      const done = await server.next(Buffer.from(RFC7677.clientFinal));
      if (!('done' in done)) throw new Error('expected done');
      expect(done.done).to.include({ username: 'user', authzid: undefined });
      expect(done.successData?.(), 'nothing before the secret was checked').to.equal(undefined);
      expect(done.done.verifyWithSecret!('pencil')).to.equal(true);
      expect(done.successData!()!.toString()).to.equal(RFC7677.serverFinal);
    });

    it('refuses a wrong password and then has no server signature to send', async () => {
      const done = await exchange(RFC7677.clientFirst, RFC7677.clientFinal);
      if (!('done' in done)) throw new Error('expected done');
      expect(done.done.verifyWithSecret!('pencils')).to.equal(false);
      expect(done.successData!()).to.equal(undefined);
    });

    it('asks for the client-first message with an empty challenge when there was no initial response', async () => {
      const server = exampleMechanism().start(session);
      expect(await server.next(undefined)).to.deep.equal({ challenge: Buffer.alloc(0) });
      expect((await server.next(Buffer.from(RFC7677.clientFirst))) as { challenge: Buffer }).to.have.property('challenge');
    });

    it('decodes =2C and =3D in the username and takes an authorization identity', async () => {
      const server = exampleMechanism().start(session);
      await server.next(Buffer.from('n,a=boss=3D1,n=a=2Cb,r=abc'));
      const done = await server.next(Buffer.from(`c=${Buffer.from('n,a=boss=3D1,').toString('base64')},r=abc%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA`));
      expect('done' in done && done.done).to.deep.include({ username: 'a,b', authzid: 'boss=1' });
    });

    const malformed: Array<[string, string, string | undefined, string]> = [
      ['channel binding (p=)', 'p=tls-unique,,n=user,r=abc', undefined, 'SCRAM channel binding is not supported (no SCRAM-SHA-256-PLUS)'],
      ['a mandatory extension (m=)', 'n,,m=ext,n=user,r=abc', undefined, 'unsupported mandatory SCRAM extension'],
      ['no GS2 header', 'n=user,r=abc', undefined, 'malformed SCRAM client-first-message'],
      ['an empty username', 'n,,n=,r=abc', undefined, 'malformed SCRAM client-first-message'],
      ['a bare = in the username', 'n,,n=a=b,r=abc', undefined, 'malformed SCRAM username'],
      ['a nonce with a comma-free but empty value', 'n,,n=user,r=', undefined, 'malformed SCRAM client-first-message'],
      ['channel binding data other than the GS2 header', RFC7677.clientFirst, RFC7677.clientFinal.replace('c=biws', 'c=eSws'), 'SCRAM channel binding does not match the client-first-message'],
      ["a nonce other than the server's", RFC7677.clientFirst, RFC7677.clientFinal.replace('k0,p=', 'k1,p='), 'SCRAM nonce does not match'],
      ['no proof', RFC7677.clientFirst, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', 'malformed SCRAM client-final-message'],
    ];
    for (const [what, first, final, message] of malformed) {
      it(`refuses ${what} as malformed`, async () => {
        const server = exampleMechanism().start(session);
        const run = async (): Promise<void> => {
          await server.next(Buffer.from(first));
          if (final !== undefined) await server.next(Buffer.from(final));
        };
        const err = await run().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(SaslMalformedError).with.property('message', message);
      });
    }

    it('is offered only when the Authenticator knows secrets, and not when it accepts any credentials', () => {
      expect(exampleMechanism().isAvailable(session)).to.equal(true);
      expect(exampleMechanism().isAvailable({ ...session, supportsSharedSecrets: false })).to.equal(false);
      expect(exampleMechanism().isAvailable({ ...session, acceptsAnyCredentials: false })).to.equal(true);
      expect(exampleMechanism().isAvailable({ ...session, acceptsAnyCredentials: true })).to.equal(false);
    });
  });

  describe('on the wire', () => {
    let server: RunningMailServer;
    const clients: LineClient[] = [];
    beforeEach(async () => {
      server = await startMailServer({ users: ['alice:pencil@example.com'] });
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await server.stop();
    });
    const connect = async (name: 'smtps' | 'pop3s' | 'imaps'): Promise<LineClient> => {
      const c = await LineClient.connect(server.ports[name]!, { tls: { ca: server.ca, servername: 'localhost' } });
      clients.push(c);
      return c;
    };
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    const fromB64 = (line: string): string => Buffer.from(line.replace(/^(334|\+) ?/, ''), 'base64').toString();

    /** The client's final message for the server-first message `serverFirst` and the password, computed like a client. */
    async function clientFinal(first: string, serverFirst: string, password: string): Promise<string> {
      const { createHash, createHmac, pbkdf2Sync } = await import('node:crypto');
      const [r, s, i] = serverFirst.split(',').map((f) => f.slice(2));
      const salted = pbkdf2Sync(password, Buffer.from(s!, 'base64'), Number(i), 32, 'sha256');
      const clientKey = createHmac('sha256', salted).update('Client Key').digest();
      const withoutProof = `c=biws,r=${r}`;
      const authMessage = `${first.slice(3)},${serverFirst},${withoutProof}`;
      const signature = createHmac('sha256', createHash('sha256').update(clientKey).digest()).update(authMessage).digest();
      return `${withoutProof},p=${Buffer.from(clientKey.map((b, k) => b ^ signature[k]!)).toString('base64')}`;
    }

    it('SMTP: AUTH with initial response, 334 server-first, 334 v=… answered by an empty line, then 235', async () => {
      const c = await connect('smtps');
      await c.expect(/^220 /);
      expect(await c.command('EHLO client.test', /^250 /)).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
      const first = 'n,,n=alice,r=clientnonce1';
      const [serverFirstLine] = await c.command(`AUTH SCRAM-SHA-256 ${b64(first)}`, /^334 /);
      const serverFirst = fromB64(serverFirstLine!);
      expect(serverFirst).to.match(/^r=clientnonce1[^,]+,s=[A-Za-z0-9+/=]+,i=4096$/);
      const [finalLine] = await c.command(b64(await clientFinal(first, serverFirst, 'pencil')), /^334 /);
      expect(fromB64(finalLine!)).to.match(/^v=[A-Za-z0-9+/]{43}=$/);
      expect(await c.command('', /^235 /)).to.deep.equal(['235 2.7.0 Authentication successful']);
    });

    it('SMTP: a wrong password gets 535 5.7.8 and no server signature; "*" instead of the empty line cancels with 501 5.7.0', async () => {
      const c = await connect('smtps');
      await c.expect(/^220 /);
      await c.command('EHLO client.test', /^250 /);
      const first = 'n,,n=alice,r=n1';
      const [sf] = await c.command(`AUTH SCRAM-SHA-256 ${b64(first)}`, /^334 /);
      expect(await c.command(b64(await clientFinal(first, fromB64(sf!), 'wrong')), /^5/)).to.deep.equal(['535 5.7.8 Authentication credentials invalid']);
      const [sf2] = await c.command(`AUTH SCRAM-SHA-256 ${b64(first)}`, /^334 /);
      await c.command(b64(await clientFinal(first, fromB64(sf2!), 'pencil')), /^334 /);
      expect(await c.command('*', /^5/)).to.deep.equal(['501 5.7.0 Authentication cancelled']);
      // Not logged in by the cancelled exchange: AUTH is still allowed (503 5.5.1 once authenticated).
      expect(await c.command(`AUTH PLAIN ${b64('\0alice\0pencil')}`, /^\d/)).to.deep.equal(['235 2.7.0 Authentication successful']);
    });

    it('IMAP: AUTHENTICATE without initial response, the signature as "+ v=…", OK after the empty line', async () => {
      const c = await connect('imaps');
      await c.expect(/^\* OK /);
      expect((await c.command('a CAPABILITY', /^a /))[0]).to.contain(' AUTH=SCRAM-SHA-256');
      expect(await c.command('b AUTHENTICATE SCRAM-SHA-256', /^\+/)).to.deep.equal(['+ ']);
      const first = 'n,,n=alice,r=imapnonce';
      const [sf] = await c.command(b64(first), /^\+ /);
      const [v] = await c.command(b64(await clientFinal(first, fromB64(sf!), 'pencil')), /^\+ /);
      expect(fromB64(v!)).to.match(/^v=/);
      expect((await c.command('', /^b /)).at(-1)).to.match(/^b OK \[CAPABILITY .*\] Logged in$/);
    });

    it('POP3: AUTH with initial response; a non-empty answer to the signature is refused and nobody is logged in', async () => {
      const c = await connect('pop3s');
      await c.expect(/^\+OK /);
      const first = 'n,,n=alice,r=popnonce';
      const [sf] = await c.command(`AUTH SCRAM-SHA-256 ${b64(first)}`, /^\+ /);
      await c.command(b64(await clientFinal(first, fromB64(sf!), 'pencil')), /^\+ /);
      expect(await c.command(b64('unexpected'), /^-ERR/)).to.deep.equal(['-ERR expected an empty response to the final SASL data']);
      expect(await c.command('STAT', /^[+-]/)).to.deep.equal(['-ERR command not valid in this state']);
    });
  });

  describe('real clients', () => {
    let server: RunningMailServer;
    let dir: string;
    beforeEach(async () => {
      server = await startMailServer({ users: ['alice:pencil@example.com'] });
      dir = await mkdtemp(path.join(os.tmpdir(), 'postern-scram-'));
      await writeFile(path.join(dir, 'ca.pem'), server.ca);
      await mkdir(path.join(dir, 'home'));
    });
    afterEach(async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const tool = async (ctx: Mocha.Context, command: string, args: readonly string[], input?: string): Promise<ToolRun> => {
      const run = await runTool(command, args, { input, env: { HOME: path.join(dir, 'home') } });
      if (run === undefined) ctx.skip(); // .ci/run installs msmtp, mpop and isync
      return run!;
    };
    const common = (port: number, password: string): string[] => ['--host=localhost', `--port=${port}`, '--tls=on', '--tls-starttls=off', `--tls-trust-file=${path.join(dir, 'ca.pem')}`, '--auth=scram-sha-256', '--user=alice', `--passwordeval=echo ${password}`];

    it('is not offered with authDisabled (any password works, so none can be proved): msmtp picks another and logs in', async function () {
      const open = await startMailServer({ authDisabled: true });
      try {
        const c = await LineClient.connect(open.ports.smtps!, { tls: { ca: open.ca, servername: 'localhost' } });
        try {
          await c.expect(/^220 /);
          expect(await c.command('EHLO client.test', /^250 /)).to.include('250-AUTH PLAIN LOGIN CRAM-MD5');
        } finally {
          await c.close();
        }
        await writeFile(path.join(dir, 'open-ca.pem'), open.ca);
        const args = common(open.ports.smtps!, 'anything').map((a) => (a === '--auth=scram-sha-256' ? '--auth=on' : a.replace('ca.pem', 'open-ca.pem')));
        const run = await tool(this, 'msmtp', [...args, '--from=zed@example.com', 'zed@example.com'], 'Subject: open\n\nhi\n');
        expect(run.code, run.stderr).to.equal(0);
      } finally {
        await open.stop();
      }
    });

    it('msmtp submits with SCRAM-SHA-256 (and checks our signature); a wrong password gets 535 5.7.8', async function () {
      const ok = await tool(this, 'msmtp', [...common(server.ports.smtps!, 'pencil'), '--from=alice@example.com', 'alice@example.com'], 'Subject: scram\n\nhi\n');
      expect(ok.code, ok.stderr).to.equal(0);
      expect((await server.waitForMessages(1))[0]!.subject).to.equal('scram');
      const wrong = await tool(this, 'msmtp', [...common(server.ports.smtps!, 'nope'), '--from=alice@example.com', 'alice@example.com'], 'Subject: no\n\nhi\n');
      expect(wrong.code).to.equal(77);
      expect(wrong.stderr).to.contain('535 5.7.8 Authentication credentials invalid');
    });

    it('mpop retrieves with SCRAM-SHA-256 over POP3S', async function () {
      const mbox = path.join(dir, 'mbox');
      const run = await tool(this, 'mpop', [...common(server.ports.pop3s!, 'pencil'), `--delivery=mbox,${mbox}`, `--uidls-file=${path.join(dir, 'uidls')}`]);
      expect(run.code, run.stderr).to.equal(0);
    });

    it('mbsync picks SCRAM-SHA-256 by itself (Cyrus SASL) and syncs over IMAPS', async function () {
      const rc = await mbsyncInboxConfig(dir, server.ports.imaps!, 'pencil', path.join(dir, 'ca.pem'));
      const local = path.join(dir, 'mail');
      const run = await tool(this, 'mbsync', ['-V', '-c', rc, '-a']);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout + run.stderr).to.contain('Authenticating with SASL mechanism SCRAM-SHA-256');
      expect(await readdir(path.join(local, 'INBOX'))).to.include.members(['cur', 'new', 'tmp']);
    });
  });
});
