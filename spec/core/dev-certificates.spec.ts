import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as tls from 'node:tls';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  DEV_PFX_PASSPHRASE,
  generateDevCertificates,
  toPkcs12,
  writeDevCertificates,
  type DevCertificates,
} from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';

describe('dev certificates', () => {
  let certs: DevCertificates;
  let ca: X509Certificate;

  before(async () => {
    certs = await testCertificates();
    ca = new X509Certificate(certs.ca.cert);
  });

  it('memoises the test set', async () => {
    expect(await testCertificates()).to.equal(certs);
  });

  it('makes a self-signed CA with cA and keyCertSign', () => {
    expect(ca.ca).to.equal(true);
    expect(ca.checkIssued(ca)).to.equal(true);
    expect(ca.verify(ca.publicKey)).to.equal(true);
  });

  it('makes a localhost server certificate signed by the CA for localhost, 127.0.0.1 and ::1', () => {
    const server = new X509Certificate(certs.server.cert);
    expect(server.ca).to.equal(false);
    expect(server.checkIssued(ca)).to.equal(true);
    expect(server.verify(ca.publicKey)).to.equal(true);
    expect(server.checkHost('localhost')).to.equal('localhost');
    expect(server.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(server.checkIP('::1')).to.equal('::1');
    expect(server.checkHost('other.example')).to.equal(undefined);
    expect(server.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']); // id-kp-serverAuth, RFC 5280 §4.2.1.12
    expect(server.checkPrivateKey(createPrivateKey(certs.server.key))).to.equal(true);
    expect(server.publicKey.asymmetricKeyType).to.equal('ec');
    expect(server.toLegacyObject().asn1Curve).to.equal('prime256v1');
  });

  it('makes a client certificate signed by the CA for clientAuth', () => {
    const client = new X509Certificate(certs.client.cert);
    expect(client.subject).to.equal('CN=postern-client');
    expect(client.verify(ca.publicKey)).to.equal(true);
    expect(client.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']); // id-kp-clientAuth
    expect(client.checkPrivateKey(createPrivateKey(certs.client.key))).to.equal(true);
  });

  it('makes an untrusted client certificate that the dev CA did not sign', () => {
    const client = new X509Certificate(certs.untrustedClient.cert);
    const other = new X509Certificate(certs.untrustedCa.cert);
    expect(client.verify(ca.publicKey)).to.equal(false);
    expect(client.verify(other.publicKey)).to.equal(true);
  });

  it('makes an expired client certificate signed by the CA', () => {
    const expired = new X509Certificate(certs.expiredClient.cert);
    expect(expired.verify(ca.publicKey)).to.equal(true);
    expect(new Date(expired.validTo).getTime()).to.be.below(Date.now());
  });

  it('makes a self-signed client certificate', () => {
    const self = new X509Certificate(certs.selfSignedClient.cert);
    expect(self.issuer).to.equal(self.subject);
    expect(self.verify(self.publicKey)).to.equal(true);
  });

  it('makes a wrong-host server certificate for other.example only', () => {
    const wrong = new X509Certificate(certs.wrongHostServer.cert);
    expect(wrong.verify(ca.publicKey)).to.equal(true);
    expect(wrong.checkHost('other.example')).to.equal('other.example');
    expect(wrong.checkHost('localhost')).to.equal(undefined);
    expect(wrong.checkIP('127.0.0.1')).to.equal(undefined);
  });

  it('puts IP literals from hosts into IP SANs', async () => {
    const custom = await generateDevCertificates({ hosts: ['mail.test', '10.0.0.1'], days: 2 });
    const server = new X509Certificate(custom.server.cert);
    expect(server.subject).to.equal('CN=mail.test');
    expect(server.checkHost('mail.test')).to.equal('mail.test');
    expect(server.checkIP('10.0.0.1')).to.equal('10.0.0.1');
    expect(new Date(server.validTo).getTime() - Date.now()).to.be.within(86_400_000, 2 * 86_400_000);
  });

  it('writes the PEM files with private keys readable by the owner only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-certs-'));
    try {
      const { files } = await writeDevCertificates(dir, certs);
      expect(files).to.have.length(12);
      expect((await readdir(dir)).sort()).to.deep.equal([
        'ca-key.pem', 'ca.pem', 'client-key.pem', 'client.pem', 'expired-client-key.pem', 'expired-client.pem',
        'server-key.pem', 'server.pem', 'server.pfx', 'untrusted-ca.pem', 'untrusted-client-key.pem', 'untrusted-client.pem',
      ]);
      expect((await stat(join(dir, 'server-key.pem'))).mode & 0o777).to.equal(0o600);
      expect((await stat(join(dir, 'server.pfx'))).mode & 0o777).to.equal(0o600);
      expect(await readFile(join(dir, 'server.pem'), 'utf8')).to.equal(certs.server.cert);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('PKCS#12', () => {
    it('refuses the wrong passphrase (MAC check)', () => {
      const pfx = toPkcs12(certs.server, DEV_PFX_PASSPHRASE);
      expect(() => tls.createSecureContext({ pfx, passphrase: 'wrong' })).to.throw();
    });

    it('serves a TLS handshake that a client pinning the dev CA accepts', async () => {
      const pfx = toPkcs12(certs.server, DEV_PFX_PASSPHRASE);
      const server = tls.createServer({ pfx, passphrase: DEV_PFX_PASSPHRASE }, (socket) => socket.end());
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const client = tls.connect({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        servername: 'localhost',
        ca: [certs.ca.cert],
      });
      try {
        await once(client, 'secureConnect');
        expect(client.authorized).to.equal(true);
        expect(client.getPeerCertificate().fingerprint256).to.equal(new X509Certificate(certs.server.cert).fingerprint256);
      } finally {
        client.destroy();
        const closed = once(server, 'close');
        server.close();
        await closed;
      }
    });
  });
});
