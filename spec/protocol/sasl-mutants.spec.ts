/**
 * SASL edges found by mutation testing (issue 16): a whole CRAM-MD5 exchange through the engine, EXTERNAL's
 * certificate check and its refusals (a mapper that answers an empty login, an authorization identity equal to the
 * mapped login without `mayAuthorize`), and EXTERNAL kept off a TLS session without a client certificate on a real
 * listener that does not ask for one.
 */
import { createHmac, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import type { CertificateLoginMapper } from '../../lib/contracts/certificate-login.js';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { CRAM_MD5 } from '../../lib/protocol/sasl/cram-md5.js';
import { ExternalMechanism, hasValidatedClientCertificate } from '../../lib/protocol/sasl/external.js';
import { runSaslExchange, type ContinuationResult } from '../../lib/protocol/sasl/sasl-engine.js';
import { SaslMalformedError, type SaslSessionInfo } from '../../lib/protocol/sasl/sasl-mechanism.js';
import { startAll, type AllProtocols } from '../support/all-protocols.js';
import { testCertificates } from '../support/certs.js';

function peer(security: PeerInfo['security']): PeerInfo {
  return { id: 'c1', protocol: 'imaps', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, security };
}

describe('protocol: SASL edges (mutation testing)', () => {
  let certificate: X509Certificate;
  before(async () => {
    certificate = new X509Certificate((await testCertificates()).server.cert);
  });

  it('runs a whole CRAM-MD5 exchange: the challenge, then user and HMAC digest checked against the secret', async () => {
    const session: SaslSessionInfo = { peer: peer({ tls: true, policyErrors: SslPolicyErrors.None }), hostname: 'mx.test', supportsSharedSecrets: true };
    const challenges: string[] = [];
    const outcome = await runSaslExchange(CRAM_MD5, session, undefined, async (c): Promise<ContinuationResult> => {
      challenges.push(Buffer.from(c, 'base64').toString('utf8'));
      const digest = createHmac('md5', 'tanstaaf').update(challenges[0]).digest('hex');
      return { kind: 'line', text: Buffer.from(`tim ${digest}`).toString('base64') };
    });
    expect(challenges).to.have.length(1);
    expect(challenges[0]).to.match(/^<[0-9a-f]{16}\.\d+@mx\.test>$/);
    expect(outcome.kind).to.equal('done');
    const credentials = outcome.kind === 'done' ? outcome.credentials : undefined;
    expect(credentials?.username).to.equal('tim');
    expect(credentials?.verifyWithSecret?.('tanstaaf')).to.equal(true);
    expect(credentials?.verifyWithSecret?.('wrong')).to.equal(false);
  });

  it('names its malformed-message error SaslMalformedError', () => {
    expect(new SaslMalformedError('x').name).to.equal('SaslMalformedError');
  });

  it('counts a client certificate as validated only on TLS, when present, and without policy errors', () => {
    expect(hasValidatedClientCertificate(peer({ tls: true, peerCertificate: certificate, policyErrors: SslPolicyErrors.None }))).to.equal(true);
    expect(hasValidatedClientCertificate(peer({ tls: true, policyErrors: SslPolicyErrors.None }))).to.equal(false);
    expect(hasValidatedClientCertificate(peer({ tls: false, peerCertificate: certificate, policyErrors: SslPolicyErrors.None }))).to.equal(false);
    expect(hasValidatedClientCertificate(peer({ tls: true, peerCertificate: certificate, policyErrors: SslPolicyErrors.RemoteCertificateChainErrors }))).to.equal(false);
  });

  describe('EXTERNAL refusals', () => {
    function session(): SaslSessionInfo {
      return { peer: peer({ tls: true, peerCertificate: certificate, policyErrors: SslPolicyErrors.None }), hostname: 'mx.test', supportsSharedSecrets: false };
    }
    async function external(mapper: CertificateLoginMapper, authzid: string): Promise<unknown> {
      return (await new ExternalMechanism(mapper).start(session()).next(Buffer.from(authzid)));
    }

    it('rejects a certificate the mapper maps to the empty login, naming the asked identity or else the fingerprint', async () => {
      const mapper: CertificateLoginMapper = { loginFor: () => '' };
      expect(await external(mapper, '')).to.deep.equal({ rejected: { username: certificate.fingerprint256 } });
      expect(await external(mapper, 'bob')).to.deep.equal({ rejected: { username: 'bob' } });
      expect(await external({ loginFor: () => undefined }, '')).to.deep.equal({ rejected: { username: certificate.fingerprint256 } });
    });

    it('accepts an authorization identity equal to the mapped login without asking mayAuthorize', async () => {
      const mapper: CertificateLoginMapper = { loginFor: () => 'alice' };
      expect(await external(mapper, 'alice')).to.deep.equal({
        done: { username: 'alice', external: { certificateLogin: 'alice', fingerprint256: certificate.fingerprint256 } },
      });
      expect(await external(mapper, 'bob')).to.deep.equal({ rejected: { username: 'alice' } });
    });
  });

  describe('on a TLS listener that does not ask for client certificates', () => {
    let all: AllProtocols | undefined;
    after(async () => all?.close());

    it('does not offer EXTERNAL, and refuses it as an unsupported mechanism', async () => {
      all = await startAll({ certLogin: 'cn' });
      const c = await all.connect('imaps', { tls: true });
      await c.expect(/^\* OK /);
      const caps = await c.command('a CAPABILITY', /^a /);
      expect(caps[0]).to.match(/^\* CAPABILITY .*AUTH=PLAIN/);
      expect(caps[0]).not.to.include('AUTH=EXTERNAL');
      expect(await c.command('b AUTHENTICATE EXTERNAL =', /^b /)).to.deep.equal(['b NO [CANNOT] Unsupported authentication mechanism']);
    });
  });
});
