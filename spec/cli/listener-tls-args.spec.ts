/** `VALUE@LISTENER` on the TLS flags: one listener's own TLS settings from the command line. */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseCliArgs, UsageError } from '../../lib/cli/cli-args.js';
import type { ServerSecurityOptions } from '../../lib/core/server-security.js';
import { SslProtocols } from '../../lib/core/ssl-protocols.js';
import { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import tls from 'node:tls';
import { generateServerCertificate, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { LineClient } from '../support/line-client.js';
import { hasOpenssl, sClient } from '../support/s-client.js';
import { testCertificates } from '../support/certs.js';
import { runPostern, startPostern, type PosternProcess } from './cli-process.js';

describe('cli: TLS flags for one listener (VALUE@LISTENER)', function () {
  this.timeout(30_000);
  let certs: DevCertificates;
  let dir: string;
  const running: PosternProcess[] = [];
  const clients: LineClient[] = [];
  const file = (name: string): string => path.join(dir, name);

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-cli-tls-'));
    await writeFile(file('server.pem'), certs.server.cert);
    await writeFile(file('server-key.pem'), certs.server.key);
    await writeFile(file('other.pem'), certs.wrongHostServer.cert);
    await writeFile(file('other-key.pem'), certs.wrongHostServer.key);
    await writeFile(file('ca.pem'), certs.ca.cert);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
  });

  const security = (argv: string[], section: 'smtp' | 'pop3' | 'imap', listener: string): ServerSecurityOptions | undefined =>
    ((parseCliArgs(argv).config[section] || {}) as Record<string, { security?: ServerSecurityOptions } | undefined>)[listener]?.security;

  it('puts a targeted flag on that listener only and keeps the untargeted ones shared', () => {
    const argv = ['--ca', file('ca.pem'), '--client-cert', 'require@imaps', '--tls-min', '1.3@smtps', '--cert', `${file('other.pem')}@pop3s`, '--key', `${file('other-key.pem')}@pop3s`];
    const config = parseCliArgs(argv).config;
    expect(config.tls).to.include({ requestClientCertificate: false, requireClientCertificate: false, trustedCertificates: certs.ca.cert });
    expect(security(argv, 'imap', 'imaps')).to.deep.equal({ requestClientCertificate: true, requireClientCertificate: true });
    expect(security(argv, 'smtp', 'smtps')).to.deep.equal({ protocols: SslProtocols.Tls13 });
    expect(security(argv, 'pop3', 'pop3s')).to.deep.equal({ certificate: { cert: certs.wrongHostServer.cert, key: certs.wrongHostServer.key, passphrase: undefined } });
    expect(security(argv, 'imap', 'imap')).to.equal(undefined);
    expect(security(argv, 'smtp', 'smtp')).to.equal(undefined);
  });

  it('turns a shared client-certificate request off on one listener with none@LISTENER, and takes --ca for one listener', () => {
    const argv = ['--ca', file('ca.pem'), '--client-cert', 'request', '--client-cert', 'none@smtp'];
    expect(parseCliArgs(argv).config.tls).to.include({ requestClientCertificate: true });
    expect(security(argv, 'smtp', 'smtp')).to.deep.equal({ requestClientCertificate: false, requireClientCertificate: false });
    expect(security(['--client-cert', 'request@pop3', '--ca', `${file('ca.pem')}@pop3`], 'pop3', 'pop3')).to.deep.equal({
      trustedCertificates: certs.ca.cert,
      requestClientCertificate: true,
      requireClientCertificate: false,
    });
    expect(parseCliArgs(['--client-cert', 'request@pop3', '--ca', `${file('ca.pem')}@pop3`]).config.tls?.trustedCertificates).to.equal(undefined);
  });

  it('takes a client certificate asked for on one listener as enough for --cert-login', () => {
    expect(parseCliArgs(['--ca', file('ca.pem'), '--client-cert', 'require@imaps', '--cert-login', 'cn']).config.certLogin).to.equal('cn');
    expect(() => parseCliArgs(['--ca', file('ca.pem'), '--client-cert', 'none@imaps', '--cert-login', 'cn'])).to.throw(UsageError, /^--cert-login needs --client-cert/);
  });

  it('reads a value ending in a bare @ as untargeted, so values may contain @', () => {
    expect(() => parseCliArgs(['--cert', `${file('server.pem')}`, '--key', file('server-key.pem'), '--passphrase', 'p@ss@'])).to.not.throw();
    const tls = parseCliArgs(['--cert', file('server.pem'), '--key', file('server-key.pem'), '--passphrase', 'p@ss@']).config.tls;
    expect(tls?.certificate).to.include({ passphrase: 'p@ss' });
  });

  it('refuses unknown, non-TLS and not started listeners, a flag given twice for one target, and incomplete pairs', () => {
    const cases: Array<[string[], string]> = [
      [['--client-cert', 'require@imapz', '--ca', 'x'], '--client-cert require@imapz: unknown listener "imapz" (use smtp, smtps, pop3, pop3s, imap, imaps)'],
      [['--tls-min', '1.3@http'], '--tls-min 1.3@http: unknown listener "http" (use smtp, smtps, pop3, pop3s, imap, imaps)'],
      [['--only', 'smtp,smtps', '--client-cert', 'require@imaps'], '--client-cert require@imaps: imaps is not started (see --only)'],
      [['--tls-min', '1.3@smtps', '--tls-min', '1.2@smtps'], '--tls-min given twice for smtps'],
      [['--tls-min', '1.3', '--tls-min', '1.2'], '--tls-min given twice'],
      [['--client-cert', 'require@imaps'], '--client-cert require@imaps needs --ca FILE or --ca FILE@imaps (the CA that signs client certificates)'],
      [['--client-cert', 'sometimes@imaps', '--ca', file('ca.pem')], '--client-cert@imaps: expected request, require or none, got "sometimes"'],
      [['--cert', 'a.pem@smtps'], '--cert@smtps and --key@smtps go together'],
      [['--tls-min', '1.1@imaps'], '--tls-min@imaps: expected 1.2 or 1.3, got "1.1"'],
      [['--ca', '/nonexistent/ca.pem@imaps'], '--ca@imaps: cannot read /nonexistent/ca.pem (ENOENT)'],
      [['--tls-groups', 'X25519:P-999@smtps'], '--tls-groups@smtps: OpenSSL does not know the group "P-999" (expected names such as X25519, P-256, P-384, P-521, X448, ffdhe2048)'],
      [['--tls-groups', 'X25519:'], '--tls-groups: "X25519:" has an empty name (expected e.g. X25519:P-256:P-384)'],
      [['--tls-alpn', 'imap,@imaps'], '--tls-alpn@imaps: "" is not a valid ALPN protocol id (1 to 255 printable ASCII characters, no space or comma; e.g. imap)'],
      [['--tls-alpn', 'http 1.1'], '--tls-alpn: "http 1.1" is not a valid ALPN protocol id (1 to 255 printable ASCII characters, no space or comma; e.g. imap)'],
    ];
    for (const [argv, message] of cases) expect(() => parseCliArgs(argv), argv.join(' ')).to.throw(UsageError).with.property('message', message);
  });

  it('asks for a client certificate on imaps only with --client-cert require@imaps (postern process, s_client)', async function () {
    if (!(await hasOpenssl())) this.skip(); // `openssl` is installed by .ci/run; pending only on a machine without it
    const ports = ['smtp', 'imaps'].flatMap((n) => [`--${n}-port`, '0']);
    const p = startPostern([...ports, '--only', 'smtp,imaps', '--cert', file('server.pem'), '--key', file('server-key.pem'), '--ca', file('ca.pem'), '--client-cert', 'require@imaps']);
    running.push(p);
    await p.ready(2);
    const imaps = await sClient(p.ports.imaps!, ['-CAfile', file('ca.pem')]);
    const smtp = await sClient(p.ports.smtp!, ['-starttls', 'smtp', '-CAfile', file('ca.pem')]);
    expect(imaps.certificateRequested, 'imaps').to.equal(true);
    expect(smtp.stdout).to.match(/Handshake \[length [0-9a-f]+\], Finished/);
    expect(smtp.certificateRequested, 'smtp').to.equal(false);
    // And the policy holds: no certificate, no IMAP session; the dev client certificate gets one.
    const without = await LineClient.connect(p.ports.imaps!, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
    clients.push(without);
    await without.closed();
    expect(without.pending).to.equal('');
    const withCert = await LineClient.connect(p.ports.imaps!, { tls: { ca: certs.ca.cert, servername: 'localhost', ...certs.client } });
    clients.push(withCert);
    expect(await withCert.readLine()).to.match(/^\* OK /);
  });

  it('takes --tls-groups for all listeners or one: a client offering only P-521 gets through on that one (postern process)', async () => {
    expect(parseCliArgs(['--tls-groups', 'X25519:P-256']).config.tls).to.include({ groups: 'X25519:P-256' });
    expect(security(['--tls-groups', 'P-521:X25519@smtps'], 'smtp', 'smtps')).to.deep.equal({ groups: 'P-521:X25519' });
    const ports = ['smtps', 'imaps'].flatMap((n) => [`--${n}-port`, '0']);
    const p = startPostern([...ports, '--only', 'smtps,imaps', '--cert', file('server.pem'), '--key', file('server-key.pem'), '--tls-groups', 'X25519:P-256:P-384:P-521@smtps']);
    running.push(p);
    await p.ready(2);
    const trust = { ca: certs.ca.cert, servername: 'localhost', ecdhCurve: 'P-521' };
    const smtps = await LineClient.connect(p.ports.smtps!, { tls: trust });
    clients.push(smtps);
    expect(await smtps.readLine()).to.match(/^220 /);
    const refused = await LineClient.connect(p.ports.imaps!, { tls: trust }).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused, 'imaps keeps the default groups').to.equal('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
  });

  it('takes --tls-alpn LIST|none for all listeners or one: none@imaps lets a browser-like offer through there only (postern process)', async () => {
    expect(parseCliArgs(['--tls-alpn', 'imap,x-mine']).config.tls).to.deep.include({ alpnProtocols: ['imap', 'x-mine'] });
    expect(parseCliArgs(['--tls-alpn', 'none']).config.tls).to.deep.include({ alpnProtocols: false });
    expect(security(['--tls-alpn', 'none@imaps'], 'imap', 'imaps')).to.deep.equal({ alpnProtocols: false });
    const ports = ['smtps', 'imaps'].flatMap((n) => [`--${n}-port`, '0']);
    const p = startPostern([...ports, '--only', 'smtps,imaps', '--cert', file('server.pem'), '--key', file('server-key.pem'), '--tls-alpn', 'none@imaps']);
    running.push(p);
    await p.ready(2);
    const browserLike = { ca: certs.ca.cert, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] };
    const imaps = await LineClient.connect(p.ports.imaps!, { tls: browserLike });
    clients.push(imaps);
    expect(await imaps.readLine()).to.match(/^\* OK /);
    expect((imaps.raw as tls.TLSSocket).alpnProtocol).to.equal(false);
    const refused = await LineClient.connect(p.ports.smtps!, { tls: browserLike }).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused, 'smtps keeps strict ALPN').to.equal('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
  });

  it('checks a STARTTLS listener\'s own certificate at start: a key that does not match stops the start (exit 2)', async () => {
    const ports = ['smtp', 'imaps'].flatMap((n) => [`--${n}-port`, '0']);
    const r = await runPostern([...ports, '--only', 'smtp,imaps', '--cert', `${file('other.pem')}@smtp`, '--key', `${file('server-key.pem')}@smtp`]);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.not.match(/ready/);
    expect(r.stderr).to.match(/^postern: error: .*(key|match)/im);
  });

  describe('--cert-dir DIR', () => {
    it('puts a certificate directory in the shared or one listener\'s settings, with --passphrase for its encrypted files', async () => {
      const certDir = file('dir');
      await mkdir(certDir, { recursive: true });
      expect(parseCliArgs(['--cert-dir', certDir]).config.tls?.certificateStore).to.deep.equal({ directory: certDir });
      expect(parseCliArgs(['--cert-dir', certDir, '--passphrase', 'pw']).config.tls?.certificateStore).to.deep.equal({ directory: certDir, passphrase: 'pw' });
      expect(security(['--cert-dir', `${certDir}@smtps`], 'smtp', 'smtps')).to.deep.equal({ certificateStore: { directory: certDir } });
      expect(parseCliArgs(['--cert-dir', `${certDir}@smtps`]).config.tls?.certificateStore).to.equal(undefined);
    });

    it('refuses a directory that does not exist or is a file', () => {
      expect(() => parseCliArgs(['--cert-dir', file('nope')])).to.throw(UsageError).with.property('message', `--cert-dir: cannot read ${file('nope')} (ENOENT)`);
      expect(() => parseCliArgs(['--cert-dir', file('ca.pem')])).to.throw(UsageError).with.property('message', `--cert-dir: ${file('ca.pem')} is not a directory`);
      expect(() => parseCliArgs(['--cert-dir', `${file('nope')}@imaps`])).to.throw(UsageError).with.property('message', `--cert-dir@imaps: cannot read ${file('nope')} (ENOENT)`);
    });

    it('serves the certificate for the SNI name from the directory and --cert for other names (postern process)', async () => {
      const certDir = file('sni');
      await mkdir(certDir, { recursive: true });
      const mail = await generateServerCertificate(certs.ca, ['mail.example.test']);
      await writeFile(path.join(certDir, 'mail.pem'), mail.cert + mail.key);
      const p = startPostern(['--smtps-port', '0', '--only', 'smtps', '--cert', file('server.pem'), '--key', file('server-key.pem'), '--cert-dir', certDir]);
      running.push(p);
      await p.ready(1);
      const served = (servername: string): Promise<string> =>
        new Promise((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: p.ports.smtps!, servername, ca: certs.ca.cert }, () => {
            resolve(s.getPeerCertificate().fingerprint256);
            s.destroy();
          });
          s.on('error', reject);
        });
      expect(await served('mail.example.test')).to.equal(new X509Certificate(mail.cert).fingerprint256);
      expect(await served('localhost')).to.equal(new X509Certificate(certs.server.cert).fingerprint256);
    });
  });
});
