import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { expect } from 'chai';
import { generate } from 'selfsigned';
import {
  buildChain,
  hasChainErrors,
  OPENSSL_VERIFY_CODE_STATUS,
  statusForVerifyCode,
} from '../../lib/core/certificate-chain.js';
import { generateDevCertificates, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { describePolicyErrors, SslPolicyErrors, X509ChainStatusFlags as S } from '../../lib/core/policy-errors.js';
import { testCertificates } from '../support/certs.js';

/** What the server side of a real handshake saw. */
interface Seen {
  peer: tls.DetailedPeerCertificate;
  authorizationError: Error | string | null;
}

describe('certificate chain', () => {
  describe('OpenSSL verify code table', () => {
    const cases: Array<[string, S]> = [
      ['CERT_HAS_EXPIRED', S.NotTimeValid],
      ['CERT_NOT_YET_VALID', S.NotTimeValid],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', S.UntrustedRoot],
      ['SELF_SIGNED_CERT_IN_CHAIN', S.UntrustedRoot],
      ['UNABLE_TO_GET_ISSUER_CERT', S.PartialChain],
      ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', S.PartialChain],
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', S.PartialChain],
      ['CERT_SIGNATURE_FAILURE', S.NotSignatureValid],
      ['CERT_REVOKED', S.Revoked],
      ['INVALID_PURPOSE', S.NotValidForUsage],
      ['INVALID_CA', S.InvalidBasicConstraints],
    ];
    for (const [code, status] of cases) {
      it(`maps ${code} to ${status}`, () => {
        expect(statusForVerifyCode(code)).to.deep.equal({ status, code, statusInformation: code });
      });
    }

    it('maps unknown codes to Other and keeps the code', () => {
      expect(statusForVerifyCode('UNSPECIFIED')).to.include({ status: S.Other, code: 'UNSPECIFIED' });
      expect(OPENSSL_VERIFY_CODE_STATUS).to.not.have.property('UNSPECIFIED');
    });

    it('treats host name mismatch codes as no chain error', () => {
      expect(statusForVerifyCode('ERR_TLS_CERT_ALTNAME_INVALID')).to.equal(undefined);
      expect(statusForVerifyCode('HOSTNAME_MISMATCH')).to.equal(undefined);
    });

    it('reads the code from an Error and keeps its message as information', async () => {
      const certs = await testCertificates();
      const err = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
      const chain = buildChain({ peerCertificate: fakePeer(certs.client), authorizationError: err });
      expect(chain.chainStatus[0]).to.deep.equal({
        status: S.NotTimeValid,
        code: 'CERT_HAS_EXPIRED',
        statusInformation: 'CERT_HAS_EXPIRED: certificate has expired',
      });
    });
  });

  describe('policy error flags', () => {
    it('uses the .NET values', () => {
      expect([SslPolicyErrors.None, SslPolicyErrors.RemoteCertificateNotAvailable,
        SslPolicyErrors.RemoteCertificateNameMismatch, SslPolicyErrors.RemoteCertificateChainErrors]).to.deep.equal([0, 1, 2, 4]);
    });

    it('describes combined flags by name', () => {
      expect(describePolicyErrors(SslPolicyErrors.None)).to.deep.equal(['None']);
      expect(describePolicyErrors(SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateChainErrors))
        .to.deep.equal(['RemoteCertificateNameMismatch', 'RemoteCertificateChainErrors']);
      expect(describePolicyErrors(9)).to.deep.equal(['RemoteCertificateNotAvailable', 'Unknown(0x8)']);
    });
  });

  describe('own checks without a handshake', () => {
    it('reports NotTimeValid from the dates even when OpenSSL reported nothing', async () => {
      const certs = await testCertificates();
      const chain = buildChain({ peerCertificate: fakePeer(certs.client), now: new Date(Date.now() + 400 * 86_400_000) });
      expect(statuses(chain.chainStatus)).to.deep.equal([S.NotTimeValid]);
    });

    it('reports every problem OpenSSL did not mention: untrusted issuer and expiry together', async () => {
      const certs = await testCertificates();
      const chain = buildChain({
        peerCertificate: fakePeer(certs.untrustedClient),
        authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        trusted: [new X509Certificate(certs.ca.cert)],
        now: new Date(Date.now() + 400 * 86_400_000),
      });
      expect(statuses(chain.chainStatus)).to.deep.equal([S.PartialChain, S.NotTimeValid]);
      expect(chain.chainStatus[0].code).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('reports NotSignatureValid when a link does not verify', async () => {
      const certs = await testCertificates();
      // A second dev set has a CA with the same name as ours but a different key.
      const forged = await generateDevCertificates();
      const leaf = fakePeer(certs.client);
      leaf.issuerCertificate = fakePeer(forged.ca);
      leaf.issuerCertificate.issuerCertificate = leaf.issuerCertificate;
      const chain = buildChain({ peerCertificate: leaf, trusted: [new X509Certificate(forged.ca.cert)] });
      expect(statuses(chain.chainStatus)).to.deep.equal([S.NotSignatureValid]);
    });

    it('reports InvalidBasicConstraints when a leaf acts as issuer', async () => {
      const certs = await testCertificates();
      const issued = await generate([{ name: 'commonName', value: 'issued-by-a-leaf' }], {
        keyType: 'ec',
        algorithm: 'sha256',
        ca: { cert: certs.client.cert, key: certs.client.key },
      });
      const leaf = fakePeer({ cert: issued.cert, key: issued.private });
      leaf.issuerCertificate = fakePeer(certs.client);
      const chain = buildChain({ peerCertificate: leaf });
      expect(statuses(chain.chainStatus)).to.deep.equal([S.InvalidBasicConstraints]);
    });

    it('reports PartialChain when the next certificate did not issue the previous one', async () => {
      const certs = await testCertificates();
      const leaf = fakePeer(certs.client);
      leaf.issuerCertificate = fakePeer(certs.server);
      const chain = buildChain({ peerCertificate: leaf });
      expect(statuses(chain.chainStatus)).to.deep.equal([S.PartialChain]);
    });

    it('returns an empty chain for an absent certificate', () => {
      const chain = buildChain({ peerCertificate: {} as tls.DetailedPeerCertificate, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT' });
      expect(chain).to.deep.equal({ certificates: [], chainStatus: [] });
      expect(buildChain({ peerCertificate: undefined }).certificates).to.deep.equal([]);
    });
  });

  describe('real TLS handshakes (server side)', () => {
    let certs: DevCertificates;
    let trusted: X509Certificate[];
    let server: tls.Server | undefined;
    const sockets: tls.TLSSocket[] = [];

    before(async () => {
      certs = await testCertificates();
      trusted = [new X509Certificate(certs.ca.cert)];
    });

    afterEach(async () => {
      for (const s of sockets.splice(0)) s.destroy();
      if (server !== undefined) {
        const closed = once(server, 'close');
        server.close();
        await closed;
        server = undefined;
      }
    });

    /** Handshakes with `clientCert` (or none) and returns what the server saw. */
    async function handshake(clientCert: PemPair | undefined): Promise<Seen> {
      server = tls.createServer({
        cert: certs.server.cert,
        key: certs.server.key,
        ca: [certs.ca.cert],
        requestCert: true,
        rejectUnauthorized: false,
      });
      const seen = new Promise<Seen>((resolve) => {
        server?.once('secureConnection', (socket: tls.TLSSocket) => {
          sockets.push(socket);
          socket.on('error', () => undefined);
          resolve({ peer: socket.getPeerCertificate(true), authorizationError: socket.authorizationError });
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const client = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: [certs.ca.cert],
        ...(clientCert !== undefined ? { cert: clientCert.cert, key: clientCert.key } : {}),
      });
      sockets.push(client);
      client.on('error', () => undefined);
      await once(client, 'secureConnect');
      expect(client.authorized).to.equal(true);
      return seen;
    }

    function chainFor(seen: Seen) {
      return buildChain({ peerCertificate: seen.peer, authorizationError: seen.authorizationError, trusted });
    }

    it('reports no status for a valid client certificate', async () => {
      const seen = await handshake(certs.client);
      expect(seen.authorizationError).to.equal(null);
      const chain = chainFor(seen);
      expect(chain.chainStatus).to.deep.equal([]);
      expect(hasChainErrors(chain)).to.equal(false);
      expect(chain.certificates[0].subject).to.equal('CN=postern-client');
    });

    it('reports UntrustedRoot or PartialChain for a client signed by an untrusted CA', async () => {
      const seen = await handshake(certs.untrustedClient);
      const chain = chainFor(seen);
      expect(hasChainErrors(chain)).to.equal(true);
      expect(statuses(chain.chainStatus)).to.satisfy((s: S[]) => s.includes(S.UntrustedRoot) || s.includes(S.PartialChain));
      expect(chain.chainStatus[0].code).to.equal(seen.authorizationError);
    });

    it('reports NotTimeValid for an expired client certificate signed by the trusted CA', async () => {
      const seen = await handshake(certs.expiredClient);
      expect(seen.authorizationError).to.equal('CERT_HAS_EXPIRED');
      expect(statuses(chainFor(seen).chainStatus)).to.deep.equal([S.NotTimeValid]);
    });

    it('reports UntrustedRoot for a self-signed client certificate', async () => {
      const seen = await handshake(certs.selfSignedClient);
      expect(seen.authorizationError).to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
      const chain = chainFor(seen);
      expect(chain.certificates).to.have.length(1);
      expect(statuses(chain.chainStatus)).to.deep.equal([S.UntrustedRoot]);
    });

    it('returns no certificates and no status when the client sends none', async () => {
      const seen = await handshake(undefined);
      const chain = chainFor(seen);
      expect(chain).to.deep.equal({ certificates: [], chainStatus: [] });
    });
  });
});

function statuses(list: ReadonlyArray<{ status: S }>): S[] {
  return list.map((s) => s.status);
}

/** A DetailedPeerCertificate carrying only `raw`, which is all buildChain reads. */
function fakePeer(pair: PemPair): tls.DetailedPeerCertificate {
  return { raw: new X509Certificate(pair.cert).raw } as tls.DetailedPeerCertificate;
}
