/**
 * The CertificateStore as a TLS source: server certificates chosen by SNI (node:tls servername and openssl
 * s_client -servername), and client certificates offered to a LocalCertificateSelectionCallback. Real handshakes on
 * the real smtps listener.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import type { Container } from 'inversify';
import { CertificateStore } from '../../lib/core/certificate-store.js';
import type { Connection } from '../../lib/core/connection.js';
import { generateServerCertificate, toPkcs12, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors, type LocalCertificate } from '../../lib/core/policy-errors.js';
import { ServerSecurityToken, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { TcpClient } from '../../lib/core/tcp-client.js';
import { createContainer } from '../../lib/di/create-container.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { hasOpenssl, sClient } from '../support/s-client.js';
import { testCertificates } from '../support/certs.js';
import { atomicWrite } from '../support/atomic-write.js';

describe('core: CertificateStore as the source of TLS certificates', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let aTest: PemPair;
  let bTest: PemPair;
  let dir: string;
  let container: Container | undefined;
  let listeners: Listener[] = [];
  const connections: Connection[] = [];
  const file = (name: string): string => path.join(dir, name);
  const sha256 = (pem: string): string => new X509Certificate(pem).fingerprint256;

  before(async () => {
    certs = await testCertificates();
    [aTest, bTest] = await Promise.all([generateServerCertificate(certs.ca, ['a.test']), generateServerCertificate(certs.ca, ['b.test'])]);
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-store-tls-'));
    await writeFile(file('ca.pem'), certs.ca.cert);
    await writeFile(file('a.pem'), aTest.cert + aTest.key);
    await writeFile(file('b.p12'), toPkcs12(bTest, 'secret'));
    await writeFile(file('client.pem'), certs.client.cert);
    await writeFile(file('client.key'), certs.client.key);
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((c) => c.close()));
    for (const l of listeners) await l.close();
    listeners = [];
    await container?.unbindAllAsync();
    container = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** smtps on port 0 with the dev server certificate as the default and the directory as the SNI source. */
  async function startSmtps(tlsOptions: ServerSecurityOptions = {}): Promise<number> {
    container = createContainer(
      { log: { silent: true }, tls: { certificate: certs.server, certificateStore: { directory: dir, passphrase: 'secret', debounceMs: 20 }, ...tlsOptions }, smtp: { smtp: { enabled: false }, smtps: { port: 0 } } },
      [memoryModule, smtpModule],
    );
    listeners = container.getAll(Listener).filter((l) => l.name === 'smtps');
    return (await listeners[0]!.start()).port;
  }

  /** The fingerprint of the certificate served for `servername` (undefined: no SNI sent). */
  function served(port: number, servername?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername, ca: certs.ca.cert, rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.destroy();
      });
      s.on('error', reject);
    });
  }

  it('serves each SNI name the store certificate for it (PEM and PFX), unknown names and no SNI the default', async () => {
    const port = await startSmtps();
    expect(await served(port, 'a.test')).to.equal(sha256(aTest.cert));
    expect(await served(port, 'b.test')).to.equal(sha256(bTest.cert));
    expect(await served(port, 'unknown.test')).to.equal(sha256(certs.server.cert));
    expect(await served(port)).to.equal(sha256(certs.server.cert));
  });

  it('lets an explicit sni entry win over the store', async () => {
    const port = await startSmtps({ sni: { 'a.test': certs.wrongHostServer } });
    expect(await served(port, 'a.test')).to.equal(sha256(certs.wrongHostServer.cert));
    expect(await served(port, 'b.test')).to.equal(sha256(bTest.cert));
  });

  it('serves a certificate replaced in the directory from the next handshake on', async () => {
    const port = await startSmtps();
    const store = container!.get(ServerSecurityToken).certificateStore!;
    const renewed = await generateServerCertificate(certs.ca, ['a.test']);
    const changed = new Promise<void>((resolve) => store.onChange(resolve));
    await atomicWrite(file('a.pem'), renewed.cert + renewed.key);
    await changed;
    expect(await served(port, 'a.test')).to.equal(sha256(renewed.cert));
  });

  it('answers openssl s_client -servername with the matching certificate', async function () {
    if (!(await hasOpenssl())) this.skip(); // `openssl` is installed by .ci/run; pending only on a machine without it
    const port = await startSmtps();
    const ca = ['-CAfile', file('ca.pem')];
    const a = await sClient(port, ['-servername', 'a.test', ...ca]);
    const b = await sClient(port, ['-servername', 'b.test', ...ca]);
    const other = await sClient(port, ['-servername', 'other.test', ...ca]);
    expect(a.subject).to.match(/CN ?= ?a\.test$/);
    expect(b.subject).to.match(/CN ?= ?b\.test$/);
    expect(other.subject).to.match(/CN ?= ?localhost$/);
    expect(a.stdout).to.match(/Verify return code: 0 \(ok\)/);
  });

  it("offers the store's client certificates to the selection callback, and presents the one it returns", async () => {
    const seenByServer: Array<{ subject?: string; flags: SslPolicyErrors }> = [];
    const port = await startSmtps({
      requireClientCertificate: true,
      trustedCertificates: certs.ca.cert,
      validationCallback: (_sender, cert, _chain, flags) => {
        seenByServer.push({ subject: cert?.subject, flags });
        return flags === SslPolicyErrors.None;
      },
    });
    const store = await CertificateStore.open({ directory: dir, passphrase: 'secret', watch: false });
    const offered: LocalCertificate[][] = [];
    const conn = await TcpClient.connect({
      host: '127.0.0.1',
      port,
      security: {
        targetHost: 'localhost',
        trustedCertificates: store.trustedCertificates({ system: false }),
        certificateStore: store,
        selectionCallback: (_sender, targetHost, local) => {
          expect(targetHost).to.equal('localhost');
          offered.push([...local]);
          return local.find((c) => 'cert' in c && new X509Certificate(String(c.cert)).subject.includes('postern-client'));
        },
      },
    });
    connections.push(conn);
    expect(offered).to.have.length(1);
    expect(offered[0]).to.have.length(1); // a.test and b.test are serverAuth-only: not offered as client certificates
    // The server decided after the handshake; the greeting proves it accepted.
    await new Promise<void>((resolve) => conn.once('data', () => resolve()));
    expect(seenByServer).to.deep.equal([{ subject: 'CN=postern-client', flags: SslPolicyErrors.None }]);
  });

  it('refuses to start when the certificate directory does not exist', async () => {
    const missing = path.join(dir, 'missing');
    container = createContainer({ log: { silent: true }, tls: { certificate: certs.server, certificateStore: { directory: missing } }, smtp: { smtp: { enabled: false }, smtps: { port: 0 } } }, [memoryModule, smtpModule]);
    listeners = container.getAll(Listener).filter((l) => l.name === 'smtps');
    const err = await listeners[0]!.start().then(() => undefined, (e: Error) => e);
    expect(err?.name).to.equal('CertificateError');
    expect(err?.message).to.equal(`cannot read the certificate directory ${missing}: ENOENT`);
  });
});
