/**
 * OCSP stapling end to end (issue 16, mutation testing of `lib/core/ocsp-stapler.ts` and the stapling parts of
 * `lib/core/server-security.ts`): which certificates the stapler asks a responder about (default, SNI, store entries by
 * key, issuer and EKU, store changes), which response it hands to a handshake (per certificate, none when revoked,
 * stale or failed), what it reports, and the event forwarding of derived configurations. The responder is a loopback
 * HTTP server whose answers `openssl ocsp` signs (spec/support/ocsp-responder.ts); handshakes are real, over loopback.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { DevCertificates, PemPair } from '../../lib/core/dev-certificates.js';
import { CertificateStore } from '../../lib/core/certificate-store.js';
import { parseOcspResponse } from '../../lib/core/ocsp.js';
import { OcspStapler } from '../../lib/core/ocsp-stapler.js';
import { ServerSecurity, type CertificateSource, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { testCertificates } from '../support/certs.js';
import { OcspResponder } from '../support/ocsp-responder.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { waitUntil } from '../support/wait-until.js';
import { closeAfterEach } from '../support/closers.js';

describe('core: OCSP stapler and ServerSecurity stapling (ocsp-stapler mutants)', function () {
  this.timeout(30_000);
  let certs: DevCertificates;
  let responder: OcspResponder;
  let ca: X509Certificate;
  let good: PemPair;
  let second: PemPair;
  let revoked: PemPair;
  let stale: PemPair;
  let failing: PemPair;
  let open: PemPair;
  const closers = closeAfterEach();

  before(async function () {
    if (!(await OcspResponder.available())) this.skip(); // pending, never passed: install openssl (.ci/run does)
    certs = await testCertificates();
    ca = new X509Certificate(certs.ca.cert);
    responder = await OcspResponder.start(certs.ca);
    [good, second, revoked, stale, failing, open] = await Promise.all([
      responder.issue('good.postern.test', '/good'),
      responder.issue('second.postern.test', '/second'),
      responder.issue('revoked.postern.test', '/revoked', { revoked: true }),
      responder.issue('stale.postern.test', '/stale'),
      responder.issue('failing.postern.test', '/fail'),
      responder.issue('open.postern.test', '/open'),
    ]);
  });

  after(async () => {
    await responder?.close();
  });

  const x509 = (pair: PemPair): X509Certificate => new X509Certificate(pair.cert);

  function stapler(events?: RecordingLogger): OcspStapler {
    const s = new OcspStapler(events);
    closers.push(() => s.close());
    return s;
  }

  /** Requests the responder received while `body` ran. */
  async function requestsDuring(body: () => Promise<unknown>): Promise<string[]> {
    const from = responder.requests.length;
    await body();
    return responder.requests.slice(from);
  }

  describe('OcspStapler', () => {
    it('staples each tracked certificate its own good response, the first one for the default context, and reports it', async () => {
      const events = new RecordingLogger();
      const s = stapler(events);
      expect(s.isActive).to.equal(false);
      const asked = await requestsDuring(() => s.track([{ leaf: x509(good), issuer: ca }, { leaf: x509(second), issuer: ca }]));
      expect(asked.sort()).to.deep.equal(['/good', '/second']);
      expect(s.isActive).to.equal(true);
      const forDefault = s.responseFor(null)!;
      expect(parseOcspResponse(forDefault, x509(good), ca).status).to.equal('good');
      expect(s.responseFor(x509(good).raw)).to.equal(forDefault);
      const forSecond = s.responseFor(x509(second).raw)!;
      expect(parseOcspResponse(forSecond, x509(second), ca).status).to.equal('good');
      expect(s.responseFor(x509(revoked).raw), 'an untracked certificate').to.equal(undefined);
      const stapled = events.find('info', 'ocsp response stapled');
      expect(stapled.map((r) => r.meta.subject).sort()).to.deep.equal(['CN=good.postern.test', 'CN=second.postern.test']);
      const nextUpdate = parseOcspResponse(forDefault, x509(good), ca).nextUpdate!;
      expect(stapled.find((r) => r.meta.subject === 'CN=good.postern.test')!.meta.nextUpdate).to.equal(nextUpdate.toISOString());
    });

    it('skips certificates without an issuer or without a responder URL, and asks nobody', async () => {
      const s = stapler();
      const asked = await requestsDuring(() => s.track([{ leaf: x509(good) }, { leaf: x509(certs.server), issuer: ca }]));
      expect(asked).to.deep.equal([]);
      expect(s.isActive).to.equal(false);
      expect(s.responseFor(null)).to.equal(undefined);
    });

    it('staples nothing for a revoked certificate and says why', async () => {
      const events = new RecordingLogger();
      const s = stapler(events);
      await s.track([{ leaf: x509(revoked), issuer: ca }]);
      expect(s.isActive).to.equal(true);
      expect(s.responseFor(null)).to.equal(undefined);
      expect(s.responseFor(x509(revoked).raw)).to.equal(undefined);
      expect(events.find('warn', 'ocsp status not good, not stapling').map((r) => r.meta)).to.deep.equal([{ subject: 'CN=revoked.postern.test', status: 'revoked' }]);
      expect(events.find('info', 'ocsp response stapled')).to.deep.equal([]);
    });

    it('staples nothing once the response is past its nextUpdate', async () => {
      const events = new RecordingLogger();
      const s = stapler(events);
      await s.track([{ leaf: x509(stale), issuer: ca }]);
      const [record] = events.find('info', 'ocsp response stapled');
      expect(Date.parse(String(record?.meta.nextUpdate))).to.be.below(Date.now() - 3_600_000);
      expect(s.responseFor(null)).to.equal(undefined);
    });

    it('reports a failed fetch with the responder, the error and the first retry delay (60 s)', async () => {
      const events = new RecordingLogger();
      const s = stapler(events);
      await s.track([{ leaf: x509(failing), issuer: ca }]);
      expect(events.find('warn', 'ocsp fetch failed').map((r) => r.meta)).to.deep.equal([
        { subject: 'CN=failing.postern.test', responder: responder.url('/fail'), error: 'OCSP responder answered HTTP 500', retryInMs: 60_000 },
      ]);
      expect(s.responseFor(null)).to.equal(undefined);
    });

    it('keeps the responses of certificates tracked again without asking again, and drops the untracked', async () => {
      const s = stapler();
      await s.track([{ leaf: x509(good), issuer: ca }]);
      const kept = s.responseFor(null);
      const asked = await requestsDuring(() => s.track([{ leaf: x509(second), issuer: ca }, { leaf: x509(good), issuer: ca }]));
      expect(asked).to.deep.equal(['/second']);
      expect(s.responseFor(x509(good).raw)).to.equal(kept);
      expect(parseOcspResponse(s.responseFor(null)!, x509(second), ca).status, 'the new first entry is the default').to.equal('good');
      await s.track([{ leaf: x509(second), issuer: ca }]);
      expect(s.responseFor(x509(good).raw)).to.equal(undefined);
    });

    it('answers nothing and fetches nothing once closed', async () => {
      const s = stapler();
      await s.track([{ leaf: x509(good), issuer: ca }]);
      s.close();
      expect(s.responseFor(null)).to.equal(undefined);
      expect(s.isActive).to.equal(false);
      expect(await requestsDuring(() => s.track([{ leaf: x509(second), issuer: ca }]))).to.deep.equal([]);
    });
  });

  describe('OcspStapler refresh schedule', () => {
    // The stapler's timers (a minute to a day) are seen by wrapping the global setTimeout/clearTimeout it calls; they
    // stay real timers (unref'd, cleared by close()), and a spec fires one by calling its callback.
    type Timer = { delay: number; fire: () => void; handle: NodeJS.Timeout };
    let timers: Timer[];
    let cleared: NodeJS.Timeout[];
    const realSetTimeout = globalThis.setTimeout;
    const realClearTimeout = globalThis.clearTimeout;

    beforeEach(() => {
      timers = [];
      cleared = [];
      globalThis.setTimeout = ((fire: (...args: unknown[]) => void, delay: number, ...args: unknown[]) => {
        const handle = realSetTimeout(fire, delay, ...args);
        if (delay >= 60_000) timers.push({ delay, fire, handle });
        return handle;
      }) as typeof setTimeout;
      globalThis.clearTimeout = ((handle: NodeJS.Timeout | undefined) => {
        if (handle !== undefined) cleared.push(handle);
        realClearTimeout(handle);
      }) as typeof clearTimeout;
    });

    afterEach(() => {
      globalThis.setTimeout = realSetTimeout;
      globalThis.clearTimeout = realClearTimeout;
    });

    /** Resolves at the n-th 'ocsp fetch failed' warning. */
    function failures(): { events: RecordingLogger; nth: (n: number) => Promise<void> } {
      const events = new RecordingLogger();
      const nth = async (n: number): Promise<void> => {
        await waitUntil(() => events.find('warn', 'ocsp fetch failed').length >= n, `ocsp fetch failure ${n}`);
        expect(events.find('warn', 'ocsp fetch failed')).to.have.length(n);
      };
      return { events, nth };
    }

    it('refreshes half-way to nextUpdate, a day on without one, a minute on when stale', async () => {
      const s = stapler();
      const before = Date.now();
      await s.track([{ leaf: x509(good), issuer: ca }]);
      expect(timers).to.have.length(1);
      const nextUpdate = parseOcspResponse(s.responseFor(null)!, x509(good), ca).nextUpdate!.getTime();
      expect(timers[0]!.delay).to.be.within((nextUpdate - Date.now()) / 2, (nextUpdate - before) / 2);
      await s.track([{ leaf: x509(open), issuer: ca }]);
      expect(timers.map((t) => t.delay).slice(1)).to.deep.equal([86_400_000]);
      await s.track([{ leaf: x509(stale), issuer: ca }]);
      expect(timers.map((t) => t.delay).slice(2)).to.deep.equal([60_000]);
    });

    it('retries a failed fetch after a minute, then two, clearing the timer it replaces, and fetches when the timer fires', async () => {
      const { events, nth } = failures();
      const s = stapler(events);
      await s.track([{ leaf: x509(failing), issuer: ca }]);
      expect(timers.map((t) => t.delay)).to.deep.equal([60_000]);
      // Tracked again without a response: fetched again at once, and the pending retry is replaced.
      await s.track([{ leaf: x509(failing), issuer: ca }]);
      expect(timers.map((t) => t.delay)).to.deep.equal([60_000, 120_000]);
      expect(cleared).to.include(timers[0]!.handle);
      expect(events.find('warn', 'ocsp fetch failed').map((r) => r.meta.retryInMs)).to.deep.equal([60_000, 120_000]);
      const asked = responder.requests.length;
      timers[1]!.fire();
      await nth(3);
      expect(responder.requests.length).to.equal(asked + 1);
      expect(timers.map((t) => t.delay)).to.deep.equal([60_000, 120_000, 240_000]);
    });

    it('clears the timers of certificates no longer tracked, keeps the others, and clears all at close()', async () => {
      const s = stapler();
      await s.track([{ leaf: x509(good), issuer: ca }]);
      await s.track([{ leaf: x509(good), issuer: ca }, { leaf: x509(second), issuer: ca }]);
      expect(timers, 'a kept certificate with a response is not fetched again').to.have.length(2);
      const [goodTimer, secondTimer] = timers.map((t) => t.handle);
      expect(cleared).to.deep.equal([]);
      await s.track([{ leaf: x509(good), issuer: ca }]);
      expect(cleared).to.deep.equal([secondTimer]);
      s.close();
      expect(cleared).to.deep.equal([secondTimer, goodTimer]);
      await s.track([]);
      expect(s.isActive).to.equal(false);
    });

    it('schedules nothing for a fetch that ends after its certificate was dropped or the stapler closed', async () => {
      const dropped = stapler();
      const first = dropped.track([{ leaf: x509(failing), issuer: ca }]);
      await dropped.track([]);
      await first;
      const closed = stapler();
      const second = closed.track([{ leaf: x509(failing), issuer: ca }]);
      closed.close();
      await second;
      expect(timers).to.deep.equal([]);
    });
  });

  describe('ServerSecurity stapling', () => {
    function security(options: ServerSecurityOptions): ServerSecurity {
      const s = new ServerSecurity(options);
      closers.push(() => s.close());
      return s;
    }

    /** A TLS handshake asking for a staple; resolves the served certificate's CN and the staple (undefined: none). */
    async function staple(sec: ServerSecurity, servername?: string): Promise<{ cn: string; staple?: Buffer }> {
      const server = net.createServer((socket) => {
        const t = new tls.TLSSocket(socket, sec.socketOptions());
        t.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      closers.push(() => new Promise((resolve) => server.close(resolve)));
      return new Promise((resolve, reject) => {
        let stapled: Buffer | undefined;
        // requestOCSP is a tls.connect option Node's types leave out.
        const options = { port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername, requestOCSP: true, rejectUnauthorized: false } as tls.ConnectionOptions;
        const c = tls.connect(options, () => {
          resolve({ cn: String(c.getPeerCertificate().subject.CN), staple: stapled ?? undefined });
          c.destroy();
        });
        c.on('OCSPResponse', (r: Buffer | null) => (stapled = r ?? undefined)); // null: asked, none stapled
        c.once('error', reject);
      });
    }

    const withChain = (pair: PemPair, chain = certs.ca.cert): CertificateSource => ({ cert: pair.cert, key: pair.key, chain });

    it('staples for SNI certificates as for the default one, finding the issuer anywhere in the chain, and forwards the reports', async () => {
      const events = new RecordingLogger();
      const sec = security({ certificate: withChain(good), sni: { 'second.postern.test': withChain(second, `${certs.untrustedCa.cert}\n${certs.ca.cert}`) } });
      sec.ocspEvents = events;
      const asked = await requestsDuring(async () => {
        await sec.prepare();
        await sec.whenStapled();
      });
      expect(asked.sort()).to.deep.equal(['/good', '/second']);
      const bySni = await staple(sec, 'second.postern.test');
      expect(bySni.cn).to.equal('second.postern.test');
      expect(parseOcspResponse(bySni.staple!, x509(second), ca).status).to.equal('good');
      const byDefault = await staple(sec);
      expect(byDefault.cn).to.equal('good.postern.test');
      expect(byDefault.staple).to.deep.equal(sec.stapledResponse);
      expect(parseOcspResponse(byDefault.staple!, x509(good), ca).status).to.equal('good');
      expect(events.find('info', 'ocsp response stapled').map((r) => r.meta.subject).sort()).to.deep.equal(['CN=good.postern.test', 'CN=second.postern.test']);
      sec.close();
      expect(sec.stapledResponse, 'close() stops stapling').to.equal(undefined);
      const failingSec = security({ certificate: withChain(failing) });
      failingSec.ocspEvents = events;
      await failingSec.prepare();
      await failingSec.whenStapled();
      expect(events.find('warn', 'ocsp fetch failed').map((r) => r.meta.subject)).to.deep.equal(['CN=failing.postern.test']);
    });

    it('asks about no certificate whose issuer is not in the chain, and about none with ocspStapling: false', async () => {
      const asked = await requestsDuring(async () => {
        const noIssuer = security({ certificate: withChain(good, certs.untrustedCa.cert), sni: { 'second.postern.test': { cert: second.cert, key: second.key } } });
        await noIssuer.prepare();
        await noIssuer.whenStapled();
        const off = security({ certificate: withChain(good), sni: { 'second.postern.test': withChain(second) }, ocspStapling: false });
        await off.prepare();
        await off.whenStapled();
        expect((await staple(off, 'second.postern.test')).staple).to.equal(undefined);
        expect(off.stapledResponse).to.equal(undefined);
      });
      expect(asked).to.deep.equal([]);
    });

    it("staples the store's server certificates (key and issuer in the store, EKU serverAuth or none), also after a change", async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-staple-store-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      const [noEku, clientOnly, keyless, added] = await Promise.all([
        responder.issue('noeku.postern.test', '/store-noeku', { eku: null }),
        responder.issue('client.postern.test', '/store-client', { eku: 'clientAuth' }),
        responder.issue('keyless.postern.test', '/store-keyless'),
        responder.issue('added.postern.test', '/store-added'),
      ]);
      await Promise.all([
        writeFile(join(dir, 'ca.pem'), certs.ca.cert),
        writeFile(join(dir, 'good.pem'), good.cert + good.key),
        writeFile(join(dir, 'noeku.pem'), noEku.cert + noEku.key),
        writeFile(join(dir, 'client.pem'), clientOnly.cert + clientOnly.key),
        writeFile(join(dir, 'keyless.pem'), keyless.cert),
      ]);
      const sec = security({ certificate: certs.server, certificateStore: { directory: dir, watch: false } });
      const asked = await requestsDuring(async () => {
        await sec.prepare();
        await sec.whenStapled();
      });
      expect(asked.sort()).to.deep.equal(['/good', '/store-noeku']);
      const fromStore = await staple(sec, 'noeku.postern.test');
      expect(fromStore.cn).to.equal('noeku.postern.test');
      expect(parseOcspResponse(fromStore.staple!, x509(noEku), ca).status).to.equal('good');
      expect((await staple(sec)).staple, 'the default certificate names no responder').to.equal(undefined);
      await writeFile(join(dir, 'added.pem'), added.cert + added.key);
      const afterChange = await requestsDuring(async () => {
        await sec.certificateStore!.reload();
        await sec.whenStapled();
      });
      expect(afterChange).to.deep.equal(['/store-added']);
      const addedStaple = await staple(sec, 'added.postern.test');
      expect(addedStaple.cn).to.equal('added.postern.test');
      expect(parseOcspResponse(addedStaple.staple!, x509(added), ca).status).to.equal('good');
    });

    it('does not staple after a store change with ocspStapling: false', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-staple-off-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'ca.pem'), certs.ca.cert);
      const sec = security({ certificate: certs.server, certificateStore: { directory: dir, watch: false }, ocspStapling: false });
      await sec.prepare();
      await writeFile(join(dir, 'good.pem'), good.cert + good.key);
      const asked = await requestsDuring(async () => {
        await sec.certificateStore!.reload();
        await sec.whenStapled();
      });
      expect(asked).to.deep.equal([]);
      expect((await staple(sec, 'good.postern.test')).staple).to.equal(undefined);
    });

    it('stops following a store it does not own once closed, and leaves it open', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-staple-closed-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'ca.pem'), certs.ca.cert);
      const store = await CertificateStore.open({ directory: dir, debounceMs: 20 });
      closers.push(() => store.close());
      const sec = security({ certificate: certs.server, certificateStore: store });
      await sec.prepare();
      expect(sec.certificateStore).to.equal(store);
      expect(sec.socketOptions().server, 'nothing to staple').to.equal(undefined);
      sec.close();
      const changed = new Promise<void>((resolve) => store.onChange(resolve));
      await writeFile(join(dir, 'good.pem'), good.cert + good.key);
      await changed; // the store still watches: close() left it open
      expect(store.certificates).to.have.length(2);
      expect(sec.socketOptions().server, 'the closed configuration did not take up the new certificate').to.equal(undefined);
    });

    it("hands the parent's stapling and store reporters to derived configurations", async () => {
      const dir = await mkdtemp(join(tmpdir(), 'postern-staple-derive-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'ca.pem'), certs.ca.cert);
      const stapling = new RecordingLogger();
      const stores = new RecordingLogger();
      const parent = security({ certificate: certs.server });
      parent.ocspEvents = stapling;
      parent.certificateStoreEvents = stores;
      const child = parent.derive({ certificate: withChain(good), certificateStore: { directory: dir, watch: false } }, 'imaps');
      closers.push(() => child.close());
      await child.prepare();
      await child.whenStapled();
      expect(stapling.find('info', 'ocsp response stapled').map((r) => r.meta.subject)).to.deep.equal(['CN=good.postern.test']);
      await child.certificateStore!.reload();
      expect(stores.find('info', 'certificate store reloaded').map((r) => r.meta.directory)).to.deep.equal([child.certificateStore!.directory]);
    });
  });
});
