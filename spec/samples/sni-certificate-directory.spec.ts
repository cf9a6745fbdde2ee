import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { generateServerCertificate, toPkcs12, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { startSniServer } from '../../samples/sni-certificate-directory.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import { atomicWrite } from '../support/atomic-write.js';

describe('samples: sni-certificate-directory.ts (certificates per SNI name from a watched directory)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let a: PemPair;
  let b: PemPair;
  let dir: string;
  let running: Awaited<ReturnType<typeof startSniServer>> | undefined;
  const clients: LineClient[] = [];
  const port = (name: string): number => running!.ready.find((l) => l.name === name)!.port;
  const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

  before(async () => {
    certs = await testCertificates();
    [a, b] = await Promise.all([generateServerCertificate(certs.ca, ['mail.a.test']), generateServerCertificate(certs.ca, ['mail.b.test'])]);
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-sni-sample-'));
    await writeFile(path.join(dir, 'ca.pem'), certs.ca.cert);
    await writeFile(path.join(dir, 'mail.a.test.pem'), a.cert);
    await writeFile(path.join(dir, 'mail.a.test-key.pem'), a.key);
    await writeFile(path.join(dir, 'mail.b.test.pfx'), toPkcs12(b, 'sample'));
    running = await startSniServer({ directory: dir, passphrase: 'sample', defaultCertificate: certs.server, debounceMs: 20, anyPort: true, log: { silent: true } });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await running?.close();
    running = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Implicit TLS to imaps with the dev client certificate: the fingerprint served for `servername`. */
  function imapsServes(servername: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: port('imaps'), servername, ca: certs.ca.cert, ...certs.client }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.destroy();
      });
      s.on('error', reject);
    });
  }

  it('serves mail.a.test and mail.b.test their own certificates on IMAPS, and other names the default', async () => {
    expect(await imapsServes('mail.a.test')).to.equal(fingerprint(a.cert));
    expect(await imapsServes('mail.b.test')).to.equal(fingerprint(b.cert));
    expect(await imapsServes('localhost')).to.equal(fingerprint(certs.server.cert));
  });

  it('serves the SNI certificate after STARTTLS on SMTP, where no client certificate is asked for', async () => {
    const c = await LineClient.connect(port('smtp'));
    clients.push(c);
    await c.expect(/^220 /);
    await c.command('EHLO client.test', /^250 /);
    await c.command('STARTTLS', /^220 /);
    const socket = await c.startTls({ ca: certs.ca.cert, servername: 'mail.b.test' });
    expect(socket.getPeerCertificate().fingerprint256).to.equal(fingerprint(b.cert));
    await c.command('EHLO client.test', /^250 /);
  });

  it('refuses an IMAPS client without a certificate, and greets one with a certificate from the directory CA', async () => {
    const without = await LineClient.connect(port('imaps'), { tls: { ca: certs.ca.cert, servername: 'mail.a.test' } });
    clients.push(without);
    await without.closed();
    expect(without.pending).to.equal('');
    const withCert = await LineClient.connect(port('imaps'), { tls: { ca: certs.ca.cert, servername: 'mail.a.test', ...certs.client } });
    clients.push(withCert);
    await withCert.expect(/^\* OK /);
  });

  it('serves a certificate added to the directory without a restart', async () => {
    const c = await generateServerCertificate(certs.ca, ['mail.c.test']);
    const changed = new Promise<void>((resolve) => running!.certificates.onChange(resolve));
    await atomicWrite(path.join(dir, 'mail.c.test.pem'), c.cert + c.key);
    await changed;
    expect(await imapsServes('mail.c.test')).to.equal(fingerprint(c.cert));
  });
});
