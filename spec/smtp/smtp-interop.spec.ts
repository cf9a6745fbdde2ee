import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { startSmtp, storedTexts, type SmtpFixture } from './smtp-harness.js';

const run = promisify(execFile);

/** True when `cmd` can be executed. */
async function has(cmd: string, args: string[] = ['--version']): Promise<boolean> {
  try {
    await run(cmd, args, { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

describe('smtp: real clients', function () {
  this.timeout(30_000);
  let f: SmtpFixture;
  let dir: string;
  let caFile: string;
  let msgFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-smtp-'));
    caFile = join(dir, 'ca.pem');
    msgFile = join(dir, 'msg.txt');
    await writeFile(msgFile, 'From: alice@example.com\r\nTo: alice@example.com\r\nSubject: from curl\r\n\r\nhello from curl\r\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    f = await startSmtp();
    await writeFile(caFile, f.certs.ca.cert);
  });
  afterEach(async () => {
    await f?.close();
  });

  describe('nodemailer', () => {
    it('sends over STARTTLS with requireTLS and AUTH', async () => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: f.port,
        secure: false,
        requireTLS: true,
        auth: { user: 'alice', pass: 'secret' },
        tls: { ca: f.certs.ca.cert, servername: 'localhost' },
      });
      try {
        const info = await t.sendMail({ from: 'alice@example.com', to: 'alice@example.com', subject: 'nodemailer starttls', text: 'hello ✓' });
        expect(info.accepted).to.deep.equal(['alice@example.com']);
      } finally {
        t.close();
      }
      const [raw] = await storedTexts(f.store);
      expect(raw).to.contain('Subject: nodemailer starttls');
      expect(raw).to.match(/with ESMTPSA \(TLSv1\.3:/);
    });

    it('sends over implicit TLS (secure: true)', async () => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: f.tlsPort,
        secure: true,
        auth: { user: 'alice', pass: 'secret' },
        tls: { ca: f.certs.ca.cert, servername: 'localhost' },
      });
      try {
        await t.sendMail({ from: 'alice@example.com', to: 'alice@example.com', subject: 'nodemailer implicit', text: 'x' });
      } finally {
        t.close();
      }
      expect((await storedTexts(f.store))[0]).to.contain('Subject: nodemailer implicit');
    });

    it('is refused with a bad password (535)', async () => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: f.tlsPort,
        secure: true,
        auth: { user: 'alice', pass: 'wrong' },
        tls: { ca: f.certs.ca.cert, servername: 'localhost' },
      });
      let err: (Error & { responseCode?: number }) | undefined;
      try {
        await t.sendMail({ from: 'alice@example.com', to: 'alice@example.com', subject: 'x', text: 'x' });
      } catch (e) {
        err = e as Error & { responseCode?: number };
      } finally {
        t.close();
      }
      expect(err?.responseCode).to.equal(535);
    });
  });

  describe('python smtplib', () => {
    before(async function () {
      if (!(await has('python3'))) this.skip();
    });

    const script = `
import smtplib, ssl, sys
port, tls_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
msg = "From: alice@example.com\\r\\nTo: alice@example.com\\r\\nSubject: from python %s\\r\\n\\r\\nhi\\r\\n"
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo()
    assert not s.has_extn("auth"), "AUTH offered before TLS"
    s.starttls(context=ctx)
    s.ehlo()
    assert not s.has_extn("starttls")
    s.login("alice", "secret")
    s.sendmail("alice@example.com", ["alice@example.com"], msg % "starttls")
with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=ctx, timeout=10) as s:
    s.login("alice", "secret")
    s.sendmail("alice@example.com", ["alice@example.com"], msg % "ssl")
try:
    with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=ctx, timeout=10) as s:
        s.login("alice", "bad")
    print("login-ok")
except smtplib.SMTPAuthenticationError as e:
    print("auth-refused", e.smtp_code)
`;

    it('uses starttls(), SMTP_SSL and login', async () => {
      const { stdout } = await run('python3', ['-c', script, String(f.port), String(f.tlsPort), caFile], { timeout: 20_000 });
      expect(stdout.trim()).to.equal('auth-refused 535');
      const texts = await storedTexts(f.store);
      expect(texts.map((t) => /Subject: (.*)\r\n/.exec(t)?.[1])).to.deep.equal(['from python starttls', 'from python ssl']);
    });
  });

  describe('curl', () => {
    before(async function () {
      if (!(await has('curl'))) this.skip();
    });
    const common = (url: string): string[] => [
      '--silent', '--show-error', '--url', url, '--cacert', caFile, '--mail-from', 'alice@example.com', '--mail-rcpt', 'alice@example.com',
      '--upload-file', msgFile, '--user', 'alice:secret', '--max-time', '15',
    ];

    it('sends over smtp:// with --ssl-reqd (STARTTLS)', async () => {
      await run('curl', [...common(`smtp://localhost:${f.port}`), '--ssl-reqd']);
      const [raw] = await storedTexts(f.store);
      expect(raw).to.contain('hello from curl');
      expect(raw).to.match(/with ESMTPSA \(TLS/);
    });

    it('sends over smtps:// (implicit TLS)', async () => {
      await run('curl', common(`smtps://localhost:${f.tlsPort}`));
      expect((await storedTexts(f.store))[0]).to.contain('hello from curl');
    });
  });

  describe('swaks', () => {
    before(async function () {
      if (!(await has('swaks', ['--version']))) this.skip();
    });
    const base = (port: number): string[] => [
      '--server', `127.0.0.1:${port}`, '--from', 'alice@example.com', '--to', 'alice@example.com',
      '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'secret', '--tls-ca-path', caFile, '--timeout', '15',
    ];

    it('sends with --tls (STARTTLS) and --auth', async () => {
      await run('swaks', [...base(f.port), '--tls']);
      expect(await storedTexts(f.store)).to.have.length(1);
    });

    it('sends with --tlsc (implicit TLS)', async () => {
      await run('swaks', [...base(f.tlsPort), '--tlsc']);
      expect(await storedTexts(f.store)).to.have.length(1);
    });
  });
});
