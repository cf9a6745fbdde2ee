/**
 * Server-side chain statuses in full: for an expired, an untrusted and a serverAuth-only client certificate the
 * validation callback gets exactly these `chainStatus` entries (OpenSSL's verify code with its text first, then
 * Postern's own findings) and `RemoteCertificateChainErrors`, on an implicit-TLS listener and after STARTTLS. The
 * client-certificate matrix (client-certificate-listeners.spec) checks the first entry on all six listeners; this
 * pins `statusInformation` and the complete list, and that a listener's own trust anchors decide on that listener.
 */
import { expect } from 'chai';
import type { Container } from 'inversify';
import type { DevCertificates, PemPair } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors, X509ChainStatusFlags, type X509ChainStatus } from '../../lib/core/policy-errors.js';
import type { RemoteCertificateValidationCallback } from '../../lib/core/policy-errors.js';
import { createContainer } from '../../lib/di/create-container.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

const S = X509ChainStatusFlags;

describe('core: server-side chain statuses of client certificates', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let container: Container | undefined;
  let listeners: Listener[] = [];
  const clients: LineClient[] = [];
  let seen: Array<{ flags: SslPolicyErrors; chainStatus: X509ChainStatus[]; subject?: string }> = [];

  before(async () => {
    certs = await testCertificates();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const l of listeners) await l.close();
    listeners = [];
    await container?.unbindAllAsync();
    container = undefined;
    seen = [];
  });

  const record: RemoteCertificateValidationCallback = (_sender, cert, chain, flags) => {
    seen.push({ flags, chainStatus: chain.chainStatus.map((s) => ({ ...s })), subject: cert?.subject });
    return true;
  };

  /** smtp and smtps; smtps may trust other CAs than the shared configuration. */
  async function start(smtpsTrust?: string): Promise<{ smtp: number; smtps: number }> {
    container = createContainer(
      {
        log: { silent: true },
        tls: { certificate: certs.server, trustedCertificates: certs.ca.cert, requestClientCertificate: true, validationCallback: record },
        smtp: { hostname: 'mx.test', smtp: { port: 0 }, smtps: { port: 0, ...(smtpsTrust ? { security: { trustedCertificates: smtpsTrust } } : {}) } },
      },
      [memoryModule, smtpModule],
    );
    listeners = container.getAll(Listener);
    const ports: Record<string, number> = {};
    for (const l of listeners) ports[l.name] = (await l.start()).port;
    return { smtp: ports.smtp!, smtps: ports.smtps! };
  }

  const trust = (cert: PemPair): { ca: string; servername: string; cert: string; key: string } => ({ ca: certs.ca.cert, servername: 'localhost', ...cert });
  async function implicit(port: number, cert: PemPair): Promise<void> {
    const c = await LineClient.connect(port, { tls: trust(cert) });
    clients.push(c);
    await c.expect(/^220 /);
  }
  async function upgraded(port: number, cert: PemPair): Promise<void> {
    const c = await LineClient.connect(port);
    clients.push(c);
    await c.expect(/^220 /);
    await c.command('EHLO client.test', /^250 /);
    await c.command('STARTTLS', /^220 /);
    await c.startTls(trust(cert));
    await c.command('NOOP', /^250 /);
  }

  const cases: ReadonlyArray<{ name: string; pick: (c: DevCertificates) => PemPair; chainStatus: X509ChainStatus[] }> = [
    {
      name: 'an expired certificate',
      pick: (c) => c.expiredClient,
      chainStatus: [{ status: S.NotTimeValid, code: 'CERT_HAS_EXPIRED', statusInformation: 'CERT_HAS_EXPIRED: certificate has expired' }],
    },
    {
      name: 'a certificate from an untrusted CA',
      pick: (c) => c.untrustedClient,
      chainStatus: [
        { status: S.PartialChain, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', statusInformation: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate' },
      ],
    },
    {
      name: 'a serverAuth-only certificate',
      pick: (c) => c.server,
      chainStatus: [{ status: S.NotValidForUsage, code: 'INVALID_PURPOSE', statusInformation: 'INVALID_PURPOSE: unsuitable certificate purpose' }],
    },
  ];

  for (const k of cases) {
    for (const mode of ['implicit', 'upgraded'] as const) {
      it(`reports exactly ${k.chainStatus.map((s) => s.code).join(', ')} and RemoteCertificateChainErrors for ${k.name} (${mode === 'implicit' ? 'smtps' : 'smtp STARTTLS'})`, async () => {
        const ports = await start();
        if (mode === 'implicit') await implicit(ports.smtps, k.pick(certs));
        else await upgraded(ports.smtp, k.pick(certs));
        expect(seen).to.have.length(1);
        expect(seen[0]!.flags).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
        expect(seen[0]!.chainStatus).to.deep.equal(k.chainStatus);
      });
    }
  }

  it("judges a client certificate by the listener's own trust anchors: untrusted on smtp, valid on smtps", async () => {
    const ports = await start(certs.untrustedCa.cert);
    await implicit(ports.smtps, certs.untrustedClient);
    await upgraded(ports.smtp, certs.untrustedClient);
    expect(seen.map((s) => s.flags)).to.deep.equal([SslPolicyErrors.None, SslPolicyErrors.RemoteCertificateChainErrors]);
    expect(seen[0]!.chainStatus).to.deep.equal([]);
    expect(seen[1]!.chainStatus.map((s) => s.code)).to.deep.equal(['UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
    // And the shared CA's client is the untrusted one on smtps. OpenSSL's client sends its issuer along (it is in the
    // client's own `ca`, and OpenSSL completes the chain it sends), so the verdict is an untrusted root in the chain.
    await implicit(ports.smtps, certs.client);
    expect(seen[2]!.flags).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
    expect(seen[2]!.chainStatus).to.deep.equal([
      { status: S.UntrustedRoot, code: 'SELF_SIGNED_CERT_IN_CHAIN', statusInformation: 'SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain' },
    ]);
  });
});
