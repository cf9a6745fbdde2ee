/**
 * Per-listener TLS: a listener with its own `security` (client-certificate policy, certificate) next to listeners on
 * the shared one. Real handshakes: openssl s_client shows whether the server sent a CertificateRequest, node:tls
 * clients show which certificate was served and whether the session goes on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import type { Container } from 'inversify';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { ListenerSecurities, ListenerSecuritiesToken } from '../../lib/core/listener-securities.js';
import { ServerSecurity, ServerSecurityToken } from '../../lib/core/server-security.js';
import { SslProtocols } from '../../lib/core/ssl-protocols.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { createContainer } from '../../lib/di/create-container.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { Logger } from '../../lib/log/logger.js';
import { LineClient } from '../support/line-client.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { hasOpenssl, sClient } from '../support/s-client.js';
import { testCertificates } from '../support/certs.js';
import { resumeHandshake, type ResumeResult } from '../support/tls-resume.js';

describe('core: per-listener TLS (ListenerSecurities)', function () {
  this.timeout(30_000);
  let certs: DevCertificates;
  let dir: string;
  let container: Container | undefined;
  let listeners: Listener[] = [];
  let log: RecordingLogger;
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    dir = mkdtempSync(join(tmpdir(), 'postern-listener-tls-'));
    writeFileSync(join(dir, 'ca.pem'), certs.ca.cert);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const l of listeners) await l.close();
    listeners = [];
    await container?.unbindAllAsync();
    container = undefined;
  });

  /** SMTP and IMAP on port 0; `imaps` requires a client certificate, everything else uses the shared settings. */
  async function start(extra: Partial<PosternConfig> = {}): Promise<Record<string, number>> {
    log = new RecordingLogger();
    container = createContainer(
      {
        tls: { certificate: certs.server, trustedCertificates: certs.ca.cert },
        smtp: { hostname: 'mx.test', smtp: { port: 0 }, smtps: { port: 0 } },
        imap: { imap: { port: 0 }, imaps: { port: 0, security: { requireClientCertificate: true } } },
        ...extra,
      },
      [memoryModule, smtpModule, imapModule],
    );
    container.rebind(Logger).toConstantValue(log);
    listeners = container.getAll(Listener);
    const ports: Record<string, number> = {};
    for (const l of listeners) ports[l.name] = (await l.start()).port;
    return ports;
  }

  const trust = (): tls.ConnectionOptions => ({ ca: certs.ca.cert, servername: 'localhost' });
  const track = (c: LineClient): LineClient => {
    clients.push(c);
    return c;
  };

  describe('with openssl s_client', () => {
    before(async function () {
      if (!(await hasOpenssl())) this.skip(); // `openssl` is installed by .ci/run; pending only on a machine without it
    });

    it('sends a CertificateRequest on imaps (its own security) and none on smtp, smtps and imap (the shared one)', async () => {
      const ports = await start();
      const ca = ['-CAfile', join(dir, 'ca.pem')];
      const imaps = await sClient(ports.imaps!, ca);
      const smtps = await sClient(ports.smtps!, ca);
      const smtp = await sClient(ports.smtp!, ['-starttls', 'smtp', ...ca]);
      const imap = await sClient(ports.imap!, ['-starttls', 'imap', ...ca]);
      for (const run of [imaps, smtps, smtp, imap]) expect(run.stdout).to.match(/Handshake \[length [0-9a-f]+\], Finished/);
      expect(imaps.certificateRequested, 'imaps').to.equal(true);
      expect(smtps.certificateRequested, 'smtps').to.equal(false);
      expect(smtp.certificateRequested, 'smtp STARTTLS').to.equal(false);
      expect(imap.certificateRequested, 'imap STARTTLS').to.equal(false);
    });

    it('sends a CertificateRequest after STARTTLS on a plaintext listener with its own security', async () => {
      const ports = await start({ smtp: { hostname: 'mx.test', smtp: { port: 0, security: { requestClientCertificate: true } }, smtps: { port: 0 } } });
      const ca = ['-CAfile', join(dir, 'ca.pem')];
      expect((await sClient(ports.smtp!, ['-starttls', 'smtp', ...ca])).certificateRequested, 'smtp STARTTLS').to.equal(true);
      expect((await sClient(ports.smtps!, ca)).certificateRequested, 'smtps').to.equal(false);
    });
  });

  it('refuses a client without a certificate on imaps and serves one on smtp STARTTLS', async () => {
    const ports = await start();
    const refused = track(await LineClient.connect(ports.imaps!, { tls: trust() }));
    await refused.closed();
    expect(refused.pending).to.equal('');
    expect((await log.next('tls handshake failed')).meta).to.include({ reason: 'rejected-by-policy', error: 'client certificate refused (policy errors 1)' });

    const smtp = track(await LineClient.connect(ports.smtp!));
    await smtp.expect(/^220 /);
    await smtp.command('EHLO client.test', /^250 /);
    await smtp.command('STARTTLS', /^220 /);
    await smtp.startTls(trust());
    await smtp.command('EHLO client.test', /^250 /);

    const withCert = track(await LineClient.connect(ports.imaps!, { tls: { ...trust(), ...certs.client } }));
    await withCert.expect(/^\* OK /);
  });

  it('serves a listener its own certificate and protocols, the others the shared ones', async () => {
    const ports = await start({ smtp: { hostname: 'mx.test', smtp: { port: 0 }, smtps: { port: 0, security: { certificate: certs.wrongHostServer, protocols: SslProtocols.Tls13 } } } });
    const served = (port: number, options: tls.ConnectionOptions = {}): Promise<{ fingerprint: string; protocol: string | null }> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
          resolve({ fingerprint: s.getPeerCertificate().fingerprint256, protocol: s.getProtocol() });
          s.destroy();
        });
        s.on('error', reject);
      });
    const own = new ServerSecurity({ certificate: certs.wrongHostServer });
    const shared = container!.get(ServerSecurityToken);
    await own.prepare();
    expect((await served(ports.smtps!)).fingerprint).to.equal(own.fingerprint256);
    expect((await served(ports.imaps!, certs.client)).fingerprint).to.equal(shared.fingerprint256);
    expect(own.fingerprint256).to.not.equal(shared.fingerprint256);
    // TLS 1.3 only on smtps: a TLS 1.2 client is refused there and served on imaps.
    const err = await served(ports.smtps!, { maxVersion: 'TLSv1.2' }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    expect(err?.code).to.equal('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    expect((await served(ports.imaps!, { ...certs.client, maxVersion: 'TLSv1.2' })).protocol).to.equal('TLSv1.2');
    own.close();
  });

  it("never resumes a listener's session ticket on a listener with another configuration", async () => {
    // smtps has its own configuration (TLS 1.3 only); imaps needs a client certificate; both serve the shared certificate.
    const ports = await start({ smtp: { hostname: 'mx.test', smtp: { port: 0 }, smtps: { port: 0, security: { protocols: SslProtocols.Tls13 } } } });
    /** One handshake to `port` offering `session`; resolves whether it was resumed and the ticket to offer next. */
    const handshake = (port: number, session?: Buffer): Promise<ResumeResult> => resumeHandshake(port, { ca: certs.ca.cert, session, ...certs.client });
    const first = await handshake(ports.smtps!);
    expect(first.session).to.be.instanceOf(Buffer);
    expect((await handshake(ports.smtps!, first.session)).reused, 'same listener').to.equal(true);
    expect((await handshake(ports.imaps!, first.session)).reused, 'other listener').to.equal(false);
  });

  it('resolves listeners without their own security to the shared one, and derived ones inherit its certificate', async () => {
    await start();
    const securities = container!.get(ListenerSecuritiesToken);
    const shared = container!.get(ServerSecurityToken);
    expect(securities.securityFor('smtp')).to.equal(shared);
    expect(securities.securityFor('unknown')).to.equal(shared);
    expect(securities.securityFor('imaps')).to.not.equal(shared);
    expect(securities.listenerNames).to.deep.equal(['imaps']);
    expect(securities.securityFor('imaps').requiresClientCertificate).to.equal(true);
    expect(shared.requiresClientCertificate).to.equal(false);
    expect(securities.securityFor('imaps').fingerprint256).to.equal(shared.fingerprint256);
  });

  it('uses a ServerSecurity given as it is for every listener it is given to', async () => {
    const shared = new ServerSecurity({ certificate: certs.server });
    const mine = new ServerSecurity({ certificate: certs.wrongHostServer, requireClientCertificate: true, trustedCertificates: certs.ca.cert });
    const securities = new ListenerSecurities(shared, { imaps: mine, pop3s: mine, smtp: undefined });
    try {
      expect(securities.securityFor('imaps')).to.equal(mine);
      expect(securities.securityFor('pop3s')).to.equal(mine);
      expect(securities.securityFor('smtp')).to.equal(shared);
      expect(securities.hasOwnSecurity('smtp')).to.equal(false);
      expect(securities.all()).to.deep.equal([shared, mine]);
      await securities.prepare();
      expect(mine.fingerprint256).to.not.equal(shared.fingerprint256);
    } finally {
      securities.close();
      mine.close();
      shared.close();
    }
  });

  it('makes a derived configuration follow the shared generated certificate and its replacement', async () => {
    const shared = new ServerSecurity({});
    const securities = new ListenerSecurities(shared, { imaps: { requestClientCertificate: true } });
    try {
      await securities.prepare();
      const derived = securities.securityFor('imaps');
      expect(shared.isSelfSigned).to.equal(true);
      expect(derived.isSelfSigned).to.equal(true);
      expect(derived.fingerprint256).to.equal(shared.fingerprint256);
      const reloaded = new Promise<void>((resolve) => (derived.onReload = resolve));
      await shared.useCertificate(certs.server);
      await reloaded;
      expect(shared.isSelfSigned).to.equal(false);
      expect(derived.isSelfSigned).to.equal(false);
      expect(derived.fingerprint256).to.equal(shared.fingerprint256);
      expect(derived.acmeChallenges).to.equal(shared.acmeChallenges);
    } finally {
      securities.close();
      shared.close();
    }
  });
});
