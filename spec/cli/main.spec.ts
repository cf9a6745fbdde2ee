import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { toPkcs12, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import { runPostern, startPostern, type PosternProcess } from './cli-process.js';

describe('cli: the postern command', function () {
  this.timeout(30_000);
  let certs: DevCertificates;
  let dir: string;
  const running: PosternProcess[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-cli-'));
    await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
    await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
    await writeFile(path.join(dir, 'other-key.pem'), certs.client.key);
    await writeFile(path.join(dir, 'ca.pem'), certs.ca.cert);
    await writeFile(path.join(dir, 'server.pfx'), toPkcs12(certs.server, 'right'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
  });

  /** Every listener on port 0 so parallel runs never collide. */
  const ANY_PORTS = ['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps', 'http'].flatMap((n) => [`--${n}-port`, '0']);
  const TLS_FILES = (): string[] => ['--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem')];
  const trust = (): { ca: string; servername: string } => ({ ca: certs.ca.cert, servername: 'localhost' });

  function start(args: string[]): PosternProcess {
    const p = startPostern(args);
    running.push(p);
    return p;
  }

  async function connect(port: number, tls = false): Promise<LineClient> {
    const c = await LineClient.connect(port, tls ? { tls: trust() } : {});
    clients.push(c);
    return c;
  }

  it('prints its usage with --help and its version with --version, exit 0', async () => {
    const help = await runPostern(['--help']);
    expect(help.code).to.equal(0);
    for (const flag of ['--host', '--only', '--port-offset', '--user', '--auth-disabled', '--cert', '--pfx', '--ca', '--client-cert', '--tls-min', '--allow-insecure-auth', '--store', '--postmaster', '--log-level', '--log-format', '--http-port', '--http-auth', '--http-cors', '--chaos']) {
      expect(help.stdout).to.contain(flag);
    }
    const version = await runPostern(['--version']);
    expect(version.code).to.equal(0);
    expect(version.stdout).to.match(/^postern \d+\.\d+\.\d+/);
  });

  const badStarts: Array<[string, () => string[], RegExp]> = [
    ['an unknown flag', () => ['--bogus'], /Unknown option '--bogus'/],
    ['an unknown listener in --only', () => ['--only', 'smtp,ftp'], /--only: unknown listener "ftp"/],
    ['a bad port', () => ['--smtp-port', '70000'], /--smtp-port: 70000 is not a port/],
    ['a bad user spec', () => ['--user', 'nopassword'], /--user: bad user/],
    ['an unreadable certificate', () => ['--cert', path.join(dir, 'missing.pem'), '--key', path.join(dir, 'server-key.pem')], /--cert: cannot read .*ENOENT/],
    ['a key that does not match its certificate', () => [...ANY_PORTS, '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'other-key.pem')], /cannot use the certificate/],
    ['a wrong PFX passphrase', () => [...ANY_PORTS, '--pfx', path.join(dir, 'server.pfx'), '--passphrase', 'wrong'], /cannot use the certificate: .*\(is the passphrase right\?\)$/],
    ['--client-cert without --ca', () => ['--client-cert', 'require'], /--client-cert needs --ca/],
    ['an unsupported --tls-min', () => ['--tls-min', '1.0'], /--tls-min: expected 1\.2 or 1\.3/],
    ['an unknown store', () => ['--store', 'postgres:x'], /--store: expected memory, maildir:PATH or postgres:\/\/USER:PASSWORD@HOST:PORT\/DB/],
    ['a postmaster who is not a user', () => [...ANY_PORTS, ...TLS_FILES(), '--postmaster', 'nobody'], /postmaster "nobody" is not a user/],
    ['--chaos that is not JSON', () => ['--chaos', '{rules'], /--chaos: not valid JSON/],
    ['a bad --chaos rule', () => ['--chaos', '{"rules":[{"protocol":"pop3","stage":"login","reply":"550 no"}]}'], /--chaos: rules\[0\]\.reply: not a pop3 refusal/],
    ['--http-auth without a password', () => ['--http-auth', 'admin'], /--http-auth: expected USER:PASSWORD/],
  ];
  for (const [name, args, message] of badStarts) {
    it(`exits 2 with one clear line for ${name}`, async () => {
      const r = await runPostern(args());
      expect(r.code).to.equal(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).to.have.length(1);
      expect(lines[0]).to.match(/^postern: error: /).and.match(message);
      expect(r.stderr).to.not.match(/\n\s+at /); // no stack trace
    });
  }

  it('exits 2 naming the listener when its port is already in use, and starts nothing', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runPostern([...ANY_PORTS, '--imap-port', String(taken)]);
      expect(r.code).to.equal(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines[lines.length - 1]).to.equal(`postern: error: imap: 127.0.0.1:${taken} is already in use`);
      expect(r.stderr).to.not.contain('listener error'); // not logged as our bug
      expect(r.stdout).to.not.contain('ready on'); // listeners started before imap were closed again, never announced
      expect(r.stderr).to.not.match(/\n\s+at /);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('starts all seven listeners (six mail, one HTTP) with one ready line each, serves them, and stops cleanly on SIGTERM', async () => {
    const p = start([...ANY_PORTS, ...TLS_FILES(), '--user', 'alice:secret@example.test']);
    await p.ready(7);
    expect(Object.keys(p.ports).sort()).to.deep.equal(['http', 'imap', 'imaps', 'pop3', 'pop3s', 'smtp', 'smtps']);
    expect(p.stdout.find((l) => l.startsWith('postern: http '))).to.match(/\(HTTP API and web inbox\)$/);
    expect(p.stdout.find((l) => l.startsWith('postern: smtps '))).to.match(/\(implicit TLS\)$/);
    expect(p.stdout.find((l) => l.startsWith('postern: imap '))).to.match(/\(STARTTLS\)$/);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: p.ports.smtp, requireTLS: true, tls: trust(), auth: { user: 'alice', pass: 'secret' } });
    await transport.sendMail({ from: 'bob@remote.test', to: 'alice@example.test', subject: 'via cli', text: 'hello' });
    transport.close();
    const pop = await connect(p.ports.pop3s, true);
    await pop.readLine();
    await pop.command('USER alice', /^\+OK/);
    await pop.command('PASS secret', /^\+OK/);
    expect(await pop.command('STAT', /^\+OK/)).to.have.length(1).and.to.match(/^\+OK 1 \d+$/);
    await pop.command('QUIT', /^\+OK/);
    expect(await p.stop('SIGTERM')).to.equal(0);
    expect(p.stdout).to.include('postern: stopped');
  });

  it('starts only the listeners named in --only', async () => {
    const p = start([...ANY_PORTS, '--only', 'smtp,imaps']);
    await p.ready(2);
    expect(await p.stop('SIGTERM')).to.equal(0); // all output is in once it exited
    expect(Object.keys(p.ports).sort()).to.deep.equal(['imaps', 'smtp']);
    expect(p.stdout).to.include('postern: no users yet: add --user LOGIN:PASSWORD@DOMAIN, or --auth-disabled to accept any login and recipient');
    expect(p.stdout.some((l) => /self-signed certificate, SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(l))).to.equal(true);
  });

  it('keeps an accepted message across a SIGTERM and restart with --store maildir', async () => {
    const store = path.join(dir, 'maildir');
    const args = [...ANY_PORTS, '--only', 'smtp,pop3s', ...TLS_FILES(), '--user', 'alice:secret@example.test', '--store', `maildir:${store}`];
    const first = start(args);
    await first.ready(2);
    const smtp = await connect(first.ports.smtp);
    await smtp.expect(/^220 /);
    await smtp.command('EHLO client.test', /^250 /);
    smtp.send('MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
    await smtp.expect(/^354 /);
    smtp.send('Subject: durable\r\n\r\nstill here\r\n.\r\n');
    expect(await smtp.readLine()).to.match(/^250 /);
    expect(await first.stop('SIGTERM')).to.equal(0);
    const second = start(args);
    await second.ready(2);
    const pop = await connect(second.ports.pop3s, true);
    await pop.readLine();
    await pop.command('USER alice@example.test', /^\+OK/);
    await pop.command('PASS secret', /^\+OK/);
    const msg = await pop.command('RETR 1', /^\.$/);
    expect(msg.join('\n')).to.contain('Subject: durable').and.contain('still here');
  });

  it('requires client certificates with --ca and --client-cert require', async () => {
    const p = start([...ANY_PORTS, '--only', 'smtps', ...TLS_FILES(), '--ca', path.join(dir, 'ca.pem'), '--client-cert', 'require']);
    await p.ready(1);
    // TLS 1.3: the client without a certificate finishes its side of the handshake, then gets closed unanswered.
    const without = await LineClient.connect(p.ports.smtps, { tls: trust() });
    clients.push(without);
    await without.closed();
    expect(without.pending).to.equal('');
    // The listener keeps serving, and a client with the dev client certificate gets a session.
    const withCert = await LineClient.connect(p.ports.smtps, { tls: { ...trust(), ...certs.client } });
    clients.push(withCert);
    expect(await withCert.readLine()).to.match(/^220 /);
    expect(await p.stop('SIGTERM')).to.equal(0);
    expect(p.stderr).to.match(/ warn tls handshake failed .*reason=rejected-by-policy .*error=client certificate refused \(policy errors 1\)/);
  });

  it("gives every --user the special-use folders Drafts, Sent, Junk, Trash and Archive (RFC 6154)", async () => {
    const p = start([...ANY_PORTS, '--only', 'imaps', ...TLS_FILES(), '--user', 'alice:secret@example.test']);
    await p.ready(1);
    const c = await connect(p.ports.imaps, true);
    await c.expect(/^\* OK /);
    await c.command('a LOGIN alice secret', /^a OK/);
    expect(await c.command('b LIST (SPECIAL-USE) "" "*"', /^b /)).to.deep.equal([
      '* LIST (\\Archive) "/" "Archive"',
      '* LIST (\\Drafts) "/" "Drafts"',
      '* LIST (\\Junk) "/" "Junk"',
      '* LIST (\\Sent) "/" "Sent"',
      '* LIST (\\Trash) "/" "Trash"',
      'b OK LIST completed',
    ]);
  });

  it('starts with --chaos rules and serves the HTTP API behind --http-auth', async () => {
    const chaos = JSON.stringify({ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 chaos from the command line', times: 1 }] });
    const p = start([...ANY_PORTS, '--only', 'smtp,http', ...TLS_FILES(), '--user', 'alice:secret@example.test', '--chaos', chaos, '--http-auth', 'admin:pw']);
    await p.ready(2);
    const c = await connect(p.ports.smtp);
    await c.readLine();
    await c.command('EHLO client.test', /^250 /);
    await c.command('MAIL FROM:<a@b.test>', /^250 /);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.deep.equal(['451 4.3.0 chaos from the command line']);
    const base = `http://127.0.0.1:${p.ports.http}`;
    expect((await fetch(`${base}/api/v1/chaos`)).status).to.equal(401);
    const state = (await (await fetch(`${base}/api/v1/chaos`, { headers: { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` } })).json()) as { rules: Array<{ fired: number }> };
    expect(state.rules.map((r) => r.fired)).to.deep.equal([1]);
    expect(await p.stop('SIGTERM')).to.equal(0);
  });

  it('refuses TLS 1.2 clients with --tls-min 1.3', async () => {
    const p = start([...ANY_PORTS, '--only', 'imaps', ...TLS_FILES(), '--tls-min', '1.3']);
    await p.ready(1);
    const err = await LineClient.connect(p.ports.imaps, { tls: { ...trust(), maxVersion: 'TLSv1.2' } }).then(
      (c) => {
        clients.push(c);
        return undefined;
      },
      (e: Error) => e,
    );
    expect((err as NodeJS.ErrnoException | undefined)?.code).to.equal('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'); // alert 70
    const ok = await connect(p.ports.imaps, true);
    expect(await ok.readLine()).to.match(/^\* OK /);
    expect((ok.raw as import('node:tls').TLSSocket).getProtocol()).to.equal('TLSv1.3');
  });

  it('lets any login in with --auth-disabled, and AUTH before TLS only with --allow-insecure-auth', async () => {
    const p = start([...ANY_PORTS, '--only', 'smtp,imap', '--auth-disabled', '--allow-insecure-auth']);
    await p.ready(2);
    const imap = await connect(p.ports.imap);
    await imap.readLine();
    expect(await imap.command('a LOGIN anyone whatever', /^a /)).to.match(/^a OK/);
    const smtp = await connect(p.ports.smtp);
    await smtp.expect(/^220 /);
    const ehlo = await smtp.command('EHLO client.test', /^250 /);
    expect(ehlo.join('\n')).to.match(/AUTH .*PLAIN/);
    expect(await smtp.command(`AUTH PLAIN ${Buffer.from('\0anyone\0whatever').toString('base64')}`, /^\d{3} /)).to.deep.equal(['235 2.7.0 Authentication successful']);

    // Without --allow-insecure-auth, the same --auth-disabled server keeps logins behind TLS.
    const strict = start([...ANY_PORTS, '--only', 'smtp,imap', '--auth-disabled']);
    await strict.ready(2);
    const imap2 = await connect(strict.ports.imap);
    expect(await imap2.readLine()).to.match(/^\* OK \[CAPABILITY [^\]]*LOGINDISABLED/);
    expect(await imap2.command('a LOGIN anyone whatever', /^a /)).to.deep.equal(['a NO [PRIVACYREQUIRED] TLS required: use STARTTLS first']);
    const smtp2 = await connect(strict.ports.smtp);
    await smtp2.expect(/^220 /);
    const ehlo2 = await smtp2.command('EHLO client.test', /^250 /);
    expect(ehlo2.join('\n')).to.not.match(/AUTH/);
    expect(await smtp2.command(`AUTH PLAIN ${Buffer.from('\0anyone\0whatever').toString('base64')}`, /^\d{3} /)).to.deep.equal([
      '538 5.7.11 Encryption required for requested authentication mechanism',
    ]);
  });

  it('says goodbye to every live session on SIGTERM (421, -ERR [SYS/TEMP], * BYE) and exits 0', async () => {
    const p = start([...ANY_PORTS, ...TLS_FILES(), '--user', 'alice:secret@example.test']);
    await p.ready(6);
    const sessions: Array<[LineClient, string]> = [];
    for (const secure of [false, true]) {
      const smtp = await connect(p.ports[secure ? 'smtps' : 'smtp'], secure);
      await smtp.expect(/^220 /);
      await smtp.command('EHLO client.test', /^250 /);
      sessions.push([smtp, '421 4.3.2 Service shutting down, closing connection']);
      const pop = await connect(p.ports[secure ? 'pop3s' : 'pop3'], secure);
      await pop.readLine();
      if (secure) {
        await pop.command('USER alice', /^\+OK/); // one session in TRANSACTION, one in AUTHORIZATION
        await pop.command('PASS secret', /^\+OK/);
      }
      sessions.push([pop, '-ERR [SYS/TEMP] server shutting down']);
      const imap = await connect(p.ports[secure ? 'imaps' : 'imap'], secure);
      await imap.readLine();
      if (secure) await imap.command('a LOGIN alice secret', /^a OK/);
      sessions.push([imap, '* BYE Server shutting down']);
    }
    const exit = p.stop('SIGTERM');
    for (const [client, goodbye] of sessions) {
      expect(await client.readLine()).to.equal(goodbye);
      await client.closed();
      expect(client.pending).to.equal('');
    }
    expect(await exit).to.equal(0);
    expect(p.stdout).to.include('postern: stopped');
  });

  it('writes JSON log lines to stderr with --log-format json', async () => {
    const p = start([...ANY_PORTS, '--only', 'pop3', '--log-format', 'json', '--log-level', 'info']);
    await p.ready(1);
    expect(await p.stop('SIGINT')).to.equal(0);
    const lines = p.stderr.trim().split('\n');
    expect(lines.length).to.be.greaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l) as unknown, l).to.not.throw();
  });
});
