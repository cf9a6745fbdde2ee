/**
 * CertificateStore at the edges `certificate-store.spec.ts` leaves open (issue 16, mutation testing of
 * `lib/core/certificate-store.ts`): which certificate serves an SNI name when several fit (exact before wildcard, then
 * the later expiry), validity and keys, e-mail and IP names, `watch: true`, when listeners run (a replaced certificate,
 * a key added, nothing changed, a listener that throws), and a directory that disappears. Real files and fs events.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { CertificateStore } from '../../lib/core/certificate-store.js';
import { generateClientCertificate, generateServerCertificate, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';
import { RecordingLogger } from '../support/recording-logger.js';

describe('core: CertificateStore edges (certificate-store mutants)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let dir: string;
  const stores: CertificateStore[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-store-mutants-'));
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(log?: RecordingLogger, watch = false): Promise<CertificateStore> {
    const s = await CertificateStore.open({ directory: dir, watch, debounceMs: 20, log });
    stores.push(s);
    return s;
  }

  const cnOf = (pem: string | undefined): string | undefined => (pem ? /CN=([^\n]+)/.exec(new X509Certificate(pem).subject)?.[1] : undefined);

  /** A self-signed EC certificate for `name` valid from `from` to `to` (days from now). */
  async function dated(name: string, from: number, to: number): Promise<PemPair> {
    const now = Date.now();
    const g = await generate([{ name: 'commonName', value: name }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: new Date(now + from * 86_400_000),
      notAfterDate: new Date(now + to * 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: name }] }],
    });
    return { cert: g.cert, key: g.private };
  }

  it('serves the exact name before a wildcard, then the later expiry, whatever the file order', async () => {
    const [wild, exact, shortLived, longLived] = await Promise.all([
      generateServerCertificate(certs.ca, ['*.example.test'], 300),
      generateServerCertificate(certs.ca, ['mail.example.test'], 10),
      generateServerCertificate(certs.ca, ['imap.example.test'], 10),
      generateServerCertificate(certs.ca, ['imap.example.test'], 20),
    ]);
    await Promise.all([
      writeFile(join(dir, 'a-exact.pem'), exact.cert + exact.key),
      writeFile(join(dir, 'b-wild.pem'), wild.cert + wild.key),
      writeFile(join(dir, 'c-long.pem'), longLived.cert + longLived.key),
      writeFile(join(dir, 'd-short.pem'), shortLived.cert + shortLived.key),
    ]);
    const store = await open();
    expect(store.serverCertificateFor('mail.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(exact.cert).fingerprint256);
    expect(store.serverCertificateFor('smtp.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(wild.cert).fingerprint256);
    expect(store.serverCertificateFor('imap.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(longLived.cert).fingerprint256);
    await Promise.all([writeFile(join(dir, 'a-exact.pem'), wild.cert + wild.key), writeFile(join(dir, 'b-wild.pem'), exact.cert + exact.key)]);
    await writeFile(join(dir, 'c-long.pem'), shortLived.cert + shortLived.key);
    await writeFile(join(dir, 'd-short.pem'), longLived.cert + longLived.key);
    await store.reload();
    expect(store.serverCertificateFor('mail.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(exact.cert).fingerprint256);
    expect(store.serverCertificateFor('imap.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(longLived.cert).fingerprint256);
  });

  it('serves and offers only certificates valid now and with their key', async () => {
    const [expired, future, current] = await Promise.all([dated('old.example.test', -10, -1), dated('new.example.test', 1, 10), dated('now.example.test', -1, 10)]);
    const keyless = await generateServerCertificate(certs.ca, ['keyless.example.test']);
    await Promise.all([
      writeFile(join(dir, 'old.pem'), expired.cert + expired.key),
      writeFile(join(dir, 'new.pem'), future.cert + future.key),
      writeFile(join(dir, 'now.pem'), current.cert + current.key),
      writeFile(join(dir, 'keyless.pem'), keyless.cert),
    ]);
    const store = await open();
    expect(store.certificates).to.have.length(4);
    expect(store.serverCertificateFor('old.example.test')).to.equal(undefined);
    expect(store.serverCertificateFor('new.example.test')).to.equal(undefined);
    expect(store.serverCertificateFor('keyless.example.test')).to.equal(undefined);
    expect(cnOf(store.serverCertificateFor('now.example.test')?.certificate.toString())).to.equal('now.example.test');
    expect(store.clientCertificates().map((c) => cnOf('cert' in c ? String(c.cert) : undefined))).to.deep.equal(['now.example.test']);
  });

  it('finds by e-mail address and IP address only the certificates that name them', async () => {
    const mailbox = await generateClientCertificate(certs.ca, 'alice', { emails: ['alice@example.test'] });
    await Promise.all([writeFile(join(dir, 'alice.pem'), mailbox.cert), writeFile(join(dir, 'server.pem'), certs.server.cert)]);
    const store = await open();
    expect(store.findBySan('alice@example.test').map((e) => cnOf(e.certificate.toString()))).to.deep.equal(['alice']);
    expect(store.findBySan('bob@example.test')).to.deep.equal([]);
    expect(store.findBySan('127.0.0.1').map((e) => cnOf(e.certificate.toString()))).to.deep.equal(['localhost']);
    expect(store.findBySan('127.0.0.2')).to.deep.equal([]);
  });

  it('watches with watch: true', async () => {
    const store = await open(undefined, true);
    const changed = new Promise<void>((resolve) => store.onChange(resolve));
    await writeFile(join(dir, 'server.pem'), certs.server.cert);
    await changed;
    expect(store.certificates).to.have.length(1);
  });

  it('tells listeners about a replaced certificate and an added key, not about a reload that changed nothing, and goes on past one that throws', async () => {
    const [one, two] = await Promise.all([generateServerCertificate(certs.ca, ['one.example.test']), generateServerCertificate(certs.ca, ['two.example.test'])]);
    await writeFile(join(dir, 'cert.pem'), one.cert);
    const log = new RecordingLogger();
    const store = await open(log);
    let calls = 0;
    store.onChange(() => {
      throw new Error('listener broke');
    });
    store.onChange(() => calls++);
    await store.reload();
    expect(calls, 'nothing changed').to.equal(0);
    await writeFile(join(dir, 'key.pem'), one.key);
    await store.reload();
    expect(calls, 'the key was added').to.equal(1);
    expect(store.certificates[0]!.hasPrivateKey).to.equal(true);
    await writeFile(join(dir, 'cert.pem'), two.cert);
    await store.reload();
    expect(calls, 'the certificate was replaced').to.equal(2);
    expect(log.find('warn', 'certificate store listener failed').map((r) => r.meta)).to.deep.equal([{ error: 'listener broke' }, { error: 'listener broke' }]);
    expect(log.find('info', 'certificate store reloaded').map((r) => r.meta)).to.deep.equal([
      { directory: store.directory, certificates: 1, skipped: 0 },
      { directory: store.directory, certificates: 1, skipped: 0 },
      { directory: store.directory, certificates: 1, skipped: 0 },
    ]);
  });

  it('keeps its certificates when the directory disappears, and says so', async () => {
    await writeFile(join(dir, 'server.pem'), certs.server.cert);
    const log = new RecordingLogger();
    const store = await open(log);
    await rm(dir, { recursive: true, force: true });
    await store.reload();
    expect(store.certificates).to.have.length(1);
    const [warning] = log.find('warn', 'certificate directory unreadable, keeping the certificates loaded before');
    expect(warning?.meta.directory).to.equal(store.directory);
    expect(warning?.meta.error).to.match(/^ENOENT: no such file or directory, scandir /);
  });
});
