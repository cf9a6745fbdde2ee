/**
 * Client-certificate policy on every listener: SMTP, POP3 and IMAP, implicit TLS and the STARTTLS/STLS upgrade,
 * each certificate kind (valid, expired, untrusted, not for client use, none), with the certificate requested or
 * required. Real certificates from the dev CA, real handshakes, the real protocol modules in a container.
 */
import { expect } from 'chai';
import type { ContainerModule } from 'inversify';
import { SslPolicyErrors, X509ChainStatusFlags, type X509Chain } from '../../lib/core/policy-errors.js';
import type { ServerSecurityOptions } from '../../lib/core/server-security.js';
import type { DevCertificates, PemPair } from '../../lib/core/dev-certificates.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { Logger } from '../../lib/log/logger.js';
import { LineClient } from '../support/line-client.js';
import { startProtocol, type ProtocolHarness } from '../support/protocol-harness.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { testCertificates } from '../support/certs.js';

/** How one protocol greets, upgrades and answers a harmless command. */
interface ProtocolCase {
  readonly name: string;
  readonly plain: string;
  readonly secure: string;
  readonly modules: ContainerModule[];
  readonly config: PosternConfig;
  readonly greeting: RegExp;
  /** Commands before the upgrade command (SMTP needs EHLO first). */
  readonly beforeUpgrade: ReadonlyArray<[string, RegExp]>;
  readonly upgrade: [string, RegExp];
  /** A command every state answers, and its last reply line. */
  readonly probe: [string, RegExp];
}

const PROTOCOLS: readonly ProtocolCase[] = [
  {
    name: 'SMTP',
    plain: 'smtp',
    secure: 'smtps',
    modules: [memoryModule, smtpModule],
    config: { smtp: { hostname: 'mx.test', smtp: { port: 0 }, smtps: { port: 0 } } },
    greeting: /^220 /,
    beforeUpgrade: [['EHLO client.test', /^250 /]],
    upgrade: ['STARTTLS', /^220 2\.0\.0 /],
    probe: ['NOOP', /^250 2\.0\.0 OK$/],
  },
  {
    name: 'POP3',
    plain: 'pop3',
    secure: 'pop3s',
    modules: [memoryModule, pop3Module],
    config: { pop3: { pop3: { port: 0 }, pop3s: { port: 0 } } },
    greeting: /^\+OK /,
    beforeUpgrade: [],
    upgrade: ['STLS', /^\+OK/],
    probe: ['CAPA', /^\.$/],
  },
  {
    name: 'IMAP',
    plain: 'imap',
    secure: 'imaps',
    modules: [memoryModule, imapModule],
    config: { imap: { imap: { port: 0 }, imaps: { port: 0 } } },
    greeting: /^\* OK /,
    beforeUpgrade: [],
    upgrade: ['u STARTTLS', /^u OK /],
    probe: ['p NOOP', /^p OK /],
  },
];

/** A client certificate kind and what the server must make of it. */
interface CertCase {
  readonly name: string;
  readonly pick: (c: DevCertificates) => PemPair | undefined;
  readonly flags: SslPolicyErrors;
  /** The TLS stack's chain status (first entry) and OpenSSL verify code; none for a clean chain. */
  readonly status?: X509ChainStatusFlags;
  readonly code?: string;
  /** Accepted by the default policy when the certificate is only requested / when it is required. */
  readonly acceptedWhenRequested: boolean;
  readonly acceptedWhenRequired: boolean;
}

const CERTS: readonly CertCase[] = [
  { name: 'a valid certificate', pick: (c) => c.client, flags: SslPolicyErrors.None, acceptedWhenRequested: true, acceptedWhenRequired: true },
  { name: 'no certificate', pick: () => undefined, flags: SslPolicyErrors.RemoteCertificateNotAvailable, acceptedWhenRequested: true, acceptedWhenRequired: false },
  {
    name: 'an expired certificate',
    pick: (c) => c.expiredClient,
    flags: SslPolicyErrors.RemoteCertificateChainErrors,
    status: X509ChainStatusFlags.NotTimeValid,
    code: 'CERT_HAS_EXPIRED',
    acceptedWhenRequested: false,
    acceptedWhenRequired: false,
  },
  {
    name: 'a certificate from an untrusted CA',
    pick: (c) => c.untrustedClient,
    flags: SslPolicyErrors.RemoteCertificateChainErrors,
    status: X509ChainStatusFlags.PartialChain,
    code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    acceptedWhenRequested: false,
    acceptedWhenRequired: false,
  },
  {
    name: 'a server-only certificate (wrong extended key usage)',
    pick: (c) => c.server,
    flags: SslPolicyErrors.RemoteCertificateChainErrors,
    status: X509ChainStatusFlags.NotValidForUsage,
    code: 'INVALID_PURPOSE',
    acceptedWhenRequested: false,
    acceptedWhenRequired: false,
  },
];

