import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { ClientSecurity } from '../../lib/core/client-security.js';
import type { Connection } from '../../lib/core/connection.js';
import { buildOcspRequest, fetchOcspResponse, parseOcspResponse } from '../../lib/core/ocsp.js';
import { SslPolicyErrors, X509ChainStatusFlags } from '../../lib/core/policy-errors.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpClient } from '../../lib/core/tcp-client.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { TlsHandshakeError } from '../../lib/core/tls-errors.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { freePort } from '../support/pebble.js';

const log = createLogger({ silent: true });

function run(file: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    // A command that exits without reading its stdin makes the write fail with EPIPE: that is no test failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** `openssl x509` date for index.txt: YYMMDDHHMMSSZ. */
function indexDate(date: Date): string {
  return date.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

describe('core: OCSP stapling (RFC 6066 §8) with an openssl ocsp responder', function () {
  this.timeout(30_000);
  let dir: string;
  let responder: ChildProcess | undefined;
  let caPem: string;
  let goodLeaf: { cert: string; key: string };
  let revokedLeaf: { cert: string; key: string };
  const servers: TcpServer[] = [];
  const conns: Connection[] = [];

  /** A leaf for `name` signed by the test CA, naming the responder in its AIA extension. */
  async function issue(name: string, serial: string, ocspUrl: string): Promise<{ cert: string; key: string }> {
    const key = join(dir, `${name}-key.pem`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.pem`);
    const ext = join(dir, `${name}.ext`);
    await writeFile(ext, `subjectAltName=DNS:${name}\nauthorityInfoAccess=OCSP;URI:${ocspUrl}\nextendedKeyUsage=serverAuth\n`);
    let r = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    expect(r.code, r.stderr).to.equal(0);
    r = await run('openssl', ['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca-key.pem'), '-set_serial', `0x${serial}`, '-days', '2', '-extfile', ext, '-out', cert]);
    expect(r.code, r.stderr).to.equal(0);
    return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
  }

  before(async function () {
    const probe = await run('openssl', ['version']);
    if (probe.code !== 0) this.skip(); // pending, never passed: install openssl (.ci/run does)
    const certs = await testCertificates();
    caPem = certs.ca.cert;
    dir = await mkdtemp(join(tmpdir(), 'postern-ocsp-'));
    await writeFile(join(dir, 'ca.pem'), certs.ca.cert);
    await writeFile(join(dir, 'ca-key.pem'), certs.ca.key);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    goodLeaf = await issue('good.postern.test', '1001', url);
    revokedLeaf = await issue('revoked.postern.test', '1002', url);
    const expiry = indexDate(new Date(Date.now() + 2 * 86_400_000));
    const revokedAt = indexDate(new Date(Date.now() - 3_600_000));
    await writeFile(
      join(dir, 'index.txt'),
      `V\t${expiry}\t\t1001\tunknown\t/CN=good.postern.test\nR\t${expiry}\t${revokedAt}\t1002\tunknown\t/CN=revoked.postern.test\n`,
    );
    responder = spawn('openssl', ['ocsp', '-index', join(dir, 'index.txt'), '-port', String(port), '-rsigner', join(dir, 'ca.pem'), '-rkey', join(dir, 'ca-key.pem'), '-CA', join(dir, 'ca.pem'), '-nmin', '10'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${seen}`)), 10_000);
      const onData = (d: Buffer): void => {
        seen += d.toString();
        if (/waiting for OCSP client connections/i.test(seen)) {
          clearTimeout(timer);
          responder!.stdout!.resume();
          responder!.stderr!.resume();
          resolve();
        }
      };
      responder!.stdout!.on('data', onData);
      responder!.stderr!.on('data', onData);
      responder!.once('exit', (code) => reject(new Error(`openssl ocsp exited with ${code}: ${seen}`)));
    });
  });

  afterEach(async () => {
    for (const c of conns.splice(0)) c.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  after(async () => {
    if (responder && responder.exitCode === null) {
      const exited = new Promise((resolve) => responder!.once('exit', resolve));
      responder.kill('SIGTERM');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function serve(leaf: { cert: string; key: string }): Promise<{ port: number; security: ServerSecurity }> {
    const security = new ServerSecurity({ certificate: { cert: leaf.cert, key: leaf.key, chain: caPem } });
    const server = new TcpServer(new NoteHandler(security), { port: 0, security }, log);
    servers.push(server);
    const { port } = await server.start();
    await security.whenStapled();
    return { port, security };
  }

  it('staples a good response that openssl s_client -status reads and verifies', async () => {
    const { port, security } = await serve(goodLeaf);
    expect(security.stapledResponse, 'fetched before the first handshake').to.not.equal(undefined);
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'good.postern.test', '-status', '-CAfile', join(dir, 'ca.pem')], 'Q\n');
    expect(r.stdout).to.contain('OCSP Response Status: successful (0x0)');
    expect(r.stdout).to.contain('Cert Status: good');
    expect(r.stdout).to.contain('Serial Number: 1001');
    // The very bytes we staple, verified by openssl as a client would: signature, issuer and status.
    await writeFile(join(dir, 'stapled.der'), security.stapledResponse!);
    await writeFile(join(dir, 'good.pem'), goodLeaf.cert);
    const v = await run('openssl', ['ocsp', '-respin', join(dir, 'stapled.der'), '-CAfile', join(dir, 'ca.pem'), '-issuer', join(dir, 'ca.pem'), '-cert', join(dir, 'good.pem')]);
    expect(v.stderr).to.contain('Response verify OK');
    expect(v.stdout).to.contain(`${join(dir, 'good.pem')}: good`);
  });

  it('staples for a certificate served by SNI from a CertificateStore', async () => {
    const storeDir = join(dir, 'store');
    await mkdir(storeDir, { recursive: true });
    await writeFile(join(storeDir, 'ca.pem'), caPem);
    await writeFile(join(storeDir, 'good.pem'), goodLeaf.cert + goodLeaf.key);
    const certs = await testCertificates();
    const security = new ServerSecurity({ certificate: certs.server, certificateStore: { directory: storeDir, watch: false } });
    const server = new TcpServer(new NoteHandler(security), { port: 0, security }, log);
    servers.push(server);
    try {
      const { port } = await server.start();
      await security.whenStapled();
      const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'good.postern.test', '-status', '-CAfile', join(dir, 'ca.pem')], 'Q\n');
      expect(r.stdout).to.match(/subject=CN ?= ?good\.postern\.test/);
      expect(r.stdout).to.contain('Cert Status: good');
      expect(r.stdout).to.contain('Serial Number: 1001');
    } finally {
      security.close();
    }
  });

  it('lets a Postern client that requires a staple connect with no policy errors', async () => {
    const { port } = await serve(goodLeaf);
    const conn = await TcpClient.connect({
      host: '127.0.0.1',
      port,
      security: new ClientSecurity({ targetHost: 'good.postern.test', trustedCertificates: caPem, requireOcspStaple: true }),
    });
    conns.push(conn);
    expect(conn.security.tls).to.equal(true);
    expect(conn.security.policyErrors).to.equal(SslPolicyErrors.None);
  });

  it('does not staple a revoked certificate, and a client requiring a staple refuses it with RevocationStatusUnknown', async () => {
    const { port, security } = await serve(revokedLeaf);
    expect(security.stapledResponse).to.equal(undefined);
    let seen: X509ChainStatusFlags[] = [];
    const err = await TcpClient.connect({
      host: '127.0.0.1',
      port,
      security: new ClientSecurity({
        targetHost: 'revoked.postern.test',
        trustedCertificates: caPem,
        requireOcspStaple: true,
        validationCallback: (_sender, _cert, chain, errors) => {
          seen = chain.chainStatus.map((s) => s.status);
          expect(errors).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
          return false;
        },
      }),
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TlsHandshakeError);
    expect((err as TlsHandshakeError).reason).to.equal('rejected-by-policy');
    expect(seen).to.deep.equal([X509ChainStatusFlags.RevocationStatusUnknown]);
  });

  it('reads a revoked response as Revoked when a server staples it anyway', async () => {
    const leaf = new X509Certificate(revokedLeaf.cert);
    const issuer = new X509Certificate(caPem);
    const url = /OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? '')![1]!;
    const der = await fetchOcspResponse(url, buildOcspRequest(leaf, issuer));
    expect(parseOcspResponse(der, leaf, issuer).status).to.equal('revoked');
    const carrier = tls.createServer({ key: revokedLeaf.key, cert: revokedLeaf.cert + caPem });
    carrier.on('OCSPRequest', (_c: Buffer, _i: Buffer, done: (e: Error | null, r?: Buffer) => void) => done(null, der));
    await new Promise<void>((resolve) => carrier.listen(0, '127.0.0.1', resolve));
    try {
      let seen: X509ChainStatusFlags[] = [];
      const err = await TcpClient.connect({
        host: '127.0.0.1',
        port: (carrier.address() as { port: number }).port,
        security: new ClientSecurity({
          targetHost: 'revoked.postern.test',
          trustedCertificates: caPem,
          requireOcspStaple: true,
          validationCallback: (_s, _c, chain) => {
            seen = chain.chainStatus.map((s) => s.status);
            return false;
          },
        }),
      }).catch((e: unknown) => e);
      expect((err as TlsHandshakeError).reason).to.equal('rejected-by-policy');
      expect(seen).to.deep.equal([X509ChainStatusFlags.Revoked]);
    } finally {
      await new Promise((resolve) => carrier.close(resolve));
    }
  });

  it('refuses a response about another certificate', async () => {
    const good = new X509Certificate(goodLeaf.cert);
    const revoked = new X509Certificate(revokedLeaf.cert);
    const issuer = new X509Certificate(caPem);
    const url = /OCSP - URI:(\S+)/.exec(good.infoAccess ?? '')![1]!;
    const der = await fetchOcspResponse(url, buildOcspRequest(good, issuer));
    expect(() => parseOcspResponse(der, revoked, issuer)).to.throw('the response is about another certificate');
    expect(() => parseOcspResponse(der.subarray(0, der.length - 10), good, issuer)).to.throw(/malformed response|bad response signature/);
  });
});
