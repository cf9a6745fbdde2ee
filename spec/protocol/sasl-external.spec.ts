import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { generateClientCertificate, fingerprint256, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import type { CertificateLoginOption } from '../../lib/backends/certificate-login-mappers.js';
import { startAll, type AllProtocols } from '../support/all-protocols.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';
import { startMailServer } from '../../lib/test-double/start-mail-server.js';

/**
 * A client in Python's standard library (smtplib, imaplib, poplib) over implicit TLS with a client-certificate SSL
 * context: prints the offered mechanisms (`MECHS …`), then `OK …` or `ERR <exception> <text>` for AUTH EXTERNAL with
 * `authzid` (smtplib's and imaplib's own `authenticate`; poplib has no SASL API, so its command channel).
 */
const PYTHON_CLIENT = `
import re, sys, ssl, smtplib, imaplib, poplib, base64
proto, port, ca, cert, key, authz = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
if cert != '-':
    ctx.load_cert_chain(cert, key)
try:
    if proto == 'smtp':
        s = smtplib.SMTP_SSL('127.0.0.1', int(port), context=ctx, timeout=10)
        s.ehlo('client.test')
        print('MECHS', s.esmtp_features.get('auth', '').strip())
        code, resp = s.auth('EXTERNAL', lambda challenge=None: authz)
        print('OK', code, resp.decode())
        s.quit()
    elif proto == 'imap':
        m = imaplib.IMAP4_SSL('127.0.0.1', int(port), ssl_context=ctx, timeout=10)
        print('MECHS', ' '.join(c[5:] for c in m.capabilities if c.startswith('AUTH=')))
        typ, data = m.authenticate('EXTERNAL', lambda challenge: authz.encode())
        print('OK', typ, re.sub(r'\\[CAPABILITY [^\\]]*\\] ', '', data[0].decode()))
        m.logout()
    else:
        p = poplib.POP3_SSL('127.0.0.1', int(port), context=ctx, timeout=10)
        print('MECHS', ' '.join(p.capa().get('SASL', [])))
        print('OK', p._shortcmd('AUTH EXTERNAL ' + (base64.b64encode(authz.encode()).decode() or '=')).decode())
        p.quit()
except Exception as e:
    print('ERR', type(e).__name__, e)
`;

/** Runs a command with `input` on stdin; resolves its stdout (a nonzero exit is an error with stderr). */
function run(cmd: string, args: readonly string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err}${out}`))));
    child.stdin.end(input);
  });
}

function has(cmd: string, args: readonly string[]): Promise<boolean> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 10_000 }, (err) => resolve(!err)));
}

describe('protocol: SASL EXTERNAL from TLS client certificates (RFC 4422 appendix A)', function () {
  let certs: DevCertificates;
  let dir: string;
  /** CN=alice, SAN email alice@example.com, signed by the test CA. */
  let alice: PemPair;
  let all: AllProtocols | undefined;
  const file = (name: string): string => join(dir, name);

  before(async function () {
    if (!(await has('python3', ['--version']))) this.skip(); // python3 is in .ci/run's install list
    certs = await testCertificates();
    alice = await generateClientCertificate(certs.ca, 'alice', { emails: ['alice@example.com'] });
    dir = await mkdtemp(join(tmpdir(), 'postern-external-'));
    for (const [name, text] of Object.entries({
      'ca.pem': certs.ca.cert,
      'alice.pem': alice.cert,
      'alice-key.pem': alice.key,
      'expired.pem': certs.expiredClient.cert,
      'expired-key.pem': certs.expiredClient.key,
    }))
      await writeFile(file(name), text);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await all?.close();
    all = undefined;
  });

  async function start(certLogin: CertificateLoginOption | undefined, acceptAnyCertificate = false): Promise<AllProtocols> {
    all = await startAll({
      tls: {
        certificate: certs.server,
        requestClientCertificate: true,
        trustedCertificates: certs.ca.cert,
        ...(acceptAnyCertificate ? { validationCallback: () => true } : {}),
      },
      ...(certLogin !== undefined ? { certLogin } : {}),
    });
    return all;
  }

  /** The Python client's two lines for `proto` over implicit TLS, as `[mechanisms, result]`. */
  async function python(proto: 'smtp' | 'imap' | 'pop3', authzid = '', cert: string | null = 'alice'): Promise<[string, string]> {
    const out = await run('python3', [
      '-c',
      PYTHON_CLIENT,
      proto,
      String(all!.port(`${proto}s`)),
      file('ca.pem'),
      cert ? file(`${cert}.pem`) : '-',
      cert ? file(`${cert}-key.pem`) : '-',
      authzid,
    ]);
    const [mechs = '', result = ''] = out.trim().split('\n');
    return [mechs, result];
  }

  /** Who the last successful login logged in as. */
  function lastLogin(): unknown {
    return all!.log.records.filter((r) => r.message === 'auth succeeded').at(-1)?.meta.user;
  }

  it('logs Python smtplib, imaplib and poplib in as the certificate subject CN (--cert-login cn)', async () => {
    await start('cn');
    expect(await python('smtp')).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 EXTERNAL', 'OK 235 2.7.0 Authentication successful']);
    expect(lastLogin()).to.equal('alice');
    expect(await python('imap')).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 EXTERNAL', 'OK OK Logged in']);
    expect(await python('pop3')).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 EXTERNAL', 'OK +OK maildrop locked and ready, 0 messages (0 octets)']);
    expect(lastLogin()).to.equal('alice');
  });

  it('maps the SAN e-mail address (--cert-login email) to the user who owns it', async () => {
    await start('email');
    expect((await python('imap'))[1]).to.equal('OK OK Logged in');
    expect(lastLogin()).to.equal('alice');
  });

  it('refuses an authorization identity other than the mapped user with 535 5.7.8, NO [AUTHENTICATIONFAILED] and -ERR [AUTH]', async () => {
    await start('cn');
    expect((await python('smtp', 'bob'))[1]).to.equal("ERR SMTPAuthenticationError (535, b'5.7.8 Authentication credentials invalid')");
    expect((await python('imap', 'bob'))[1]).to.equal('ERR error [AUTHENTICATIONFAILED] Authentication failed');
    expect((await python('pop3', 'bob'))[1]).to.equal("ERR error_proto b'-ERR [AUTH] authentication failed'");
    expect(lastLogin()).to.equal(undefined);
    const failed = all!.log.records.filter((r) => r.message === 'auth failed').map((r) => [r.meta.user, r.meta.mechanism]);
    expect(failed).to.deep.equal([
      ['alice', 'EXTERNAL'],
      ['alice', 'EXTERNAL'],
      ['alice', 'EXTERNAL'],
    ]);
  });

  it('lets a fingerprint table (--cert-login FILE) map a certificate and allow it to act as another user', async () => {
    await writeFile(file('table'), `# fingerprint login [may act as…]\n\n${fingerprint256(alice.cert)}  bob  alice\n`);
    await start({ fingerprintFile: file('table') });
    expect((await python('imap'))[1]).to.equal('OK OK Logged in');
    expect(lastLogin()).to.equal('bob');
    expect((await python('smtp', 'alice'))[1]).to.equal('OK 235 2.7.0 Authentication successful');
    expect(lastLogin()).to.equal('alice');
    expect((await python('pop3', 'carol'))[1]).to.equal("ERR error_proto b'-ERR [AUTH] authentication failed'");
  });

  it('refuses a certificate the table does not list as a failed login', async () => {
    await writeFile(file('other-table'), `${'AB:'.repeat(31)}AB bob\n`);
    await start({ fingerprintFile: file('other-table') });
    expect((await python('smtp'))[1]).to.equal("ERR SMTPAuthenticationError (535, b'5.7.8 Authentication credentials invalid')");
  });

  it('does not offer or accept EXTERNAL without a client certificate, without a mapper, or with a certificate that failed validation', async () => {
    await start('cn');
    expect(await python('smtp', '', null)).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256', "ERR SMTPAuthenticationError (504, b'5.5.4 Unrecognized authentication type')"]);
    expect(await python('imap', '', null)).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256', 'ERR error [CANNOT] Unsupported authentication mechanism']);
    expect(await python('pop3', '', null)).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256', "ERR error_proto b'-ERR unsupported mechanism EXTERNAL'"]);
    await all!.close();
    await start(undefined);
    expect((await python('smtp'))[0]).to.equal('MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
    await all!.close();
    // The validation callback lets an expired certificate through, but its policy errors keep EXTERNAL away.
    await start('cn', true);
    expect(await python('imap', '', 'expired')).to.deep.equal(['MECHS PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256', 'ERR error [CANNOT] Unsupported authentication mechanism']);
  });

  it('works in the test double too (startMailServer({ certLogin }))', async () => {
    const server = await startMailServer({
      protocols: ['imaps'],
      users: ['alice:secret@example.com'],
      tls: { certificate: certs.server, requestClientCertificate: true, trustedCertificates: certs.ca.cert },
      ca: certs.ca.cert,
      certLogin: 'cn',
    });
    const c = await LineClient.connect(server.ports.imaps!, { tls: { ca: server.ca, servername: 'localhost', cert: alice.cert, key: alice.key } });
    try {
      await c.expect(/^\* OK .*AUTH=EXTERNAL/);
      expect((await c.command('a AUTHENTICATE EXTERNAL =', /^a /)).at(-1)).to.match(/^a OK \[CAPABILITY [^\]]+\] Logged in$/);
    } finally {
      await c.close();
      await server.stop();
    }
  });

  describe('openssl s_client on the STARTTLS ports', () => {
    before(async function () {
      if (!(await has('openssl', ['version']))) this.skip(); // openssl is in .ci/run's install list
    });

    /** Pipes `lines` (CRLF) to `openssl s_client -starttls proto` with alice's certificate; resolves the output. */
    function sClient(proto: 'smtp' | 'pop3' | 'imap', lines: readonly string[]): Promise<string> {
      const args = ['s_client', '-quiet', '-crlf', '-connect', `127.0.0.1:${all!.port(proto)}`, '-starttls', proto, '-CAfile', file('ca.pem')];
      return run('openssl', [...args, '-cert', file('alice.pem'), '-key', file('alice-key.pem'), '-verify_return_error'], lines.join('\n') + '\n');
    }

    it('offers EXTERNAL after STARTTLS and logs in with an empty initial response (=) in SMTP, POP3 and IMAP', async () => {
      await start('cn');
      const smtp = await sClient('smtp', ['EHLO client.test', 'AUTH EXTERNAL =', 'QUIT']);
      expect(smtp).to.contain('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 EXTERNAL\r\n');
      expect(smtp).to.contain('\r\n235 2.7.0 Authentication successful\r\n');
      const pop3 = await sClient('pop3', ['CAPA', 'AUTH EXTERNAL =', 'QUIT']);
      expect(pop3).to.contain('\r\nSASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 EXTERNAL\r\n');
      expect(pop3).to.match(/\r\n\+OK maildrop locked and ready, 0 messages \(0 octets\)\r\n/);
      const imap = await sClient('imap', ['a CAPABILITY', 'b AUTHENTICATE EXTERNAL =', 'c LOGOUT']);
      expect(imap).to.match(/\* CAPABILITY IMAP4rev1 .*AUTH=CRAM-MD5 AUTH=SCRAM-SHA-256 AUTH=EXTERNAL SASL-IR/);
      expect(imap).to.match(/\r\nb OK \[CAPABILITY IMAP4rev1 [^\]]*\] Logged in\r\n/);
    });

    it('answers EXTERNAL without an initial response with an empty challenge, then refuses a foreign authzid', async () => {
      await start('cn');
      const smtp = await sClient('smtp', ['EHLO client.test', 'AUTH EXTERNAL', Buffer.from('bob').toString('base64'), 'QUIT']);
      expect(smtp).to.contain('\r\n334 \r\n535 5.7.8 Authentication credentials invalid\r\n');
    });
  });
});
