/**
 * CertificateStore: a directory of PEM and PFX files, searched by thumbprint, subject and SAN, watched for changes.
 * Real files in a temporary directory, real fs.watch events (awaited through onChange, never slept on).
 */
import { mkdtemp, rm, writeFile, unlink } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CertificateStore } from '../../lib/core/certificate-store.js';
import { generateServerCertificate, toPkcs12, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { testCertificates } from '../support/certs.js';
import { atomicWrite } from '../support/atomic-write.js';

describe('core: CertificateStore', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let aTest: PemPair;
  let bTest: PemPair;
  let wild: PemPair;
  let dir: string;
  let store: CertificateStore | undefined;
  let log: RecordingLogger;
  const file = (name: string): string => path.join(dir, name);
  const sha256 = (pem: string): string => new X509Certificate(pem).fingerprint256.replace(/:/g, '');

  before(async () => {
    certs = await testCertificates();
    [aTest, bTest, wild] = await Promise.all([
      generateServerCertificate(certs.ca, ['a.test']),
      generateServerCertificate(certs.ca, ['b.test']),
      generateServerCertificate(certs.ca, ['*.wild.test']),
    ]);
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-store-'));
    await writeFile(file('ca.crt'), certs.ca.cert);
    await writeFile(file('a.pem'), aTest.cert);
    await writeFile(file('a-key.pem'), aTest.key); // key in its own file: paired by public key
    await writeFile(file('b.pfx'), toPkcs12(bTest, 'pfx-pass'));
    await writeFile(file('client.pem'), certs.client.cert + certs.client.key); // certificate and key in one file
    await writeFile(file('notes.txt'), 'not a certificate');
    log = new RecordingLogger();
  });
  afterEach(async () => {
    store?.close();
    store = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (extra: { debounceMs?: number; watch?: boolean } = {}): Promise<CertificateStore> =>
    (store = await CertificateStore.open({ directory: dir, passphrase: 'pfx-pass', log, ...extra }));

  it('loads PEM and PFX files, pairs keys by public key and ignores other files', async () => {
    const s = await open({ watch: false });
    const byFile = Object.fromEntries(s.certificates.map((e) => [path.basename(e.file), e]));
    expect(Object.keys(byFile).sort()).to.deep.equal(['a.pem', 'b.pfx', 'ca.crt', 'client.pem']);
    expect(byFile['a.pem']!.hasPrivateKey).to.equal(true);
    expect(byFile['b.pfx']!.hasPrivateKey).to.equal(true);
    expect(byFile['client.pem']!.hasPrivateKey).to.equal(true);
    expect(byFile['ca.crt']!.hasPrivateKey).to.equal(false);
    expect(byFile['a.pem']!.chain.map((c) => c.subject)).to.deep.equal([]); // the issuer is a self-signed root: not sent
    expect(byFile['b.pfx']!.thumbprint256).to.equal(sha256(bTest.cert));
    expect(s.problems).to.deep.equal([]);
  });

  it('finds by SHA-1 and SHA-256 thumbprint (any case, with or without colons), subject name and SAN', async () => {
    const s = await open({ watch: false });
    const a = new X509Certificate(aTest.cert);
    expect(s.findByThumbprint(a.fingerprint)?.file).to.equal(file('a.pem'));
    expect(s.findByThumbprint(a.fingerprint.replace(/:/g, '').toLowerCase())?.file).to.equal(file('a.pem'));
    expect(s.findByThumbprint(a.fingerprint256)?.file).to.equal(file('a.pem'));
    expect(s.findByThumbprint(s.certificates[0]!.thumbprint)).to.equal(s.certificates[0]);
    expect(s.findByThumbprint('00'.repeat(20))).to.equal(undefined);
    expect(s.findBySubjectName('POSTERN-CLIENT').map((e) => path.basename(e.file))).to.deep.equal(['client.pem']);
    expect(s.findBySubjectName('Postern Dev CA').map((e) => path.basename(e.file))).to.deep.equal(['ca.crt']);
    expect(s.findBySan('b.test').map((e) => path.basename(e.file))).to.deep.equal(['b.pfx']);
    expect(s.findBySan('c.test')).to.deep.equal([]);
  });

  it('picks the server certificate for an SNI name: exact before wildcard, never a CA or client certificate', async () => {
    await writeFile(file('wild.pem'), wild.cert + wild.key);
    const s = await open({ watch: false });
    expect(s.serverCertificateFor('A.TEST')?.file).to.equal(file('a.pem'));
    expect(s.serverCertificateFor('b.test')?.file).to.equal(file('b.pfx'));
    expect(s.serverCertificateFor('x.wild.test')?.file).to.equal(file('wild.pem'));
    expect(s.serverCertificateFor('wild.test')).to.equal(undefined);
    expect(s.serverCertificateFor('postern-client')).to.equal(undefined); // clientAuth-only
    expect(s.serverCertificateFor('unknown.test')).to.equal(undefined);
  });

  it('offers only certificates with keys that are allowed for client authentication as client certificates', async () => {
    const s = await open({ watch: false });
    const offered = s.clientCertificates();
    expect(offered).to.have.length(1);
    expect(String((offered[0] as { key: string }).key).trim()).to.equal(certs.client.key.trim());
    expect(String((offered[0] as { cert: string }).cert)).to.contain(certs.client.cert.trim());
  });

  it('trusts its CA certificates, plus the system bundle unless told not to', async () => {
    const s = await open({ watch: false });
    expect(s.trustedCertificates({ system: false })).to.deep.equal([new X509Certificate(certs.ca.cert).toString()]);
    const all = s.trustedCertificates();
    expect(all.length).to.be.greaterThan(10);
    expect(all[0]).to.equal(new X509Certificate(certs.ca.cert).toString());
  });

  it('skips a bad file with a warning and loads the rest; a wrong PFX passphrase is such a file', async () => {
    await writeFile(file('broken.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const s = await CertificateStore.open({ directory: dir, passphrase: 'wrong', log, watch: false });
    store = s;
    expect(s.problems.map((p) => path.basename(p.file)).sort()).to.deep.equal(['b.pfx', 'broken.pem']);
    expect(s.problems.find((p) => p.file.endsWith('b.pfx'))!.error.message).to.match(/^cannot open the PKCS#12 file \(is the passphrase right\?\)/);
    expect(s.certificates.map((e) => path.basename(e.file)).sort()).to.deep.equal(['a.pem', 'ca.crt', 'client.pem']);
    expect(log.find('certificate file skipped').map((l) => path.basename(String(l.meta.file))).sort()).to.deep.equal(['b.pfx', 'broken.pem']);
  });

  it('refuses to open a directory that does not exist', async () => {
    const missing = path.join(dir, 'nope');
    const err = await CertificateStore.open({ directory: missing }).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.equal(`cannot read the certificate directory ${missing}: ENOENT`);
  });

  it('reloads after a file is added, replaced or removed, and survives a bad file dropped in', async () => {
    const s = await open({ debounceMs: 20 });
    const changed = (): Promise<void> => new Promise((resolve) => {
      const off = s.onChange(() => {
        off();
        resolve();
      });
    });
    // added (written to a temporary name, then renamed, as deployment tools do)
    let next = changed();
    await atomicWrite(file('wild.pem'), wild.cert + wild.key);
    await next;
    expect(s.serverCertificateFor('mail.wild.test')?.thumbprint256).to.equal(sha256(wild.cert));
    // replaced: a.pem gets a renewed certificate for the same name (its key file too)
    const renewed = await generateServerCertificate(certs.ca, ['a.test']);
    next = changed();
    await atomicWrite(file('a.pem'), renewed.cert + renewed.key);
    await unlink(file('a-key.pem'));
    await next;
    expect(s.serverCertificateFor('a.test')?.thumbprint256).to.equal(sha256(renewed.cert));
    // removed
    next = changed();
    await unlink(file('b.pfx'));
    await next;
    expect(s.findBySan('b.test')).to.deep.equal([]);
    // a bad file: logged, skipped, the rest stays
    await atomicWrite(file('zz-garbage.pem'), 'garbage');
    await log.next('certificate file skipped');
    expect(s.serverCertificateFor('a.test')?.thumbprint256).to.equal(sha256(renewed.cert));
    expect(s.problems.map((p) => path.basename(p.file))).to.deep.equal(['zz-garbage.pem']);
  });
});
