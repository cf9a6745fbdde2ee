/**
 * The ACME certificate manager's own decisions (issue 16, mutation testing of `lib/core/acme-certificates.ts`), without
 * a CA where none is needed: which stored certificate is used (names, case, SAN kinds, the renewal point at a third of
 * a short life or `renewBeforeDays`), the state files and their modes, the account key kept across orders, the renewal
 * and retry timers (read by wrapping the global `setTimeout`/`clearTimeout` the manager calls, with real timers
 * underneath that never fire on their own), `stop()`, shared orders, and the directory's HTTPS trust. An order here
 * goes to a closed loopback port or to a loopback HTTPS server that answers 404; the issuing path against Pebble is in
 * `acme-certificates.spec.ts` and the HTTP-01 case below.
 */
import { expect } from 'chai';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { AcmeCertificateManager, type AcmeCertificateTarget, type AcmeOptions } from '../../lib/core/acme-certificates.js';
import type { CertificateSource } from '../../lib/core/server-security.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { hasPebble, startPebble, type PebbleServer } from '../support/pebble.js';
import { RecordingLogger } from '../support/recording-logger.js';

const DAY = 86_400_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const DOMAIN = 'mail.postern.test';

/** A target that records what the manager hands it (no TLS involved: these cases never reach a validation). */
class RecordingTarget implements AcmeCertificateTarget {
  readonly installed: CertificateSource[] = [];
  readonly alpn: Array<['add', string, string, string] | ['remove', string]> = [];
  readonly http: Array<['add' | 'remove', string, string?]> = [];
  certificate?: X509Certificate;
  /** Called when an HTTP-01 token is added (the manager answers it from then on). */
  onHttpAdd?: (token: string) => void;
  readonly acmeChallenges = {
    add: (domain: string, key: string | Buffer, cert: string | Buffer): void => void this.alpn.push(['add', domain, String(key), String(cert)]),
    remove: (domain: string): void => void this.alpn.push(['remove', domain]),
  };
  readonly acmeHttpChallenges = {
    add: (token: string, keyAuthorization: string): void => {
      this.http.push(['add', token, keyAuthorization]);
      this.onHttpAdd?.(token);
    },
    remove: (token: string): void => void this.http.push(['remove', token]),
  };
  useCertificate(source: CertificateSource): Promise<void> {
    this.installed.push(source);
    return Promise.resolve();
  }
}

