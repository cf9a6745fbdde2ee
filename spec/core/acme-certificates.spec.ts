import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { AcmeCertificateManager, type AcmeOptions } from '../../lib/core/acme-certificates.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { LineClient } from '../support/line-client.js';
import { freePort, hasPebble, startPebble, type PebbleServer } from '../support/pebble.js';
import { runPostern, startPostern, type PosternProcess } from '../cli/cli-process.js';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

const log = createLogger({ silent: true });
const DOMAIN = 'mail.postern.test';

/** The leaf certificate a fresh TLS client is shown for `servername`, and whether it verified against `ca`. */
function handshake(port: number, servername: string, ca?: string): Promise<{ cert: X509Certificate; authorized: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.destroy();
      if (!peer) return reject(new Error('no peer certificate'));
      resolve({ cert: peer, authorized: socket.authorized, error: socket.authorizationError?.toString() });
    });
    socket.on('error', reject);
  });
}

describe('core: certificates from an ACME CA (RFC 8555) — Pebble on loopback', function () {
  this.timeout(60_000);
  let pebble: PebbleServer | undefined;
  let server: TcpServer | undefined;
  let security: ServerSecurity;
  let port: number;
  let stateDir: string;
  const managers: AcmeCertificateManager[] = [];
  const clients: LineClient[] = [];

  before(async function () {
    if (!(await hasPebble())) {
      this.skip(); // pending, never passed: install the Debian package `pebble` (.ci/run does)
    }
    security = new ServerSecurity({ selfSignedHosts: [DOMAIN] });
    server = new TcpServer(new NoteHandler(security), { port: 0, security }, log);
    ({ port } = await server.start());
    pebble = await startPebble({ tlsPort: port });
    stateDir = await mkdtemp(join(tmpdir(), 'postern-acme-'));
  });

  after(async () => {
    for (const manager of managers) manager.stop();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server?.close();
    await pebble?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const options = (overrides: Partial<AcmeOptions> = {}): AcmeOptions => ({
    directoryUrl: pebble!.directoryUrl,
    directoryCa: pebble!.directoryCa,
    email: 'postmaster@postern.test',
    domains: [DOMAIN],
    stateDir,
    ...overrides,
  });

  it('answers TLS-ALPN-01 on the implicit-TLS listener, installs the certificate for new handshakes and keeps live sessions', async () => {
    const selfSigned = security.fingerprint256;
    const live = await LineClient.connect(port, { tls: { rejectUnauthorized: false, servername: DOMAIN } });
    clients.push(live);
    expect(await live.readLine()).to.equal('+ NOTE ready');

    const manager = new AcmeCertificateManager(options(), security, log);
    managers.push(manager);
    const issued = await manager.start();

    expect(issued.subjectAltName).to.equal(`DNS:${DOMAIN}`);
    expect(security.fingerprint256).to.equal(issued.fingerprint256);
    expect(security.fingerprint256).not.to.equal(selfSigned);
    const seen = await handshake(port, DOMAIN, await pebble!.root());
    expect(seen.cert.fingerprint256).to.equal(issued.fingerprint256);
    expect(seen.authorized, `chain to Pebble's root: ${seen.error}`).to.equal(true);
    expect(seen.cert.issuer).to.match(/Pebble Intermediate/);

    live.send('ECHO still here\r\n');
    expect(await live.readLine(), 'the session that started before the swap goes on').to.equal('+ still here');

    expect((await stat(join(stateDir, 'key.pem'))).mode & 0o777).to.equal(0o600);
    expect((await stat(join(stateDir, 'account-key.pem'))).mode & 0o777).to.equal(0o600);
  });

  it('uses the stored certificate after a restart without asking the CA', async () => {
    const restarted = new ServerSecurity({ selfSignedHosts: [DOMAIN] });
    await restarted.prepare();
    const closedPort = await freePort();
    const manager = new AcmeCertificateManager(options({ directoryUrl: `https://127.0.0.1:${closedPort}/dir` }), restarted, log);
    managers.push(manager);
    const cert = await manager.start();
    expect(restarted.fingerprint256).to.equal(cert.fingerprint256);
    expect(cert.fingerprint256).to.equal(security.fingerprint256);
  });

  it("reports the CA's refusal and keeps serving the certificate it had", async () => {
    const other = new ServerSecurity({ selfSignedHosts: ['localhost'] });
    await other.prepare();
    const before = other.fingerprint256;
    const emptyState = await mkdtemp(join(tmpdir(), 'postern-acme-'));
    try {
      // Only HTTP-01, and nothing answers on Pebble's HTTP validation port: the CA refuses the authorization.
      const manager = new AcmeCertificateManager(options({ stateDir: emptyState, domains: ['refused.postern.test'], challenges: ['http-01'] }), other, log);
      managers.push(manager);
      let failure: unknown;
      await manager.start().catch((err: unknown) => {
        failure = err;
      });
      manager.stop();
      expect(failure).to.be.instanceOf(Error);
      expect((failure as Error).message).to.match(/connection refused|urn:ietf:params:acme:error:connection/i);
      expect(other.fingerprint256).to.equal(before);
    } finally {
      await rm(emptyState, { recursive: true, force: true });
    }
  });
});

/** Resolves once the process has logged `text` on stderr (rejects after 20 s or when it exits). */
function logged(p: PosternProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`not logged within 20 s: ${text}\n${p.stderr}`)), 20_000);
    const check = (): void => {
      if (p.stderr.includes(text)) finish();
    };
    let done = false;
    const onData = (): void => {
      setImmediate(check); // after cli-process's own listener has appended the chunk
    };
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      p.child.stderr?.off('data', onData);
      if (err) reject(err);
      else resolve();
    };
    p.child.stderr?.on('data', onData);
    void p.exited().then((code) => finish(new Error(`postern exited with ${code}: ${p.stderr}`)));
    check();
  });
}

