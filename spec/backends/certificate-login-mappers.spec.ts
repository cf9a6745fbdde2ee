import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateLoginMapper,
  CommonNameLoginMapper,
  EmailLoginMapper,
  FingerprintLoginMapper,
  normalizeFingerprint,
  parseFingerprintTable,
  subjectCommonNames,
  subjectEmailAddresses,
} from '../../lib/backends/certificate-login-mappers.js';
import { generateClientCertificate } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { testCertificates } from '../support/certs.js';

function peerWith(certificate?: X509Certificate): PeerInfo {
  return {
    id: 'c', protocol: 'imaps', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2,
    security: { tls: true, policyErrors: SslPolicyErrors.None, ...(certificate ? { peerCertificate: certificate } : {}) },
  };
}

// Written against the mutants StrykerJS left alive in certificate-login-mappers.ts (README, "Scores (Stryker").
describe('certificate login mappers: which login a certificate maps to', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-cert-mappers-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('maps cn to the common name and email to the first SAN address; a certificate without them maps to nothing', async () => {
    const certs = await testCertificates();
    const withMail = new X509Certificate((await generateClientCertificate(certs.ca, 'Alice Example', { emails: ['alice@example.test', 'al@example.test'] })).cert);
    expect(subjectCommonNames(withMail)).to.deep.equal(['Alice Example']);
    expect(subjectEmailAddresses(withMail)).to.deep.equal(['alice@example.test', 'al@example.test']);
    expect(new CommonNameLoginMapper().loginFor(withMail)).to.equal('Alice Example');
    expect(new EmailLoginMapper().loginFor(withMail)).to.equal('alice@example.test');
    const plain = new X509Certificate(certs.client.cert);
    expect(subjectEmailAddresses(plain)).to.deep.equal([]);
    expect(new EmailLoginMapper().loginFor(plain)).to.equal(undefined);
    expect(certificateLoginMapper('cn')).to.be.instanceOf(CommonNameLoginMapper);
    expect(certificateLoginMapper('email')).to.be.instanceOf(EmailLoginMapper);
  });

  it('normalises fingerprints with colons, blanks and any case, and refuses anything but 64 hex digits', () => {
    const pairs = 'ab'.repeat(32);
    const canonical = `${'AB:'.repeat(31)}AB`;
    expect(normalizeFingerprint(pairs)).to.equal(canonical);
    expect(normalizeFingerprint(` ${'aB:'.repeat(31)}Ab\t`)).to.equal(canonical);
    expect(normalizeFingerprint(`${pairs.slice(0, 32)} ${pairs.slice(32)}`)).to.equal(canonical);
    for (const bad of ['ab'.repeat(31), 'ab'.repeat(33), `${'ab'.repeat(31)}zz`, `x${pairs}`, `${pairs}x`, '']) {
      expect(normalizeFingerprint(bad), bad).to.equal(undefined);
    }
  });

  it('parses a table with CRLF lines, indentation and comments, and names the line of a row without a login', () => {
    const table = parseFingerprintTable(`  # comment\r\n\r\n  ${'cd'.repeat(32)}   alice  bob\r\n`);
    expect([...table]).to.deep.equal([[`${'CD:'.repeat(31)}CD`, { login: 'alice', mayActAs: ['bob'] }]]);
    expect(() => parseFingerprintTable(`# a\n${'cd'.repeat(32)}\n`)).to.throw(Error, /^line 2: expected "SHA256-FINGERPRINT LOGIN \[AUTHZID…\]"$/);
  });

  it('builds a table mapper from config rows (a login or { login, mayActAs }) and refuses a bad fingerprint by name', async () => {
    const { client } = await testCertificates();
    const cert = new X509Certificate(client.cert);
    const other = 'ef'.repeat(32);
    const mapper = certificateLoginMapper({ fingerprints: { [cert.fingerprint256.toLowerCase()]: { login: 'ops', mayActAs: ['bob'] }, [other]: 'carol' } });
    expect(mapper.loginFor(cert, peerWith(cert))).to.equal('ops');
    expect(mapper.mayAuthorize?.('ops', 'bob', peerWith(cert))).to.equal(true);
    expect(mapper.mayAuthorize?.('ops', 'carol', peerWith(cert))).to.equal(false);
    expect(mapper.mayAuthorize?.('ops', 'bob', peerWith())).to.equal(false);
    const bare = certificateLoginMapper({ fingerprints: { [cert.fingerprint256]: { login: 'ops' } } });
    expect(bare.mayAuthorize?.('ops', 'bob', peerWith(cert))).to.equal(false);
    expect(() => certificateLoginMapper({ fingerprints: { 'not-hex': 'x' } })).to.throw(Error, /^certLogin: "not-hex" is not a SHA-256 fingerprint$/);
  });

  it('reads a table file, and names the file in its refusal', async () => {
    const { client } = await testCertificates();
    const cert = new X509Certificate(client.cert);
    const file = join(dir, 'table');
    await writeFile(file, `${cert.fingerprint256} ops\n`);
    const mapper = certificateLoginMapper({ fingerprintFile: file });
    expect(mapper).to.be.instanceOf(FingerprintLoginMapper);
    expect(mapper.loginFor(cert, peerWith(cert))).to.equal('ops');
    await writeFile(file, 'nonsense\n');
    expect(() => FingerprintLoginMapper.fromFile(file)).to.throw(Error, `${file}: line 1: expected "SHA256-FINGERPRINT LOGIN [AUTHZID…]"`);
  });
});