describe('core: client-certificate policy on every listener', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let h: ProtocolHarness | undefined;
  let log: RecordingLogger;

  before(async () => {
    certs = await testCertificates();
  });
  const clients: LineClient[] = [];
  const track = (c: LineClient): LineClient => {
    clients.push(c);
    return c;
  };

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await h?.close();
    h = undefined;
  });

  async function start(p: ProtocolCase, tls: Partial<ServerSecurityOptions>): Promise<ProtocolHarness> {
    log = new RecordingLogger();
    h = await startProtocol({
      config: { ...p.config, tls: { certificate: certs.server, trustedCertificates: certs.ca.cert, ...tls } },
      modules: p.modules,
      plain: p.plain,
      secure: p.secure,
      users: [],
      prepare: (container) => void container.rebind(Logger).toConstantValue(log),
    });
    return h;
  }

  /**
   * Connects with `clientCert` over implicit TLS, or plain + upgrade command + TLS. Resolves once the TLS handshake
   * finished on the client side (in TLS 1.3 that is before the server has judged the client certificate).
   */
  async function handshake(p: ProtocolCase, mode: 'implicit' | 'upgrade', clientCert: PemPair | undefined): Promise<LineClient> {
    const server = h!;
    const tls = { ...server.trust(), ...(clientCert ?? {}) };
    if (mode === 'implicit') return track(await LineClient.connect(server.securePort, { tls }));
    const c = await server.connect();
    await c.expect(p.greeting);
    for (const [cmd, ok] of p.beforeUpgrade) await c.command(cmd, ok);
    await c.command(p.upgrade[0], p.upgrade[1]);
    await c.startTls(tls);
    return c;
  }

  /** The session works: greeting (implicit) and a command answered over TLS. */
  async function expectServed(p: ProtocolCase, mode: 'implicit' | 'upgrade', c: LineClient): Promise<void> {
    if (mode === 'implicit') await c.expect(p.greeting);
    const reply = await c.command(p.probe[0], p.probe[1]);
    expect(reply[reply.length - 1]).to.match(p.probe[1]);
  }

  for (const p of PROTOCOLS) {
    for (const mode of ['implicit', 'upgrade'] as const) {
      const where = mode === 'implicit' ? `${p.secure} (implicit TLS)` : `${p.plain} (${p.upgrade[0].replace(/^u /, '')})`;
      describe(`${p.name} on ${where}`, () => {
        for (const k of CERTS) {
          it(`gives the callback ${SslPolicyErrors[k.flags]}${k.code ? ` with ${k.status} (${k.code})` : ''} for ${k.name}`, async () => {
            const seen: Array<{ flags: SslPolicyErrors; chain: X509Chain; subject?: string }> = [];
            await start(p, {
              requestClientCertificate: true,
              validationCallback: (_sender, cert, chain, flags) => {
                seen.push({ flags, chain, subject: cert?.subject });
                return true;
              },
            });
            const c = await handshake(p, mode, k.pick(certs));
            await expectServed(p, mode, c);
            expect(seen).to.have.length(1);
            expect(seen[0].flags).to.equal(k.flags);
            if (k.status) {
              expect(seen[0].chain.chainStatus[0]).to.include({ status: k.status, code: k.code });
            } else {
              expect(seen[0].chain.chainStatus).to.deep.equal([]);
            }
            expect(seen[0].subject === undefined).to.equal(k.pick(certs) === undefined);
          });

          for (const policy of ['requested', 'required'] as const) {
            const accepted = policy === 'requested' ? k.acceptedWhenRequested : k.acceptedWhenRequired;
            it(`${accepted ? 'accepts' : 'refuses'} ${k.name} when a certificate is ${policy} (default policy)`, async () => {
              await start(p, policy === 'requested' ? { requestClientCertificate: true } : { requireClientCertificate: true });
              const c = await handshake(p, mode, k.pick(certs));
              if (accepted) {
                await expectServed(p, mode, c);
                const established = await log.next('tls established');
                expect(established.meta.policyErrors).to.equal(k.flags);
                expect(log.find('tls handshake failed')).to.deep.equal([]);
                return;
              }
              // Refused after the handshake: the server closes without a greeting or any reply, in plaintext or TLS.
              await c.closed();
              expect(c.pending).to.equal('');
              const failed = await log.next('tls handshake failed');
              expect(failed.meta).to.include({ reason: 'rejected-by-policy' });
              expect(failed.meta.error).to.equal(`client certificate refused (policy errors ${k.flags})`);
              expect(log.find('tls established')).to.deep.equal([]);
              // The listener keeps serving: a valid certificate still gets a working session.
              const ok = await handshake(p, mode, certs.client);
              await expectServed(p, mode, ok);
            });
          }
        }
      });
    }
  }
});
