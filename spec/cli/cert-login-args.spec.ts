import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { parseCliArgs, UsageError } from '../../lib/cli/cli-args.js';
import { FingerprintLoginMapper, parseFingerprintTable } from '../../lib/backends/certificate-login-mappers.js';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { testCertificates } from '../support/certs.js';

describe('cli: --cert-login and the fingerprint table format', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-cert-login-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('maps cn, email and a table FILE into config.certLogin, and needs --client-cert', async () => {
    const certs = await testCertificates();
    await writeFile(join(dir, 'ca.pem'), certs.ca.cert);
    const tls = ['--ca', join(dir, 'ca.pem'), '--client-cert', 'request'];
    expect(parseCliArgs([...tls, '--cert-login', 'cn']).config.certLogin).to.equal('cn');
    expect(parseCliArgs([...tls, '--cert-login', 'email']).config.certLogin).to.equal('email');
    await writeFile(join(dir, 'table'), '# none yet\n');
    expect(parseCliArgs([...tls, '--cert-login', join(dir, 'table')]).config.certLogin).to.deep.equal({ fingerprintFile: join(dir, 'table') });
    expect(parseCliArgs([]).config.certLogin).to.equal(undefined);
    expect(() => parseCliArgs(['--cert-login', 'cn'])).to.throw(UsageError, '--cert-login needs --client-cert request|require (no certificate, no EXTERNAL)');
  });

  it('refuses an unreadable or malformed table with the line at fault', async () => {
    const tls = ['--ca', join(dir, 'ca.pem'), '--client-cert', 'require'];
    await writeFile(join(dir, 'bad'), `${'AB'.repeat(32)} alice\nnot-a-fingerprint bob\n`);
    expect(() => parseCliArgs([...tls, '--cert-login', join(dir, 'bad')])).to.throw(UsageError, `--cert-login: ${join(dir, 'bad')}: line 2: expected "SHA256-FINGERPRINT LOGIN [AUTHZID…]"`);
    await writeFile(join(dir, 'twice'), `${'ab'.repeat(32)} alice\n${'AB:'.repeat(31)}AB bob\n`);
    expect(() => parseCliArgs([...tls, '--cert-login', join(dir, 'twice')])).to.throw(UsageError, 'line 2: fingerprint listed twice');
    expect(() => parseCliArgs([...tls, '--cert-login', join(dir, 'missing')])).to.throw(UsageError, /--cert-login: .*missing: ENOENT/);
  });

  it('reads fingerprints with or without colons, in any case, and openssl\'s own output line; rows allow authzids', async () => {
    const { client } = await testCertificates();
    const fp = new X509Certificate(client.cert).fingerprint256;
    const table = parseFingerprintTable(`\n# comment\nsha256 Fingerprint=${fp}\tops  alice bob\n${'0'.repeat(64)} carol\n`);
    expect([...table.keys()]).to.deep.equal([fp, `${'00:'.repeat(31)}00`]);
    const mapper = new FingerprintLoginMapper(table);
    const cert = new X509Certificate(client.cert);
    const peer: PeerInfo = {
      id: 'c', protocol: 'imaps', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2,
      security: { tls: true, peerCertificate: cert, policyErrors: SslPolicyErrors.None },
    };
    expect(mapper.loginFor(cert)).to.equal('ops');
    expect([mapper.mayAuthorize('ops', 'bob', peer), mapper.mayAuthorize('ops', 'carol', peer)]).to.deep.equal([true, false]);
  });
});
