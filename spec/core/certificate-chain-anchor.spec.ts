/**
 * buildChain's trust-anchor check and the exact text of every status it writes (issue 16: the handshake specs pass
 * `trusted` only once and compare statuses, not their information, which operators read in the warn lines).
 */
import { X509Certificate } from 'node:crypto';
import type * as tls from 'node:tls';
import { expect } from 'chai';
import { generate } from 'selfsigned';
import { buildChain, statusForVerifyCode } from '../../lib/core/certificate-chain.js';
import { generateDevCertificates, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { X509ChainStatusFlags as S, type X509ChainStatus } from '../../lib/core/policy-errors.js';
import { testCertificates } from '../support/certs.js';

/** A peer chain as Node reports it (leaf first, the last one pointing to itself when it is a root). */
function peer(...pems: string[]): tls.DetailedPeerCertificate {
  const nodes = pems.map((p) => ({ raw: new X509Certificate(p).raw }) as tls.DetailedPeerCertificate);
  nodes.forEach((n, i) => (n.issuerCertificate = nodes[i + 1] ?? n));
  return nodes[0];
}

function x509(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

function info(list: X509ChainStatus[]): Array<[S, string]> {
  return list.map((s) => [s.status, s.statusInformation]);
}

describe('core: certificate chain anchors and status texts', () => {
  let certs: DevCertificates;
  before(async () => {
    certs = await testCertificates();
  });

  it('accepts a leaf signed by any one of the anchors, and a chain that ends in an anchor', () => {
    const anchors = [x509(certs.untrustedCa.cert), x509(certs.ca.cert)];
    expect(buildChain({ peerCertificate: peer(certs.client.cert), trusted: anchors }).chainStatus).to.deep.equal([]);
    expect(buildChain({ peerCertificate: peer(certs.client.cert, certs.ca.cert), trusted: anchors }).chainStatus).to.deep.equal([]);
    expect(buildChain({ peerCertificate: peer(certs.untrustedClient.cert, certs.untrustedCa.cert), trusted: anchors }).chainStatus).to.deep.equal([]);
  });

  it('accepts a pinned leaf that is itself one of the anchors', () => {
    const anchors = [x509(certs.untrustedCa.cert), x509(certs.client.cert)];
    expect(buildChain({ peerCertificate: peer(certs.client.cert), trusted: anchors }).chainStatus).to.deep.equal([]);
  });

  it('does not anchor a leaf on a CA that only has the right name', async () => {
    // A second dev set has a CA named like ours ("CN=Postern Dev CA") with another key: the names link, the signature does not.
    const forged = await generateDevCertificates();
    const chain = buildChain({ peerCertificate: peer(certs.client.cert), trusted: [x509(forged.ca.cert)] });
    expect(info(chain.chainStatus)).to.deep.equal([
      [S.PartialChain, 'issuer CN=Postern Dev CA of CN=postern-client is not available or not trusted'],
    ]);
  });

  it('reports an untrusted self-signed top as UntrustedRoot and an unanchored issuer as PartialChain, with their names', () => {
    const trusted = [x509(certs.ca.cert)];
    expect(info(buildChain({ peerCertificate: peer(certs.selfSignedClient.cert), trusted }).chainStatus)).to.deep.equal([
      [S.UntrustedRoot, 'self-signed CN=postern-self-signed-client is not a trusted root'],
    ]);
    expect(info(buildChain({ peerCertificate: peer(certs.untrustedClient.cert), trusted }).chainStatus)).to.deep.equal([
      [S.PartialChain, 'issuer CN=Postern Untrusted CA of CN=postern-untrusted-client is not available or not trusted'],
    ]);
    expect(info(buildChain({ peerCertificate: peer(certs.untrustedClient.cert, certs.untrustedCa.cert), trusted }).chainStatus)).to.deep.equal([
      [S.UntrustedRoot, 'self-signed CN=Postern Untrusted CA is not a trusted root'],
    ]);
  });

  it('does not take a certificate that only names itself as issuer for a root', async () => {
    // Subject and issuer are both "CN=Postern Dev CA", but the dev CA's key signed it, not its own.
    const impostor = await generate([{ name: 'commonName', value: 'Postern Dev CA' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      ca: { cert: certs.ca.cert, key: certs.ca.key },
    });
    const chain = buildChain({ peerCertificate: peer(impostor.cert), trusted: [x509(certs.untrustedCa.cert)] });
    expect(info(chain.chainStatus)).to.deep.equal([[S.PartialChain, 'issuer CN=Postern Dev CA of CN=Postern Dev CA is not available or not trusted']]);
  });

  it('writes every line of a multi-valued name on one line', async () => {
    const multi = await generate(
      [
        { name: 'commonName', value: 'multi' },
        { name: 'organizationName', value: 'Postern' },
      ],
      { keyType: 'ec', algorithm: 'sha256' },
    );
    const chain = buildChain({ peerCertificate: peer(multi.cert), trusted: [x509(certs.ca.cert)] });
    expect(info(chain.chainStatus)).to.deep.equal([[S.UntrustedRoot, 'self-signed CN=multi, O=Postern is not a trusted root']]);
  });

  it('says which certificate expired or is not valid yet, and when', () => {
    const expired = x509(certs.expiredClient.cert);
    expect(info(buildChain({ peerCertificate: peer(certs.expiredClient.cert) }).chainStatus)).to.deep.equal([
      [S.NotTimeValid, `certificate 0 (CN=postern-expired-client) expired at ${expired.validTo}`],
    ]);
    const ca = x509(certs.ca.cert);
    const early = buildChain({ peerCertificate: peer(certs.client.cert, certs.ca.cert), now: new Date(Date.parse(ca.validFrom) - 1000) });
    expect(info(early.chainStatus)).to.deep.equal([
      [S.NotTimeValid, `certificate 0 (CN=postern-client) is not valid before ${x509(certs.client.cert).validFrom}`],
    ]);
  });

  it('numbers the link that is broken: certificate 2 did not issue certificate 1', () => {
    const chain = buildChain({ peerCertificate: peer(certs.client.cert, certs.ca.cert, certs.untrustedCa.cert) });
    expect(info(chain.chainStatus)).to.deep.equal([[S.PartialChain, 'certificate 2 did not issue certificate 1']]);
  });

  it('names the issuer that is not a CA', async () => {
    const issued = await generate([{ name: 'commonName', value: 'issued-by-a-leaf' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      ca: { cert: certs.client.cert, key: certs.client.key },
    });
    const chain = buildChain({ peerCertificate: peer(issued.cert, certs.client.cert) });
    expect(info(chain.chainStatus)[0]).to.deep.equal([S.InvalidBasicConstraints, 'issuer of certificate 0 (CN=postern-client) is not a CA']);
  });

  it('keeps the bare code as information when the message only repeats it, and reads code-less errors as UNSPECIFIED', () => {
    expect(statusForVerifyCode('CERT_REVOKED', 'CERT_REVOKED')).to.deep.equal({ status: S.Revoked, code: 'CERT_REVOKED', statusInformation: 'CERT_REVOKED' });
    const chain = buildChain({ peerCertificate: peer(certs.client.cert), authorizationError: new Error('odd') });
    expect(chain.chainStatus).to.deep.equal([{ status: S.Other, code: 'UNSPECIFIED', statusInformation: 'UNSPECIFIED: odd' }]);
    expect(buildChain({ peerCertificate: peer(certs.client.cert), authorizationError: '' }).chainStatus).to.deep.equal([]);
  });

  it('stops at a certificate Node could not give in DER', () => {
    const leaf = peer(certs.client.cert);
    leaf.issuerCertificate = { raw: Buffer.from('not DER') } as tls.DetailedPeerCertificate;
    expect(buildChain({ peerCertificate: leaf }).certificates.map((c) => c.subject)).to.deep.equal(['CN=postern-client']);
  });

  it('names a signature that does not verify (a CA of the same name, another key)', async () => {
    const twin = await generateDevCertificates(); // its CA is also "CN=Postern Dev CA"
    const result = buildChain({ peerCertificate: peer(twin.server.cert, certs.ca.cert), trusted: [x509(certs.ca.cert)] });
    expect(info(result.chainStatus)).to.deep.equal([[S.NotSignatureValid, "signature of certificate 0 does not verify with its issuer's key"]]);
  });

  it('calls an untrusted top that is not self-signed a partial chain', () => {
    const result = buildChain({ peerCertificate: peer(certs.client.cert), trusted: [x509(certs.untrustedCa.cert)] });
    expect(info(result.chainStatus)).to.deep.equal([[S.PartialChain, 'issuer CN=Postern Dev CA of CN=' + /CN=([^\n]+)/.exec(x509(certs.client.cert).subject)![1] + ' is not available or not trusted']]);
  });
});
