/**
 * ServerSecurity at the edges the listener specs leave open (issue 16, mutation testing of
 * `lib/core/server-security.ts`): SNI selection (exact, case, wildcard), the getters, ticket-key guards, a failed
 * certificate switch, derived configurations, the TLS 1.2 cipher policy (AEAD only, server order), and the PEM helpers.
 * Handshakes are real, over loopback.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { certificateOfContext } from '../../lib/core/certificate-store-loader.js';
import { CertificateStore } from '../../lib/core/certificate-store.js';
import { generateServerCertificate, toPkcs12, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { CertificateError, HANDSHAKE_TIMEOUT_MS, ServerSecurity, fingerprintOf, splitPemList, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { generateTicketKeys } from '../../lib/core/ticket-keys.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { heldTimers } from '../support/held-timers.js';
import { resumeHandshake } from '../support/tls-resume.js';
import { closeAfterEach } from '../support/closers.js';

const log = createLogger({ silent: true });

describe('core: ServerSecurity edges (server-security mutants)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let mail: { cert: string; key: string };
  let wild: { cert: string; key: string };
  const closers = closeAfterEach();

  before(async () => {
    certs = await testCertificates();
    [mail, wild] = await Promise.all([generateServerCertificate(certs.ca, ['mail.example.test']), generateServerCertificate(certs.ca, ['*.example.test'])]);
  });

  function security(options: ServerSecurityOptions = {}): ServerSecurity {
    const s = new ServerSecurity({ certificate: certs.server, ...options });
    closers.push(() => s.close());
    return s;
  }

  function cn(context: tls.SecureContext): string | undefined {
    return /CN=([^\n,]+)/.exec(certificateOfContext(context)?.subject ?? '')?.[1];
  }

  /** A loopback server that hands every socket to TLS with `sec`'s options; resolves the client after its handshake. */
  async function handshake(sec: ServerSecurity, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    await sec.prepare();
    const server = net.createServer((socket) => {
      const t = new tls.TLSSocket(socket, sec.socketOptions());
      t.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    return new Promise((resolve, reject) => {
      const c = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', ca: certs.ca.cert, checkServerIdentity: () => undefined, ...options }, () =>
        resolve(c),
      );
      c.once('error', reject);
      closers.push(() => c.destroy());
    });
  }

  describe('SNI selection', () => {
    it('refuses contextFor() before prepare() with CertificateError', () => {
      const sec = security();
      expect(() => sec.contextFor('localhost')).to.throw(CertificateError, 'ServerSecurity.prepare() has not completed');
      expect(sec.isPrepared).to.equal(false);
    });

    it('picks exact names regardless of case, then the *.parent wildcard, else the default', async () => {
      const sec = security({ sni: { 'Mail.Example.Test': mail, '*.example.test': wild } });
      await sec.prepare();
      expect(cn(sec.contextFor())).to.equal('localhost');
      expect(cn(sec.contextFor('mail.example.test'))).to.equal('mail.example.test');
      expect(cn(sec.contextFor('MAIL.EXAMPLE.TEST'))).to.equal('mail.example.test');
      expect(cn(sec.contextFor('imap.example.test'))).to.equal('*.example.test');
      expect(cn(sec.contextFor('IMAP.Example.Test'))).to.equal('*.example.test');
      // One label only (RFC 6125 §6.4.3), and a name that starts with the dot is no host under the parent.
      expect(cn(sec.contextFor('a.b.example.test'))).to.equal('localhost');
      expect(cn(sec.contextFor('example.test'))).to.equal('localhost');
      expect(cn(sec.contextFor('.example.test'))).to.equal('localhost');
      expect(cn(sec.contextFor('other.test'))).to.equal('localhost');
    });

    it('serves the SNI certificate in a real handshake, and the default to a client without SNI', async () => {
      const sec = security({ sni: { '*.example.test': wild } });
      const named = await handshake(sec, { servername: 'smtp.example.test' });
      expect(named.getPeerCertificate().subject.CN).to.equal('*.example.test');
      const unnamed = await handshake(sec, {});
      expect(unnamed.getPeerCertificate().subject.CN).to.equal('localhost');
    });
  });

  describe('getters and guards', () => {
    it('requestClientCertificate asks; requireClientCertificate asks and requires; neither does neither', () => {
      const none = security();
      expect([none.requestsClientCertificate, none.requiresClientCertificate]).to.deep.equal([false, false]);
      const asks = security({ requestClientCertificate: true });
      expect([asks.requestsClientCertificate, asks.requiresClientCertificate]).to.deep.equal([true, false]);
      const needs = security({ requireClientCertificate: true });
      expect([needs.requestsClientCertificate, needs.requiresClientCertificate]).to.deep.equal([true, true]);
      expect(needs.socketOptions.bind(needs)).to.throw(CertificateError); // not prepared yet
    });

    it('has a 10 s handshake limit by default, the configured one otherwise', () => {
      expect(HANDSHAKE_TIMEOUT_MS).to.equal(10_000);
      expect(security().handshakeTimeoutMs).to.equal(10_000);
      expect(security({ handshakeTimeoutMs: 1234 }).handshakeTimeoutMs).to.equal(1234);
    });

    it('lists its trusted client CAs as certificates', () => {
      expect(security().trustedCertificates()).to.deep.equal([]);
      const list = security({ trustedCertificates: [certs.ca.cert, Buffer.from(certs.untrustedCa.cert)] }).trustedCertificates();
      expect(list.map((c) => c.subject)).to.deep.equal(['CN=Postern Dev CA', 'CN=Postern Untrusted CA']);
    });

    it('refuses setTicketKeys when tickets are off, and keys that are not 48 bytes', () => {
      const off = security({ sessionTickets: false });
      expect(() => off.setTicketKeys(Buffer.alloc(48))).to.throw(Error, 'session tickets are off (sessionTickets: false)');
      expect(() => off.rotateTicketKeys()).to.not.throw();
      expect(() => security().setTicketKeys(Buffer.alloc(47))).to.throw(RangeError);
    });

    it('is not self-signed, and has no generated PEM, when a certificate is configured', async () => {
      const sec = security();
      await sec.prepare();
      expect(sec.isSelfSigned).to.equal(false);
      expect(sec.generatedCertificatePem).to.equal(undefined);
      expect(sec.certificate?.subject).to.equal('CN=localhost');
      expect(sec.fingerprint256).to.equal(new X509Certificate(certs.server.cert).fingerprint256);
    });
  });

  describe('certificate switch and derived configurations', () => {
    it('keeps the previous certificate and options when useCertificate gets unusable material', async () => {
      const sec = security();
      await sec.prepare();
      const before = sec.fingerprint256;
      const err = await sec.useCertificate({ cert: certs.server.cert, key: certs.client.key }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(CertificateError);
      expect((err as Error).message).to.not.contain('passphrase');
      expect(sec.options.certificate).to.deep.equal(certs.server);
      expect(sec.fingerprint256).to.equal(before);
      const c = await handshake(sec, { servername: 'localhost' });
      expect(c.getPeerCertificate().subject.CN).to.equal('localhost');
    });

    it('adds the passphrase hint to unusable PFX material and to PEM material given a passphrase, and only then', async () => {
      const message = (source: ServerSecurityOptions['certificate']): Promise<string> =>
        security({ certificate: source })
          .prepare()
          .then(
            () => 'prepared',
            (e: Error) => e.message,
          );
      expect(await message({ pfx: toPkcs12(certs.server, 'secret') })).to.match(/ \(is the passphrase right\?\)$/);
      expect(await message({ cert: certs.server.cert, key: certs.client.key, passphrase: 'unused' })).to.match(/key values mismatch \(is the passphrase right\?\)$/);
      expect(await message({ cert: certs.server.cert, key: certs.client.key })).to.match(/key values mismatch$/);
    });

    it('derives with only the overrides that are set, serving the parent certificate until given its own', async () => {
      const parent = security({ handshakeTimeoutMs: 4321, requestClientCertificate: true });
      const child = parent.derive({ handshakeTimeoutMs: undefined, requireClientCertificate: true });
      closers.push(() => child.close());
      expect(child.handshakeTimeoutMs).to.equal(4321);
      expect(child.requiresClientCertificate).to.equal(true);
      await child.prepare();
      expect(child.fingerprint256).to.equal(parent.fingerprint256);
      const own = parent.derive({ certificate: mail });
      closers.push(() => own.close());
      await own.prepare();
      expect(own.certificate?.subject).to.equal('CN=mail.example.test');
    });
  });

  describe('TLS 1.2 cipher policy', () => {
    it('offers only the AEAD ECDHE suites by default: a CBC-only client is refused', async () => {
      const err = await handshake(security(), { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }).then(
        () => undefined,
        (e: unknown) => e as NodeJS.ErrnoException,
      );
      expect(err?.code).to.equal('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
      const c = await handshake(security({ ciphers: 'ECDHE-ECDSA-AES128-SHA' }), { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' });
      expect(c.getCipher().name).to.equal('ECDHE-ECDSA-AES128-SHA');
    });

    it("picks by the server's order, not the client's", async () => {
      const c = await handshake(security(), { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256' });
      expect(c.getCipher().name).to.equal('ECDHE-ECDSA-AES128-GCM-SHA256');
    });
  });

  describe('key-exchange groups', () => {
    const refusal = (sec: ServerSecurity, options: tls.ConnectionOptions): Promise<string | undefined> =>
      handshake(sec, options).then(
        () => undefined,
        (e: unknown) => (e as NodeJS.ErrnoException).code,
      );

    it('accepts X25519, P-256 and P-384 by default, and says which one it used', async () => {
      // getEphemeralKeyInfo() names the curves as OpenSSL does (P-256 is prime256v1, P-384 secp384r1).
      for (const [group, name] of [['X25519', 'X25519'], ['P-256', 'prime256v1'], ['P-384', 'secp384r1']]) {
        const c = await handshake(security(), { ecdhCurve: group });
        expect(c.getEphemeralKeyInfo(), group).to.deep.include({ name });
      }
      // TLS 1.2: the client must list the certificate's curve (P-256) too (RFC 8422 §5.1); the server's order picks.
      const tls12 = await handshake(security(), { maxVersion: 'TLSv1.2', ecdhCurve: 'P-256:X25519' });
      expect(tls12.getEphemeralKeyInfo()).to.deep.include({ name: 'X25519' });
    });

    it('refuses with handshake_failure a client that offers only a finite-field group (70x the CPU of X25519), P-521 or X448', async () => {
      for (const group of ['ffdhe2048', 'ffdhe8192', 'P-521', 'X448']) {
        expect(await refusal(security(), { ecdhCurve: group }), group).to.equal('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
      }
    });

    it('takes its own list (groups), in its order of preference, and refuses what it leaves out', async () => {
      const c = await handshake(security({ groups: 'P-521:X25519' }), { ecdhCurve: 'P-521' });
      expect(c.getEphemeralKeyInfo()).to.deep.include({ name: 'secp521r1' });
      expect(await refusal(security({ groups: 'P-521' }), { ecdhCurve: 'X25519' })).to.equal('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
      // A derived (per-listener) configuration inherits the list unless it sets its own.
      const parent = security({ groups: 'P-521' });
      const child = parent.derive({});
      closers.push(() => child.close());
      expect((await handshake(child, { ecdhCurve: 'P-521' })).getEphemeralKeyInfo()).to.deep.include({ name: 'secp521r1' });
    });

    it('refuses at construction a list OpenSSL cannot use, naming the group', () => {
      expect(() => new ServerSecurity({ groups: 'X25519:P-999' })).to.throw('groups: OpenSSL does not know the group "P-999" (expected names such as X25519, P-256, P-384, P-521, X448, ffdhe2048)');
      expect(() => new ServerSecurity({ groups: 'X25519::P-256' })).to.throw('groups: "X25519::P-256" has an empty name (expected e.g. X25519:P-256:P-384)');
    });
  });

  describe('sources and ACME validations', () => {
    it('serves certFile with its chainFile appended (leaf first, RFC 5246 §7.4.2)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-chainfile-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await Promise.all([writeFile(join(dir, 'c.pem'), certs.server.cert.trim()), writeFile(join(dir, 'k.pem'), certs.server.key), writeFile(join(dir, 'ca.pem'), certs.ca.cert)]);
      const sec = security({ certificate: { certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem'), chainFile: join(dir, 'ca.pem') } });
      const c = await handshake(sec, { servername: 'localhost', ca: undefined, rejectUnauthorized: false });
      const peer = c.getPeerCertificate(true);
      expect([peer.subject.CN, peer.issuerCertificate.subject.CN]).to.deep.equal(['localhost', 'Postern Dev CA']);
      const bare = await handshake(security({ certificate: { cert: certs.server.cert, key: certs.server.key } }), { servername: 'localhost', ca: undefined, rejectUnauthorized: false });
      expect(bare.getPeerCertificate(true).issuerCertificate).to.equal(undefined);
    });

    it('while a validation is pending, shows the challenge only to acme-tls/1 for its domain; other clients get their first protocol and the certificate', async () => {
      const sec = security();
      const challenge = await generateServerCertificate(certs.untrustedCa, ['acme.example.test']);
      sec.acmeChallenges.add('acme.example.test', challenge.key, challenge.cert);
      const cnOf = (c: tls.TLSSocket): string => String(c.getPeerCertificate().subject.CN);
      const acme = await handshake(sec, { servername: 'acme.example.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false });
      expect([acme.alpnProtocol, cnOf(acme)]).to.deep.equal(['acme-tls/1', 'acme.example.test']);
      const noAlpn = await handshake(sec, { servername: 'acme.example.test' });
      expect([noAlpn.alpnProtocol, cnOf(noAlpn)]).to.deep.equal([false, 'localhost']);
      const mailClient = await handshake(sec, { servername: 'acme.example.test', ALPNProtocols: ['imap', 'pop3'] });
      expect([mailClient.alpnProtocol, cnOf(mailClient)]).to.deep.equal(['imap', 'localhost']);
      const otherDomain = await handshake(sec, { servername: 'localhost', ALPNProtocols: ['acme-tls/1'] });
      expect(cnOf(otherDomain)).to.equal('localhost');
      sec.acmeChallenges.remove('acme.example.test');
      const after = await handshake(sec, { servername: 'acme.example.test', ALPNProtocols: ['acme-tls/1', 'imap'] });
      expect([after.alpnProtocol, cnOf(after)]).to.deep.equal([false, 'localhost']);
    });
  });

  describe('a required client certificate', () => {
    const required = (): ServerSecurityOptions => ({ requireClientCertificate: true, trustedCertificates: certs.ca.cert });

    it('is refused inside the handshake when missing, with a TLS alert (handshake_failure under TLS 1.2)', async () => {
      const err = await handshake(security(required()), { maxVersion: 'TLSv1.2' }).then(
        () => undefined,
        (e: unknown) => e as NodeJS.ErrnoException,
      );
      expect(err?.code).to.equal('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
    });

    it("answers an ACME CA's validation connection (which has no client certificate) without a certificate_required alert", async () => {
      const sec = security(required());
      const challenge = await generateServerCertificate(certs.untrustedCa, ['acme.example.test']);
      sec.acmeChallenges.add('acme.example.test', challenge.key, challenge.cert);
      const server = new TcpServer(new NoteHandler(sec), { port: 0, security: sec }, log);
      closers.push(() => server.close());
      const { port } = await server.start();
      const c = tls.connect({ port, host: '127.0.0.1', servername: 'acme.example.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false });
      closers.push(() => c.destroy());
      const errors: unknown[] = [];
      c.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code));
      await once(c, 'secureConnect');
      const seen = [c.alpnProtocol, c.getPeerCertificate().subject.CN];
      c.resume();
      await once(c, 'close'); // the listener closes a validation once the handshake is done
      expect([...seen, errors]).to.deep.equal(['acme-tls/1', 'acme.example.test', []]);
    });
  });

  describe('session-ticket keys of derived configurations', () => {
    /** Serves `sec` on implicit TLS; one TLS 1.2 handshake per call answers whether `session` resumed, and the next session. */
    async function ticketServer(sec: ServerSecurity): Promise<(session?: Buffer) => Promise<{ reused: boolean; session?: Buffer }>> {
      const server = new TcpServer(new NoteHandler(sec), { port: 0, security: sec }, log);
      closers.push(() => server.close());
      const { port } = await server.start();
      return (session) => resumeHandshake(port, { ca: certs.ca.cert, session, maxVersion: 'TLSv1.2' });
    }

    function derived(parent: ServerSecurity, overrides: ServerSecurityOptions, label?: string): ServerSecurity {
      const child = parent.derive(overrides, label);
      closers.push(() => child.close());
      return child;
    }

    it('derives the same keys from the same parent keys and label, also when sessionTickets: true is given', async () => {
      const keys = generateTicketKeys();
      const [a, b] = [security({ ticketKeys: keys }), security({ ticketKeys: keys })];
      const onA = await ticketServer(derived(a, { sessionTickets: true }, 'imaps'));
      const onB = await ticketServer(derived(b, {}, 'imaps'));
      const onOtherLabel = await ticketServer(derived(b, {}, 'smtps'));
      const first = await onA();
      expect((await onB(first.session)).reused).to.equal(true);
      expect((await onOtherLabel(first.session)).reused).to.equal(false);
    });

    it('gives two derivations without a label different keys', async () => {
      const parent = security({ ticketKeys: generateTicketKeys() });
      const one = await ticketServer(derived(parent, {}));
      const two = await ticketServer(derived(parent, {}));
      const first = await one();
      expect((await one(first.session)).reused, 'the same configuration resumes').to.equal(true);
      expect((await two(first.session)).reused).to.equal(false);
    });

    it('passes keys set on the parent on to its derived configurations', async () => {
      const next = generateTicketKeys();
      const parent = security();
      const child = await ticketServer(derived(parent, {}, 'imaps'));
      const reference = await ticketServer(derived(security({ ticketKeys: next }), {}, 'imaps'));
      parent.setTicketKeys(next);
      const first = await child();
      expect((await reference(first.session)).reused).to.equal(true);
    });

    it('leaves a closed derived configuration out of later key changes: its tickets keep resuming', async () => {
      const parent = security();
      const child = derived(parent, {}, 'imaps');
      const onChild = await ticketServer(child);
      const first = await onChild();
      child.close();
      parent.setTicketKeys(generateTicketKeys());
      expect((await onChild(first.session)).reused).to.equal(true);
    });

    it('applies the keys rotateTicketKeys makes: its tickets no longer resume where the old keys are', async () => {
      const keys = generateTicketKeys();
      const rotated = security({ ticketKeys: keys });
      const onRotated = await ticketServer(rotated);
      const onOld = await ticketServer(security({ ticketKeys: keys }));
      expect((await onOld((await onRotated()).session)).reused, 'before the rotation').to.equal(true);
      rotated.rotateTicketKeys();
      expect((await onOld((await onRotated()).session)).reused).to.equal(false);
    });
  });

  describe('generated certificate, store sharing, watched reloads', () => {
    it('is self-signed only once prepared, keeps its generated certificate across reloads, and names the default hosts', async () => {
      const sec = new ServerSecurity({});
      closers.push(() => sec.close());
      expect(sec.isSelfSigned).to.equal(false);
      await sec.prepare();
      expect(sec.isSelfSigned).to.equal(true);
      const first = sec.fingerprint256;
      await sec.reload();
      expect(sec.fingerprint256).to.equal(first);
      expect(sec.certificate?.subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    });

    it('lets a derived configuration use the store its parent opened from the same options', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-store-share-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'mail.pem'), mail.cert + mail.key);
      const parent = security({ certificateStore: { directory: dir, watch: false } });
      const child = parent.derive({ requestClientCertificate: true }, 'imaps');
      closers.push(() => child.close());
      await child.prepare();
      expect(child.certificateStore).to.not.equal(undefined);
      expect(child.certificateStore).to.equal(parent.certificateStore);
      expect(cn(child.contextFor('mail.example.test'))).to.equal('mail.example.test');
      expect(child.contextFor('mail.example.test'), 'built once per store certificate').to.equal(child.contextFor('MAIL.example.test'));
    });

    it('reports a watched reload that fails to onReloadError and keeps the certificate', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-watch-fail-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await Promise.all([writeFile(join(dir, 'c.pem'), certs.server.cert), writeFile(join(dir, 'k.pem'), certs.server.key)]);
      const sec = security({ certificate: { certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem') }, watchFiles: true });
      await sec.prepare();
      const before = sec.fingerprint256;
      const failed = new Promise<unknown>((resolve) => (sec.onReloadError = resolve));
      await writeFile(join(dir, 'k.pem'), certs.client.key);
      const err = await failed;
      expect(err).to.be.instanceOf(CertificateError);
      expect((err as Error).message).to.match(/^cannot use the certificate: .*key values mismatch$/);
      expect(sec.fingerprint256).to.equal(before);
    });
  });

  describe('what a reload follows', () => {
    it('rebuilds only derived configurations that are prepared and inherit the certificate', async () => {
      const parent = security();
      await parent.prepare();
      const unprepared = parent.derive({}, 'a');
      closers.push(() => unprepared.close());
      const inheriting = parent.derive({}, 'b');
      closers.push(() => inheriting.close());
      await inheriting.prepare();
      // Set order: a reload of `unprepared` would start first and, taking the same steps, end first.
      const followed = new Promise<void>((resolve) => (inheriting.onReload = resolve));
      await parent.reload();
      await followed;
      expect(unprepared.isPrepared).to.equal(false);
    });

    it('watches certFile, keyFile and chainFile, and a pfxFile; text sources and inherited certificates are not watched', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-watch-files-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await Promise.all([
        writeFile(join(dir, 'c.pem'), certs.server.cert),
        writeFile(join(dir, 'k.pem'), certs.server.key),
        writeFile(join(dir, 'chain.pem'), certs.ca.cert),
        writeFile(join(dir, 's.pfx'), toPkcs12(certs.server, 'pw')),
      ]);
      const pem = security({ certificate: { certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem'), chainFile: join(dir, 'chain.pem') }, watchFiles: true });
      await pem.prepare();
      const pemReloaded = new Promise<void>((resolve) => (pem.onReload = resolve));
      await writeFile(join(dir, 'chain.pem'), certs.ca.cert);
      await pemReloaded;
      const pfx = security({ certificate: { pfxFile: join(dir, 's.pfx'), passphrase: 'pw' }, watchFiles: true });
      await pfx.prepare();
      const pfxReloaded = new Promise<void>((resolve) => (pfx.onReload = resolve));
      await writeFile(join(dir, 's.pfx'), toPkcs12(certs.server, 'pw'));
      await pfxReloaded;
      expect(pfx.certificate?.subject).to.equal('CN=localhost');
      // Nothing to watch: a name that is no file would make watch() throw and prepare() fail.
      await security({ watchFiles: true }).prepare();
      const child = pem.derive({ requestClientCertificate: true }, 'imaps');
      closers.push(() => child.close());
      await child.prepare();
      expect(child.fingerprint256).to.equal(pem.fingerprint256);
    });
  });

  // The reload timers are held (spec/support/held-timers.ts) and each file event is awaited on a watcher of the spec's
  // own, opened after the configuration's: libuv gives every watcher of one path the same inotify event in the order
  // they were opened, so once the spec's watcher saw it, a timer the configuration did not arm by then is never armed
  // for that event.
  describe('watchers and reload timers, held (stop 22)', () => {
    let dir: string;
    let held: ReturnType<typeof heldTimers> | undefined;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'postern-watch-held-'));
      await Promise.all([writeFile(join(dir, 'c.pem'), certs.server.cert), writeFile(join(dir, 'k.pem'), certs.server.key)]);
    });
    afterEach(async () => {
      held?.restore();
      held = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    /** Writes `file` again and resolves once a watcher opened now has seen the event. */
    async function touched(file: string, text = certs.server.cert): Promise<void> {
      const w = watch(file);
      try {
        const event = new Promise<void>((resolve) => w.once('change', () => resolve()));
        await writeFile(file, text);
        await event;
      } finally {
        w.close();
      }
    }

    const files = (): { certFile: string; keyFile: string } => ({ certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem') });

    it('watches its files only with watchFiles', async () => {
      held = heldTimers(200);
      await security({ certificate: files() }).prepare();
      await security({ certificate: files(), watchFiles: false }).prepare();
      await touched(join(dir, 'c.pem'));
      expect(held.armed).to.deep.equal([]);
    });

    it('waits 200 ms after the last event, unref\'d; close() drops the pending reload and stops watching', async () => {
      held = heldTimers(200);
      const sec = security({ certificate: files(), watchFiles: true });
      await sec.prepare();
      await touched(join(dir, 'c.pem'));
      await touched(join(dir, 'k.pem'), certs.server.key);
      expect(held.armed.length).to.be.greaterThan(1);
      const last = held.armed.at(-1)!;
      expect(held.armed.slice(0, -1).every((t) => held!.cleared.has(t.handle)), 'each event clears the timer before it').to.equal(true);
      expect([held.cleared.has(last.handle), last.handle.hasRef()]).to.deep.equal([false, false]);
      sec.close();
      expect(held.cleared.has(last.handle), 'close() clears the pending reload').to.equal(true);
      const armed = held.armed.length;
      await touched(join(dir, 'c.pem'));
      expect(held.armed.length, 'no watcher left after close()').to.equal(armed);
    });

    it('closes the certificate store it opened itself, and leaves one it was given open', async () => {
      held = heldTimers(7_005, 7_006);
      const owned = security({ certificateStore: { directory: dir, debounceMs: 7_005 } });
      await owned.prepare();
      const given = await CertificateStore.open({ directory: dir, debounceMs: 7_006 });
      closers.push(() => given.close());
      const borrowing = security({ certificateStore: given });
      await borrowing.prepare();
      owned.close();
      borrowing.close();
      await touched(join(dir, 'c.pem'));
      expect(new Set(held.armed.map((t) => t.ms))).to.deep.equal(new Set([7_006]));
    });

    it('hands a failing file watcher\'s error to onReloadError', async () => {
      const sec = security({ certificate: files(), watchFiles: true });
      await sec.prepare();
      const seen: unknown[] = [];
      sec.onReloadError = (err) => seen.push(err);
      const broke = new Error('watch broke');
      // An inotify watcher does not fail on Linux once started; its 'error' event is emitted as Node would emit it.
      (sec as unknown as { watchers: FSWatcher[] }).watchers[0]!.emit('error', broke);
      expect(seen).to.deep.equal([broke]);
    });
  });

  describe('PEM helpers', () => {
    it('splitPemList takes strings, Buffers and lists of them, and skips text without certificates', () => {
      const two = `${certs.ca.cert}\n${certs.server.cert}`;
      expect(splitPemList(undefined)).to.deep.equal([]);
      expect(splitPemList('no certificate')).to.deep.equal([]);
      expect(splitPemList(two).map((p) => new X509Certificate(p).subject)).to.deep.equal(['CN=Postern Dev CA', 'CN=localhost']);
      expect(splitPemList([Buffer.from(certs.client.cert), 'junk', two])).to.have.length(3);
      expect(splitPemList(certs.server.key)).to.deep.equal([]);
    });

    it('fingerprintOf writes SHA-256 as upper-case hex pairs joined by colons, as X509Certificate does', () => {
      const x = new X509Certificate(certs.server.cert);
      expect(fingerprintOf(x.raw)).to.equal(x.fingerprint256);
      expect(fingerprintOf(Buffer.alloc(0))).to.equal('E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55');
    });
  });
});
