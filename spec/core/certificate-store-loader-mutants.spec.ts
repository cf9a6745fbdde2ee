/**
 * The certificate directory scan (issue 16, mutation testing of `lib/core/certificate-store-loader.ts`): hidden files and
 * directories skipped, the refusal texts, and the chain and issuer of each entry in a root → intermediate → leaf
 * hierarchy made by openssl, with a look-alike CA (same name, other key) that must not be taken as an issuer; and the
 * system CA bundle choice.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { SYSTEM_CA_BUNDLES, scanDirectory, systemCertificates } from '../../lib/core/certificate-store-loader.js';
import { generate } from 'selfsigned';
import { generateDevCa, generateDevCertificates, generateServerCertificate, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';

function openssl(args: string[]): Promise<number> {
  return new Promise((resolve) => execFile('openssl', args, { timeout: 15_000 }, (err) => resolve(err ? 1 : 0)));
}

/** An intermediate CA `cn` signed by `issuer` (EC P-256, two days). */
async function intermediate(issuer: PemPair, cn: string): Promise<PemPair> {
  const now = Date.now();
  const out = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 3_600_000),
    notAfterDate: new Date(now + 2 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true },
    ],
    ca: { cert: issuer.cert, key: issuer.key },
  } as Parameters<typeof generate>[1]);
  return { cert: out.cert, key: out.private };
}