describe('cli: postern --acme-* against Pebble, checked by Python imaplib', function () {
  this.timeout(60_000);
  let pebble: PebbleServer | undefined;
  let postern: PosternProcess | undefined;
  let dir: string;

  before(async function () {
    if (!(await hasPebble())) this.skip(); // pending, never passed: install the Debian package `pebble` (.ci/run does)
    dir = await mkdtemp(join(tmpdir(), 'postern-acme-cli-'));
  });

  after(async () => {
    await postern?.stop();
    await pebble?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts on a generated certificate, then serves IMAPS with the certificate the CA issued', async () => {
    const port = await freePort();
    pebble = await startPebble({ tlsPort: port });
    await writeFile(join(dir, 'pebble-https-ca.pem'), pebble.directoryCa);
    postern = startPostern([
      '--only', 'imaps', '--imaps-port', String(port), '--user', 'alice:pw@postern.test', '--log-level', 'info',
      '--acme-directory', pebble.directoryUrl, '--acme-email', 'postmaster@postern.test', '--acme-domain', DOMAIN,
      '--acme-state', join(dir, 'state'), '--acme-ca', join(dir, 'pebble-https-ca.pem'),
    ]);
    await postern.ready(1);
    await logged(postern, 'acme certificate installed');
    await writeFile(join(dir, 'pebble-root.pem'), await pebble.root());
    // A real client that verifies the chain and the name: mail.postern.test resolves nowhere, so connect to
    // 127.0.0.1 and give the name as SNI and for the check.
    const script = [
      'import imaplib, socket, ssl, sys',
      'ctx = ssl.create_default_context(cafile=sys.argv[1])',
      'class C(imaplib.IMAP4_SSL):',
      '    def _create_socket(self, timeout):',
      '        return ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout), server_hostname=sys.argv[3])',
      'c = C(sys.argv[3], int(sys.argv[2]), ssl_context=ctx)',
      'print(c.login("alice", "pw")[0])',
      'print(c.sock.getpeercert()["issuer"])',
      'c.logout()',
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) =>
      execFile('python3', ['-c', script, join(dir, 'pebble-root.pem'), String(port), DOMAIN], { timeout: 15_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    expect(out).to.match(/^OK$/m);
    expect(out).to.match(/Pebble Intermediate/);
  });

  it('refuses --acme-* together with --cert, and an incomplete set, before listening', async () => {
    const incomplete = await runPostern(['--acme-directory', 'https://127.0.0.1:1/dir']);
    expect(incomplete.code).to.equal(2);
    expect(incomplete.stderr).to.equal('postern: error: --acme-directory, --acme-email and --acme-domain go together (see postern --help)\n');
    const both = await runPostern(['--acme-directory', 'https://127.0.0.1:1/dir', '--acme-email', 'a@b.test', '--acme-domain', 'b.test', '--cert', '/dev/null', '--key', '/dev/null']);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.equal('postern: error: use either --cert/--pfx or --acme-*, not both (see postern --help)\n');
  });
});
