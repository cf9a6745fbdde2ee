/**
 * The development certificates (issue 16, mutation testing of `lib/core/dev-certificates.ts`): every certificate's
 * subject, issuer, validity window to the second, and extensions as openssl prints them; the defaults of each
 * generator; the files `writeDevCertificates` writes (names, order, contents, modes, also over existing files); and the
 * PKCS#12 blob as `openssl pkcs12` reads it (MAC, iterations, salt, bags, localKeyID). Each case generates its own
 * certificates: the shared test set is made once per process, before any case runs.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  DEV_CERT_DAYS,
  DEV_PFX_PASSPHRASE,
  fingerprint256,
  generateClientCertificate,
  generateDevCa,
  generateDevCertificates,
  generateServerCertificate,
  toPkcs12,
  writeDevCertificates,
  type PemPair,
} from '../../lib/core/dev-certificates.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** openssl's output (stdout, then stderr, where `pkcs12 -info` writes), or undefined when openssl is missing. */
function openssl(args: string[], input?: string | Buffer): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      if (err) return reject(new Error(`openssl ${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve(`${stdout}${stderr}`);
    });
    child.stdin?.end(input);
  });
}

/** The extensions openssl prints for a certificate, one `name: value` per line, values joined. */
async function extensions(pem: string): Promise<string[] | undefined> {
  const out = await openssl(['x509', '-noout', '-ext', 'basicConstraints,keyUsage,extendedKeyUsage,subjectAltName'], pem);
  if (out === undefined) return undefined;
  const lines: string[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith('X509v3 ')) lines.push(line.slice(7).trim());
    else if (line.trim() !== '') lines[lines.length - 1] += ' ' + line.trim();
  }
  return lines;
}

/** Where `der` (from `start` to `end`) breaks DER's minimal length rule (X.690 §10.1), descending into constructed
 * values and into OCTET STRINGs that hold DER themselves (PKCS#12 nests its bags that way). */
function lengthViolations(der: Buffer, start = 0, end = der.length): number[] {
  const bad: number[] = [];
  let at = start;
  while (at < end) {
    const tag = der[at];
    const first = der[at + 1];
    let length = first;
    let header = 2;
    if (first >= 0x80) {
      const n = first & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + der[at + 2 + i];
      header = 2 + n;
      if (n === 0 || der[at + 2] === 0 || length < 0x80) bad.push(at);
    }
    const contentEnd = at + header + length;
    if (contentEnd > end) throw new Error(`TLV at ${at} runs past its parent`);
    if ((tag & 0x20) !== 0) bad.push(...lengthViolations(der, at + header, contentEnd));
    else if (tag === 0x04 && der[at + header] === 0x30) {
      // DER wrapped in an OCTET STRING (PKCS#7 data) is a SEQUENCE; other octet strings (the MAC, the salts, the
      // encrypted key) are random and not searched: 16 random octets can read as a TLV with a long-form length
      // under 0x80 (one run in several thousand flagged a salt that way).
      try {
        bad.push(...lengthViolations(der, at + header, contentEnd));
      } catch {
        // plain octets (the MAC, the salt, the encrypted key)
      }
    }
    at = contentEnd;
  }
  return bad;
}

/** validFrom and validTo in ms since the epoch. */
function window(pem: string): { from: number; to: number } {
  const c = new X509Certificate(pem);
  return { from: Date.parse(c.validFrom), to: Date.parse(c.validTo) };
}

/** Asserts `pem` starts an hour before `t0`..`t1` (X.509 keeps whole seconds) and lasts `days` plus that hour. */
function expectWindow(pem: string, t0: number, t1: number, days: number): void {
  const { from, to } = window(pem);
  expect(from, 'notBefore an hour back').to.be.within(t0 - HOUR - 1000, t1 - HOUR);
  expect(to - from, 'validity').to.equal(days * DAY + HOUR);
}

describe('core: development certificates (dev-certificates mutants)', function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-devcerts-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes the whole set with its names, issuers, default 90-day windows, the expired one in the past, and the default hosts for an empty list', async function () {
    const t0 = Date.now();
    const set = await generateDevCertificates({ hosts: [] });
    const t1 = Date.now();
    const subject = (p: PemPair): string => new X509Certificate(p.cert).subject;
    const issuer = (p: PemPair): string => new X509Certificate(p.cert).issuer;
    expect(DEV_CERT_DAYS).to.equal(90);
    expect([set.ca, set.server, set.client, set.untrustedCa, set.untrustedClient, set.expiredClient, set.selfSignedClient, set.wrongHostServer].map(subject)).to.deep.equal([
      'CN=Postern Dev CA',
      'CN=localhost',
      'CN=postern-client',
      'CN=Postern Untrusted CA',
      'CN=postern-untrusted-client',
      'CN=postern-expired-client',
      'CN=postern-self-signed-client',
      'CN=other.example',
    ]);
    expect([set.ca, set.server, set.client, set.untrustedCa, set.untrustedClient, set.expiredClient, set.selfSignedClient, set.wrongHostServer].map(issuer)).to.deep.equal([
      'CN=Postern Dev CA',
      'CN=Postern Dev CA',
      'CN=Postern Dev CA',
      'CN=Postern Untrusted CA',
      'CN=Postern Untrusted CA',
      'CN=Postern Dev CA',
      'CN=postern-self-signed-client',
      'CN=Postern Dev CA',
    ]);
    for (const pair of [set.ca, set.server, set.client, set.untrustedCa, set.untrustedClient, set.selfSignedClient, set.wrongHostServer]) expectWindow(pair.cert, t0, t1, 90);
    const expired = window(set.expiredClient.cert);
    expect(expired.from, 'expired: from 30 days back').to.be.within(t0 - 30 * DAY - 1000, t1 - 30 * DAY);
    expect(expired.to - expired.from, 'expired: until a day back').to.equal(29 * DAY);
    expect(new X509Certificate(set.server.cert).subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(new X509Certificate(set.wrongHostServer.cert).subjectAltName).to.equal('DNS:other.example');
    expect(new X509Certificate(set.client.cert).subjectAltName).to.equal(undefined);

    const exts = await Promise.all([set.ca, set.server, set.client, set.selfSignedClient].map((p) => extensions(p.cert)));
    if (exts[0] === undefined) this.skip(); // pending, never passed: install openssl (.ci/run does)
    expect(exts).to.deep.equal([
      ['Basic Constraints: critical CA:TRUE', 'Key Usage: critical Digital Signature, Certificate Sign, CRL Sign'],
      [
        'Basic Constraints: critical CA:FALSE',
        'Key Usage: critical Digital Signature',
        'Extended Key Usage: TLS Web Server Authentication',
        'Subject Alternative Name: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      ],
      ['Basic Constraints: critical CA:FALSE', 'Key Usage: critical Digital Signature', 'Extended Key Usage: TLS Web Client Authentication'],
      ['Basic Constraints: critical CA:FALSE', 'Key Usage: critical Digital Signature', 'Extended Key Usage: TLS Web Client Authentication'],
    ]);
    for (const pair of [set.ca, set.server]) {
      const text = await openssl(['x509', '-noout', '-text'], pair.cert);
      expect(text).to.match(/Signature Algorithm: ecdsa-with-SHA256/);
      expect(text).to.match(/NIST CURVE: P-256/);
    }
  });

  it('makes a client certificate with e-mail SANs, none without, for 90 days or the days given', async () => {
    const ca = await generateDevCa();
    const t0 = Date.now();
    const withMail = await generateClientCertificate(ca, 'alice', { emails: ['alice@postern.test', 'a@postern.test'] });
    const plain = await generateClientCertificate(ca, 'bob', { days: 3 });
    const t1 = Date.now();
    const m = new X509Certificate(withMail.cert);
    expect(m.subject).to.equal('CN=alice');
    expect(m.issuer).to.equal('CN=Postern Dev CA');
    expect(m.verify(new X509Certificate(ca.cert).publicKey)).to.equal(true);
    expect(m.subjectAltName).to.equal('email:alice@postern.test, email:a@postern.test');
    expect(m.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
    expectWindow(withMail.cert, t0, t1, 90);
    expect(new X509Certificate(plain.cert).subjectAltName).to.equal(undefined);
    expectWindow(plain.cert, t0, t1, 3);
  });

  it('makes a CA alone with its default or given name and days, and server certificates for the default or given hosts', async () => {
    const t0 = Date.now();
    const [ca, named] = await Promise.all([generateDevCa(), generateDevCa('Other CA', 4)]);
    const [server, listed, empty] = await Promise.all([
      generateServerCertificate(ca),
      generateServerCertificate(named, ['mx.postern.test', '192.0.2.7'], 2),
      generateServerCertificate(ca, []),
    ]);
    const t1 = Date.now();
    const caCert = new X509Certificate(ca.cert);
    expect(caCert.subject).to.equal('CN=Postern Dev CA');
    expect(caCert.ca).to.equal(true);
    expectWindow(ca.cert, t0, t1, 90);
    expect(new X509Certificate(named.cert).subject).to.equal('CN=Other CA');
    expectWindow(named.cert, t0, t1, 4);
    for (const s of [server, empty]) {
      const c = new X509Certificate(s.cert);
      expect(c.subject).to.equal('CN=localhost');
      expect(c.subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
      expect(c.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
      expect(c.verify(caCert.publicKey)).to.equal(true);
      expectWindow(s.cert, t0, t1, 90);
    }
    const l = new X509Certificate(listed.cert);
    expect(l.subject).to.equal('CN=mx.postern.test');
    expect(l.issuer).to.equal('CN=Other CA');
    expect(l.subjectAltName).to.equal('DNS:mx.postern.test, IP Address:192.0.2.7');
    expectWindow(listed.cert, t0, t1, 2);
    expect(fingerprint256(listed.cert)).to.equal(l.fingerprint256);
    expect(fingerprint256(listed.cert)).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('writes every file in a fixed order with its part and mode, over existing files, into a new nested directory', async () => {
    const set = await generateDevCertificates();
    const target = join(dir, 'a', 'b');
    const first = await writeDevCertificates(target, set);
    for (const f of first.files) await chmod(f, 0o666); // modes a later write must put back
    await writeFile(join(target, 'server-key.pem'), 'stale');
    const { certs, files } = await writeDevCertificates(target, set);
    expect(certs).to.equal(set);
    const names = [
      ['ca.pem', set.ca.cert, 0o644],
      ['ca-key.pem', set.ca.key, 0o600],
      ['server.pem', set.server.cert, 0o644],
      ['server-key.pem', set.server.key, 0o600],
      ['client.pem', set.client.cert, 0o644],
      ['client-key.pem', set.client.key, 0o600],
      ['untrusted-ca.pem', set.untrustedCa.cert, 0o644],
      ['untrusted-client.pem', set.untrustedClient.cert, 0o644],
      ['untrusted-client-key.pem', set.untrustedClient.key, 0o600],
      ['expired-client.pem', set.expiredClient.cert, 0o644],
      ['expired-client-key.pem', set.expiredClient.key, 0o600],
    ] as const;
    expect(files).to.deep.equal([...names.map(([n]) => join(target, n)), join(target, 'server.pfx')]);
    for (const [name, content, mode] of names) {
      expect(await readFile(join(target, name), 'utf8'), name).to.equal(content);
      expect((await stat(join(target, name))).mode & 0o777, name).to.equal(mode);
    }
    expect((await stat(join(target, 'server.pfx'))).mode & 0o777).to.equal(0o600);
  });

  it('generates a fresh set when none is given', async () => {
    const { certs, files } = await writeDevCertificates(dir);
    expect(files).to.have.length(12);
    expect(new X509Certificate(certs.server.cert).subject).to.equal('CN=localhost');
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).to.equal(certs.ca.cert);
  });

  it('packs PKCS#12 as openssl reads it: SHA-256 MAC over 2048 iterations, a 16-octet salt, a PBES2 key bag and a shared localKeyID', async function () {
    const set = await generateDevCertificates();
    await writeDevCertificates(dir, set);
    const pfx = await readFile(join(dir, 'server.pfx'));
    const info = await openssl(['pkcs12', '-in', join(dir, 'server.pfx'), '-passin', `pass:${DEV_PFX_PASSPHRASE}`, '-info', '-nodes']);
    if (info === undefined) this.skip(); // pending, never passed: install openssl (.ci/run does)
    expect(DEV_PFX_PASSPHRASE).to.equal('postern');
    const lines = info!.split('\n').filter((l) => !/^[A-Za-z0-9+/=]+$/.test(l) && l.trim() !== '');
    const id = createHash('sha1').update(new X509Certificate(set.server.cert).raw).digest('hex').toUpperCase().match(/../g)!.join(' ');
    expect(lines).to.deep.equal([
      'Bag Attributes',
      `    localKeyID: ${id} `,
      'subject=CN = localhost',
      'issuer=CN = Postern Dev CA',
      '-----BEGIN CERTIFICATE-----',
      '-----END CERTIFICATE-----',
      'Bag Attributes',
      `    localKeyID: ${id} `,
      'Key Attributes: <No Attributes>',
      '-----BEGIN PRIVATE KEY-----',
      '-----END PRIVATE KEY-----',
      // stderr
      'MAC: sha256, Iteration 2048',
      'MAC length: 32, salt length: 16',
      'PKCS7 Data',
      'Certificate bag',
      'PKCS7 Data',
      'Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256',
    ]);
    const key = await openssl(['pkcs12', '-in', join(dir, 'server.pfx'), '-passin', `pass:${DEV_PFX_PASSPHRASE}`, '-nocerts', '-nodes']);
    expect(key).to.include(set.server.key.trim().split('\n')[1]);
    // DER: minimal lengths everywhere, version 3 first, 2048 MAC iterations last (RFC 7292 §4).
    expect(lengthViolations(pfx)).to.deep.equal([]);
    const outerHeader = pfx[1] >= 0x80 ? 2 + (pfx[1] & 0x7f) : 2;
    expect([...pfx.subarray(outerHeader, outerHeader + 3)]).to.deep.equal([0x02, 0x01, 0x03]);
    expect([...pfx.subarray(pfx.length - 4)]).to.deep.equal([0x02, 0x02, 0x08, 0x00]);
    // A passphrase longer than one 64-octet block of the MAC key derivation (RFC 7292 Appendix B.2).
    const long = 'a passphrase of more than thirty-two characters';
    expect(() => tls.createSecureContext({ pfx: toPkcs12(set.server, long), passphrase: long })).not.to.throw();
    // The MAC salt is random per blob; the rest of the structure is the same.
    const again = toPkcs12(set.server, DEV_PFX_PASSPHRASE);
    expect(again.equals(pfx)).to.equal(false);
    expect(again.length).to.equal(pfx.length);
  });
});