describe('core: certificate directory scan (certificate-store-loader mutants)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let dir: string;
  const noPassphrase = (): undefined => undefined;

  before(async () => {
    certs = await testCertificates();
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-scan-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('skips hidden files and directories, and names files without PEM and keys whose passphrase is wrong', async () => {
    const encrypted = createPrivateKey(certs.server.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'right' }) as string;
    await Promise.all([
      writeFile(join(dir, '.hidden.pem'), 'not PEM at all'),
      mkdir(join(dir, 'folder.pem')),
      writeFile(join(dir, 'empty.pem'), 'no PEM here'),
      writeFile(join(dir, 'locked.key'), encrypted),
      writeFile(join(dir, 'server.pem'), certs.server.cert),
    ]);
    const scan = await scanDirectory(dir, () => 'wrong');
    expect(scan.certificates.map((c) => c.file)).to.deep.equal([join(dir, 'server.pem')]);
    expect(scan.problems.map((p) => [p.file, p.error.message.split(':')[0]])).to.deep.equal([
      [join(dir, 'empty.pem'), 'no PEM certificate or private key in the file'],
      [join(dir, 'locked.key'), 'cannot read the private key (is the passphrase right?)'],
    ]);
  });

  it('links each certificate to its issuer and chain, past a look-alike CA, without the root in the chain', async function () {
    const run = (args: string[]): Promise<number> => openssl(args);
    if ((await run(['version'])) !== 0) this.skip(); // pending, never passed: install openssl (.ci/run does)
    const twin = await generateDevCertificates(); // its CA is also "CN=Postern Dev CA"
    const f = (n: string): string => join(dir, n);
    await Promise.all([writeFile(f('ca.crt'), certs.ca.cert), writeFile(f('ca.key.tmp'), certs.ca.key), writeFile(f('a-twin-ca.crt'), twin.ca.cert)]);
    // No key identifiers: the look-alike CA then passes the name check, and only the signature tells them apart.
    await writeFile(f('int.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n');
    await writeFile(f('leaf.ext'), 'subjectAltName=DNS:leaf.example.test\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n');
    const steps: string[][] = [
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('int.key.tmp'), '-out', f('int.csr'), '-subj', '/CN=Postern Intermediate'],
      ['x509', '-req', '-in', f('int.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key.tmp'), '-set_serial', '0x51', '-days', '2', '-extfile', f('int.ext'), '-out', f('int.crt')],
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=leaf.example.test'],
      ['x509', '-req', '-in', f('leaf.csr'), '-CA', f('int.crt'), '-CAkey', f('int.key.tmp'), '-set_serial', '0x52', '-days', '2', '-extfile', f('leaf.ext'), '-out', f('leaf.crt')],
      // The intermediate's key under another name, sorted first: it verifies the leaf's signature but did not issue it.
      ['req', '-new', '-key', f('int.key.tmp'), '-out', f('int2.csr'), '-subj', '/CN=Another Intermediate'],
      ['x509', '-req', '-in', f('int2.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key.tmp'), '-set_serial', '0x53', '-days', '2', '-extfile', f('int.ext'), '-out', f('a-rekeyed-int.crt')],
      // The root re-issued with its own key and name, sorted last: a root has no issuer even so.
      ['req', '-x509', '-key', f('ca.key.tmp'), '-subj', '/CN=Postern Dev CA', '-days', '2', '-set_serial', '0x54', '-out', f('z-reissued-ca.crt')],
    ];
    for (const step of steps) expect(await run(step), step.join(' ')).to.equal(0);
    const [intPem, leafPem] = await Promise.all([readFile(f('int.crt'), 'utf8'), readFile(f('leaf.crt'), 'utf8')]);
    const scan = await scanDirectory(dir, noPassphrase);
    const by = (cn: string) => scan.certificates.find((c) => c.certificate.subject === `CN=${cn}` && !c.file.includes('/a-') && !c.file.includes('/z-'))!;
    const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;
    const leaf = by('leaf.example.test');
    const int = by('Postern Intermediate');
    const root = by('Postern Dev CA');
    expect(leaf.hasPrivateKey).to.equal(true);
    expect(leaf.issuer?.fingerprint256).to.equal(fp(intPem));
    expect(leaf.chain.map((c) => c.fingerprint256)).to.deep.equal([fp(intPem)]);
    expect(int.issuer?.fingerprint256).to.equal(fp(certs.ca.cert));
    expect(int.chain).to.deep.equal([]);
    expect(root.issuer).to.equal(undefined);
    expect(root.chain).to.deep.equal([]);
    const reissued = scan.certificates.find((c) => c.file === f('z-reissued-ca.crt'))!;
    expect(reissued.issuer).to.equal(undefined);
    const rekeyed = scan.certificates.find((c) => c.file === f('a-rekeyed-int.crt'))!;
    expect(rekeyed.certificate.subject).to.equal('CN=Another Intermediate');
    const local = leaf.localCertificate as { cert: string };
    expect(local.cert).to.equal(`${new X509Certificate(leafPem).toString()}\n${new X509Certificate(intPem).toString()}`);
  });

  it('lists problems in file name order, and names an unreadable unencrypted key without the passphrase hint', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `f${String(i).padStart(2, '0')}.pem`);
    for (const n of names) await writeFile(join(dir, n), 'nothing'); // libuv sorts a listing itself; the order is asserted anyway
    await writeFile(join(dir, 'g-broken.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const scan = await scanDirectory(dir, noPassphrase);
    expect(scan.problems.map((p) => p.file)).to.deep.equal([...names, 'g-broken.key'].map((n) => join(dir, n)));
    const broken = scan.problems[12].error.message;
    expect(broken.startsWith('cannot read the private key: ')).to.equal(true);
    expect(broken).not.to.include('passphrase');
  });

  it("pairs a certificate with its own file's key, not the same key in another form in an earlier file", async () => {
    const encrypted = createPrivateKey(certs.server.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string;
    await writeFile(join(dir, 'a-plain.key'), certs.server.key);
    await writeFile(join(dir, 'b-bundle.pem'), `${certs.server.cert}\n${encrypted}`);
    await writeFile(join(dir, 'c-client.pem'), certs.client.cert);
    const scan = await scanDirectory(dir, () => 'secret');
    expect(scan.problems).to.deep.equal([]);
    const [server, client] = scan.certificates;
    expect(server.file).to.equal(join(dir, 'b-bundle.pem'));
    expect(server.localCertificate).to.deep.equal({ cert: new X509Certificate(certs.server.cert).toString(), key: encrypted.trim(), passphrase: 'secret' });
    expect(client.hasPrivateKey).to.equal(false);
  });

  it('follows at most 8 issuers up a chain of 10 intermediates', async () => {
    const ca = await generateDevCa('Deep Root', 2);
    const issuers: PemPair[] = [];
    let parent = ca;
    for (let i = 1; i <= 10; i++) {
      parent = await intermediate(parent, `Deep ${String(i).padStart(2, '0')}`);
      issuers.push(parent);
    }
    const leaf = await generateServerCertificate(parent, ['deep.example.test'], 2);
    await writeFile(join(dir, 'all.pem'), [ca, ...issuers, leaf].map((p) => p.cert).join('\n'));
    const scan = await scanDirectory(dir, noPassphrase);
    const found = scan.certificates.find((c) => c.certificate.subject === 'CN=deep.example.test')!;
    expect(found.chain.map((c) => c.subject)).to.deep.equal(['CN=Deep 10', 'CN=Deep 09', 'CN=Deep 08', 'CN=Deep 07', 'CN=Deep 06', 'CN=Deep 05', 'CN=Deep 04', 'CN=Deep 03']);
  });

  it('reads the system bundle it is given, falls back to Node roots for a file without certificates, and finds a default bundle', async () => {
    await writeFile(join(dir, 'one.crt'), certs.ca.cert);
    await writeFile(join(dir, 'none.crt'), 'nothing');
    expect(systemCertificates(join(dir, 'one.crt')).map((p) => new X509Certificate(p).subject)).to.deep.equal(['CN=Postern Dev CA']);
    expect(systemCertificates(join(dir, 'none.crt'))).to.deep.equal([...tls.rootCertificates]);
    const bundle = SYSTEM_CA_BUNDLES.find((f) => existsSync(f));
    expect(systemCertificates()).to.deep.equal(bundle ? systemCertificates(bundle) : [...tls.rootCertificates]);
  });
});