/** A PEM certificate with these SANs, valid from `from` to `to` (ms since the epoch). */
async function certificate(altNames: Array<{ type: number; value: string }>, from: number, to: number): Promise<string> {
  const out = await generate([{ name: 'commonName', value: 'stored' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(from),
    notAfterDate: new Date(to),
    extensions: altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : [],
  } as Parameters<typeof generate>[1]);
  return out.cert;
}

interface Timer {
  readonly delay: number;
  readonly fire: () => void;
  readonly handle: NodeJS.Timeout;
}

describe('core: ACME certificate manager (acme-certificates mutants)', function () {
  this.timeout(20_000);
  let dir: string;
  let closedUrl: string; // answers 404
  let log: RecordingLogger;
  let target: RecordingTarget;
  const managers: AcmeCertificateManager[] = [];
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  let timers: Timer[];
  let cleared: unknown[];
  let notFound: https.Server;
  let served = 0;
  let ca: string;

  before(async () => {
    // The "CA": a loopback HTTPS server that answers 404 at once (acme-client retries refused connections for a minute).
    const certs = await testCertificates();
    ca = certs.ca.cert;
    notFound = https.createServer({ cert: certs.server.cert, key: certs.server.key }, (_req, res) => {
      served++;
      res.statusCode = 404;
      res.end('{"type":"urn:ietf:params:acme:error:malformed","detail":"no directory here"}');
    });
    notFound.listen(0, '127.0.0.1');
    await once(notFound, 'listening');
    closedUrl = `https://127.0.0.1:${(notFound.address() as AddressInfo).port}/dir`;
  });

  after(async () => {
    notFound.close();
    await once(notFound, 'close');
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-acme-m-'));
    log = new RecordingLogger();
    target = new RecordingTarget();
    timers = [];
    cleared = [];
    // The manager's timers only (their callback calls ensureCertificate); a real, never-firing timer underneath.
    globalThis.setTimeout = ((fire: () => void, delay?: number, ...rest: unknown[]) => {
      if (!String(fire).includes('ensureCertificate')) return realSetTimeout(fire, delay, ...(rest as []));
      const handle = realSetTimeout(() => undefined, MAX_TIMER_MS);
      handle.unref();
      timers.push({ delay: delay ?? 0, fire, handle });
      return handle;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((handle: NodeJS.Timeout | undefined) => {
      if (timers.some((t) => t.handle === handle)) cleared.push(handle);
      realClearTimeout(handle);
    }) as typeof clearTimeout;
  });

  afterEach(async () => {
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
    for (const m of managers.splice(0)) m.stop();
    for (const t of timers) realClearTimeout(t.handle);
    await rm(dir, { recursive: true, force: true });
  });

  const manager = (overrides: Partial<AcmeOptions> = {}): AcmeCertificateManager => {
    const m = new AcmeCertificateManager({ directoryUrl: closedUrl, directoryCa: ca, email: 'postmaster@postern.test', domains: [DOMAIN], stateDir: dir, ...overrides }, target, log);
    managers.push(m);
    return m;
  };
  const store = async (pem: string, key = true): Promise<void> => {
    await writeFile(join(dir, 'cert.pem'), pem);
    if (key) await writeFile(join(dir, 'key.pem'), 'a key');
  };
  const failure = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('resolved');
  };
  /** Resolves once `cond` holds (checked after each turn of the event loop, for at most 5 s). */
  const until = async (cond: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('condition not met within 5 s');
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const refused = (url: string): string => `Attempting to read ACME directory returned error 404: ${url}`;

  it('refuses an empty domain list, and names its files under the state directory', () => {
    expect(() => new AcmeCertificateManager({ directoryUrl: closedUrl, email: 'a@b.test', domains: [], stateDir: dir }, target, log)).to.throw(
      'ACME needs at least one domain',
    );
    expect(manager().files).to.deep.equal({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
  });

  it('uses a stored certificate naming every domain (any case, any order) without asking the CA, and renews it a third of its life before expiry', async () => {
    const now = Date.now();
    const pem = await certificate([{ type: 2, value: 'MX.postern.test' }, { type: 2, value: 'mail.postern.test' }], now - 20 * DAY, now + 11 * DAY);
    await store(pem);
    const cert = new X509Certificate(pem);
    const m = manager({ domains: ['Mail.Postern.Test', 'mx.postern.test'] });
    const t0 = Date.now();
    const used = await m.start();
    await settled();
    const t1 = Date.now();
    expect(used.fingerprint256).to.equal(cert.fingerprint256);
    expect(target.installed).to.deep.equal([m.files]);
    expect(log.records).to.deep.equal([{ level: 'info', message: 'acme certificate loaded', meta: { subject: 'CN=stored', validTo: cert.validTo } }]);
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    const renewAt = to - (to - from) / 3;
    expect(timers).to.have.length(1);
    expect(timers[0].delay).to.be.within(renewAt - t1, renewAt - t0);

    // The timer fires: the stored one is still fresh, so it is loaded again and the next renewal is scheduled.
    timers[0].fire();
    await until(() => timers.length === 2);
    expect(log.find('acme certificate loaded')).to.have.length(2);
    expect(timers).to.have.length(2);
    expect(cleared).to.deep.equal([timers[0].handle]);
  });

  it('renews renewBeforeDays before expiry, and chains waits longer than setTimeout takes without ordering early', async () => {
    const now = Date.now();
    const pem = await certificate([{ type: 2, value: DOMAIN }], now - DAY, now + 10 * DAY);
    await store(pem);
    const to = Date.parse(new X509Certificate(pem).validTo);
    const t0 = Date.now();
    await manager({ renewBeforeDays: 2 }).start();
    await settled();
    expect(timers[0].delay).to.be.within(to - 2 * DAY - Date.now(), to - 2 * DAY - t0);

    const long = await certificate([{ type: 2, value: DOMAIN }], now - DAY, now + 90 * DAY);
    await store(long);
    const m = manager();
    await m.start();
    await settled();
    expect(timers[1].delay).to.equal(MAX_TIMER_MS);
    timers[1].fire(); // 60 days are left to wait: wait again, do not reload
    expect(timers[2].delay).to.equal(MAX_TIMER_MS);
    await settled();
    expect(log.find('acme certificate loaded')).to.have.length(2);
  });

  it('orders instead when the stored certificate is due, misses a name, names it only as a URI, is unreadable, or has no key', async () => {
    const now = Date.now();
    const orders = async (pem: string | undefined, key: boolean, overrides: Partial<AcmeOptions> = {}): Promise<string> => {
      await rm(join(dir, 'cert.pem'), { force: true });
      await rm(join(dir, 'key.pem'), { force: true });
      if (pem !== undefined) await store(pem, key);
      log.records.length = 0;
      const m = manager(overrides);
      const text = await failure(m.start());
      m.stop();
      return text;
    };
    const dns = [{ type: 2, value: DOMAIN }];
    // Two thirds of its life are over: due, although renewBeforeDays (30) is longer than the third.
    expect(await orders(await certificate(dns, now - 20 * DAY, now + 9 * DAY), true)).to.equal(refused(closedUrl));
    expect(log.find('acme order started')).to.deep.equal([{ level: 'info', message: 'acme order started', meta: { domains: [DOMAIN], directory: closedUrl } }]);
    expect(await orders(await certificate(dns, now - DAY, now + 10 * DAY), true, { domains: [DOMAIN, 'mx.postern.test'] })).to.equal(refused(closedUrl));
    expect(log.find('acme order started')).to.have.length(1);
    expect(await orders(await certificate([{ type: 6, value: DOMAIN }], now - DAY, now + 10 * DAY), true)).to.equal(refused(closedUrl));
    expect(log.find('acme order started')).to.have.length(1);
    expect(await orders(await certificate([], now - DAY, now + 10 * DAY), true)).to.equal(refused(closedUrl));
    expect(log.find('acme order started')).to.have.length(1);
    expect(await orders(await certificate(dns, now - DAY, now + 10 * DAY), false)).to.equal(refused(closedUrl));
    expect(log.find('warn', 'acme stored certificate unusable, ordering a new one')).to.deep.equal([]);
    expect(log.find('acme order started')).to.have.length(1);

    let parseError = '';
    try {
      new X509Certificate('garbage');
    } catch (err) {
      parseError = (err as Error).message;
    }
    expect(await orders('garbage', true)).to.equal(refused(closedUrl));
    expect(log.find('warn', 'acme stored certificate unusable, ordering a new one')).to.deep.equal([
      { level: 'warn', message: 'acme stored certificate unusable, ordering a new one', meta: { error: parseError } },
    ]);
    expect(target.installed).to.deep.equal([]);
  });

  it('creates the state directory with mode 0700 and one P-256 account key with mode 0600, kept for the next order, no temporary file left', async () => {
    const state = join(dir, 'a', 'state');
    const m = manager({ stateDir: state });
    expect(await failure(m.start())).to.equal(refused(closedUrl));
    expect((await stat(state)).mode & 0o777).to.equal(0o700);
    expect(await readdir(state)).to.deep.equal(['account-key.pem']);
    expect((await stat(join(state, 'account-key.pem'))).mode & 0o777).to.equal(0o600);
    const key = await readFile(join(state, 'account-key.pem'), 'utf8');
    expect(createPrivateKey(key).asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    expect(await failure(m.renewNow())).to.equal(refused(closedUrl));
    expect(await readFile(join(state, 'account-key.pem'), 'utf8')).to.equal(key);
    expect(await readdir(state)).to.deep.equal(['account-key.pem']);
  });

  it('fails an order whose account key cannot be read with that error', async () => {
    await mkdir(join(dir, 'account-key.pem'));
    expect(await failure(manager().start())).to.equal('EISDIR: illegal operation on a directory, read');
  });

  it('retries failed orders after the delay given, doubling up to an hour, and starts over after a success', async () => {
    const m = manager({ retryDelayMs: 1000 });
    const t0 = Date.now();
    await failure(m.start());
    await settled();
    const retries = (): unknown[] => log.find('error', 'acme certificate order failed').map((r) => r.meta);
    expect(retries()).to.deep.equal([{ error: refused(closedUrl), retryInMs: 1000 }]);
    expect(timers[0].delay).to.be.within(1000 - (Date.now() - t0), 1000);
    timers[0].fire();
    await until(() => retries().length === 2);
    expect(retries()).to.deep.equal([
      { error: refused(closedUrl), retryInMs: 1000 },
      { error: refused(closedUrl), retryInMs: 2000 },
    ]);
    expect(timers[1].delay).to.be.within(1000, 2000);

    // A stored certificate turns up: the next wake-up loads it and the failure count starts over.
    const now = Date.now();
    await store(await certificate([{ type: 2, value: DOMAIN }], now - DAY, now + 10 * DAY));
    timers[1].fire();
    await until(() => timers.length === 3);
    expect(log.find('acme certificate loaded')).to.have.length(1);
    await rm(join(dir, 'cert.pem'));
    await failure(m.renewNow());
    await settled();
    expect(retries()[2]).to.deep.equal({ error: refused(closedUrl), retryInMs: 1000 });

    const capped = manager({ retryDelayMs: 2_000_000 });
    await failure(capped.renewNow());
    await failure(capped.renewNow());
    await settled();
    const defaulted = manager();
    await failure(defaulted.renewNow());
    await settled();
    expect(retries().slice(3).map((r) => (r as { retryInMs: number }).retryInMs)).to.deep.equal([2_000_000, 3_600_000, 60_000]);
  });

  it('schedules nothing after stop(), and again after start()', async () => {
    const now = Date.now();
    await store(await certificate([{ type: 2, value: DOMAIN }], now - DAY, now + 10 * DAY));
    const m = manager();
    await m.start();
    await settled();
    expect(timers).to.have.length(1);
    m.stop();
    expect(cleared).to.deep.equal([timers[0].handle]);
    m.stop();
    expect(cleared).to.have.length(1);
    await m.renewNow().catch(() => undefined);
    await settled();
    expect(log.find('error', 'acme certificate order failed')).to.have.length(1);
    expect(timers).to.have.length(1);
    await m.start();
    await settled();
    expect(timers).to.have.length(2);
  });

  it('schedules the retry of a renewNow() made before any start()', async () => {
    const m = manager({ retryDelayMs: 5000 });
    await failure(m.renewNow());
    await settled();
    expect(timers.map((t) => t.delay <= 5000 && t.delay > 4000)).to.deep.equal([true]);
  });

  it('shares one running order between concurrent calls, and starts a new one after it settled', async () => {
    const m = manager();
    const a = m.ensureCertificate();
    const b = m.ensureCertificate();
    expect(a).to.be.instanceOf(Promise);
    expect(b).to.equal(a);
    await failure(a);
    const c = m.ensureCertificate();
    expect(c).not.to.equal(a);
    await failure(c);
    const r1 = m.renewNow();
    const r2 = m.renewNow();
    expect(r1).to.be.instanceOf(Promise);
    await Promise.all([failure(r1), failure(r2)]);
    await settled();
    expect(log.find('acme order started')).to.have.length(3);
    const r3 = m.renewNow();
    await failure(r3);
    expect(log.find('acme order started')).to.have.length(4);
  });

  it("trusts directoryCa for the directory's HTTPS, and leaves the process-wide agent alone without it", async () => {
    const acme = (await import('acme-client')).default;
    const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings;
    const before = acme.axios.defaults.httpsAgent as unknown;
    const attempts = settings.retryMaxAttempts;
    const refusals: string[] = [];
    const onRefusal = (err: NodeJS.ErrnoException): void => void refusals.push(err.code ?? err.message);
    notFound.on('tlsClientError', onRefusal);
    try {
      acme.axios.defaults.httpsAgent = undefined;
      settings.retryMaxAttempts = 0; // acme-client retries a failed connection for a minute
      const count = served;
      // acme-client loses the error of a request that got no response at all (it reads `response.config` of
      // undefined); the manager says so, with the reason its own GET of the directory (same trust) failed.
      const noResponse = await manager({ directoryCa: undefined }).renewNow().then(() => undefined, (e: Error) => e);
      expect(noResponse?.message).to.equal(`no HTTP response from the ACME CA (${closedUrl}: unable to verify the first certificate)`);
      expect((noResponse?.cause as Error).message).to.equal("Cannot read properties of undefined (reading 'config')");
      settings.retryMaxAttempts = attempts;
      // Node's own roots do not hold the dev CA: each client (acme-client's, then the manager's GET) drops the
      // connection after the TLS 1.3 handshake, unasked.
      await until(() => refusals.length > 1);
      expect(refusals).to.deep.equal(['ECONNRESET', 'ECONNRESET']);
      expect(served).to.equal(count);
      expect(await failure(manager().renewNow())).to.equal(refused(closedUrl));
      // The agent set above stays in use for a manager without directoryCa.
      expect(await failure(manager({ directoryCa: undefined }).renewNow())).to.equal(refused(closedUrl));
    } finally {
      settings.retryMaxAttempts = attempts;
      acme.axios.defaults.httpsAgent = before;
      notFound.off('tlsClientError', onRefusal);
    }
  });

  describe('HTTP-01 against Pebble, on a recording target', function () {
    // Two orders; acme-client polls a pending authorization with a back-off of 5 s and more (a hang guard, not a goal).
    this.timeout(150_000);
    let pebble: PebbleServer | undefined;
    let web: http.Server | undefined;
    let tlsServer: TcpServer | undefined;
    const asked: string[] = [];
    let current: AcmeCertificateManager | undefined;

    before(async function () {
      if (!(await hasPebble())) this.skip(); // pending, never passed: install the Debian package `pebble` (.ci/run does)
      web = http.createServer((req, res) => {
        asked.push(req.url ?? '');
        const body = current?.httpChallengeResponse(req.url ?? '');
        res.statusCode = body === undefined ? 404 : 200;
        res.end(body ?? '');
      });
      web.listen(0, '127.0.0.1');
      await once(web, 'listening');
      const security = new ServerSecurity({ selfSignedHosts: [DOMAIN] });
      tlsServer = new TcpServer(new NoteHandler(security), { port: 0, security }, createLogger({ silent: true }));
      const { port } = await tlsServer.start();
      pebble = await startPebble({ tlsPort: port, httpPort: (web.address() as AddressInfo).port });
    });

    after(async () => {
      await tlsServer?.close();
      await pebble?.stop();
      if (web) {
        web.close();
        await once(web, 'close');
      }
    });

    it('answers the token at its path only while pending, tells the target, writes the files 0600 and logs each step', async () => {
      current = manager({ directoryUrl: pebble!.directoryUrl, directoryCa: pebble!.directoryCa, challenges: ['http-01'] });
      const answers: Array<string | undefined> = [];
      target.onHttpAdd = (t) => {
        for (const path of [`/.well-known/acme-challenge/${t}`, `/${t}`, `/.well-known/acme-challenge/${t}x`]) answers.push(current!.httpChallengeResponse(path));
      };
      const issued = await current.start();
      expect(issued.subjectAltName).to.equal(`DNS:${DOMAIN}`);
      expect(target.installed).to.deep.equal([current.files]);
      expect(target.alpn).to.deep.equal([]);
      expect(target.http).to.have.length(2);
      const [[addOp, token, keyAuthorization], [removeOp, removed]] = target.http;
      expect([addOp, removeOp, removed]).to.deep.equal(['add', 'remove', token]);
      expect(keyAuthorization).to.match(new RegExp(`^${token}\\.[A-Za-z0-9_-]{43}$`));
      expect(answers).to.deep.equal([keyAuthorization, undefined, undefined]);
      expect(asked).to.include(`/.well-known/acme-challenge/${token}`);
      expect(current.httpChallengeResponse(`/.well-known/acme-challenge/${token}`), 'removed after validation').to.equal(undefined);
      expect((await readFile(join(dir, 'cert.pem'), 'utf8')).startsWith('-----BEGIN CERTIFICATE-----')).to.equal(true);
      expect(new X509Certificate(await readFile(join(dir, 'cert.pem'))).fingerprint256).to.equal(issued.fingerprint256);
      expect((await stat(join(dir, 'key.pem'))).mode & 0o777).to.equal(0o600);
      expect((await stat(join(dir, 'cert.pem'))).mode & 0o777).to.equal(0o600);
      expect((await readdir(dir)).sort()).to.deep.equal(['account-key.pem', 'cert.pem', 'key.pem']);
      expect(log.records.map((r) => [r.level, r.message])).to.deep.equal([
        ['info', 'acme order started'],
        ['info', 'acme challenge ready'],
        ['info', 'acme certificate installed'],
      ]);
      expect(log.records[1].meta).to.deep.equal({ domain: DOMAIN, type: 'http-01' });
      expect(log.records[2].meta).to.deep.equal({ subject: issued.subject, issuer: issued.issuer, validTo: issued.validTo });
      await settled();
      expect(timers).to.have.length(1); // the renewal of the issued certificate

      // An order now, although the certificate is fresh: installed, and the renewal scheduled from the new one.
      const renewed = await current.renewNow();
      await settled();
      expect(renewed.fingerprint256).not.to.equal(issued.fingerprint256);
      expect(target.installed).to.have.length(2);
      expect(timers).to.have.length(2);
      expect(cleared).to.deep.equal([timers[0].handle]);
    });
  });
});
