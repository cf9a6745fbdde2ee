/**
 * CertificateStore at the edges `certificate-store.spec.ts` leaves open (issue 16, mutation testing of
 * `lib/core/certificate-store.ts`): which certificate serves an SNI name when several fit (exact before wildcard, then
 * the later expiry), validity and keys, e-mail and IP names, `watch: true`, when listeners run (a replaced certificate,
 * a key added, nothing changed, a listener that throws), and a directory that disappears. Real files and fs events.
 *
 * The watcher cases (stop 22) hold the debounce timers (`spec/support/held-timers.ts`, each store with its own delay)
 * and wait for the directory event on a watcher of their own opened after the stores': libuv gives every watcher of
 * one directory the same inotify event in the order they were opened, so once the spec's watcher has seen an event
 * every store's watcher has too, and a timer a store did not arm by then it never arms for that event.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { CertificateStore } from '../../lib/core/certificate-store.js';
import { generateClientCertificate, generateServerCertificate, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { testCertificates } from '../support/certs.js';
import { heldTimers } from '../support/held-timers.js';
import { RecordingLogger } from '../support/recording-logger.js';

describe('core: CertificateStore edges (certificate-store mutants)', function () {
  this.timeout(20_000);
  let certs: DevCertificates;
  let dir: string;
  const stores: CertificateStore[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-store-mutants-'));
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(log?: RecordingLogger, watch = false): Promise<CertificateStore> {
    const s = await CertificateStore.open({ directory: dir, watch, debounceMs: 20, log });
    stores.push(s);
    return s;
  }

  const cnOf = (pem: string | undefined): string | undefined => (pem ? /CN=([^\n]+)/.exec(new X509Certificate(pem).subject)?.[1] : undefined);

  /** A self-signed EC certificate for `name` valid from `from` to `to` (days from now). */
  async function dated(name: string, from: number, to: number): Promise<PemPair> {
    const now = Date.now();
    const g = await generate([{ name: 'commonName', value: name }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: new Date(now + from * 86_400_000),
      notAfterDate: new Date(now + to * 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: name }] }],
    });
    return { cert: g.cert, key: g.private };
  }

  it('serves the exact name before a wildcard, then the later expiry, whatever the file order', async () => {
    const [wild, exact, shortLived, longLived] = await Promise.all([
      generateServerCertificate(certs.ca, ['*.example.test'], 300),
      generateServerCertificate(certs.ca, ['mail.example.test'], 10),
      generateServerCertificate(certs.ca, ['imap.example.test'], 10),
      generateServerCertificate(certs.ca, ['imap.example.test'], 20),
    ]);
    await Promise.all([
      writeFile(join(dir, 'a-exact.pem'), exact.cert + exact.key),
      writeFile(join(dir, 'b-wild.pem'), wild.cert + wild.key),
      writeFile(join(dir, 'c-long.pem'), longLived.cert + longLived.key),
      writeFile(join(dir, 'd-short.pem'), shortLived.cert + shortLived.key),
    ]);
    const store = await open();
    expect(store.serverCertificateFor('mail.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(exact.cert).fingerprint256);
    expect(store.serverCertificateFor('smtp.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(wild.cert).fingerprint256);
    expect(store.serverCertificateFor('imap.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(longLived.cert).fingerprint256);
    await Promise.all([writeFile(join(dir, 'a-exact.pem'), wild.cert + wild.key), writeFile(join(dir, 'b-wild.pem'), exact.cert + exact.key)]);
    await writeFile(join(dir, 'c-long.pem'), shortLived.cert + shortLived.key);
    await writeFile(join(dir, 'd-short.pem'), longLived.cert + longLived.key);
    await store.reload();
    expect(store.serverCertificateFor('mail.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(exact.cert).fingerprint256);
    expect(store.serverCertificateFor('imap.example.test')?.certificate.fingerprint256).to.equal(new X509Certificate(longLived.cert).fingerprint256);
  });

  it('serves and offers only certificates valid now and with their key', async () => {
    const [expired, future, current] = await Promise.all([dated('old.example.test', -10, -1), dated('new.example.test', 1, 10), dated('now.example.test', -1, 10)]);
    const keyless = await generateServerCertificate(certs.ca, ['keyless.example.test']);
    await Promise.all([
      writeFile(join(dir, 'old.pem'), expired.cert + expired.key),
      writeFile(join(dir, 'new.pem'), future.cert + future.key),
      writeFile(join(dir, 'now.pem'), current.cert + current.key),
      writeFile(join(dir, 'keyless.pem'), keyless.cert),
    ]);
    const store = await open();
    expect(store.certificates).to.have.length(4);
    expect(store.serverCertificateFor('old.example.test')).to.equal(undefined);
    expect(store.serverCertificateFor('new.example.test')).to.equal(undefined);
    expect(store.serverCertificateFor('keyless.example.test')).to.equal(undefined);
    expect(cnOf(store.serverCertificateFor('now.example.test')?.certificate.toString())).to.equal('now.example.test');
    expect(store.clientCertificates().map((c) => cnOf('cert' in c ? String(c.cert) : undefined))).to.deep.equal(['now.example.test']);
  });

  it('finds by e-mail address and IP address only the certificates that name them', async () => {
    const mailbox = await generateClientCertificate(certs.ca, 'alice', { emails: ['alice@example.test'] });
    await Promise.all([writeFile(join(dir, 'alice.pem'), mailbox.cert), writeFile(join(dir, 'server.pem'), certs.server.cert)]);
    const store = await open();
    expect(store.findBySan('alice@example.test').map((e) => cnOf(e.certificate.toString()))).to.deep.equal(['alice']);
    expect(store.findBySan('bob@example.test')).to.deep.equal([]);
    expect(store.findBySan('127.0.0.1').map((e) => cnOf(e.certificate.toString()))).to.deep.equal(['localhost']);
    expect(store.findBySan('127.0.0.2')).to.deep.equal([]);
  });

  it('watches with watch: true', async () => {
    const store = await open(undefined, true);
    const changed = new Promise<void>((resolve) => store.onChange(resolve));
    await writeFile(join(dir, 'server.pem'), certs.server.cert);
    await changed;
    expect(store.certificates).to.have.length(1);
  });

  it('tells listeners about a replaced certificate and an added key, not about a reload that changed nothing, and goes on past one that throws', async () => {
    const [one, two] = await Promise.all([generateServerCertificate(certs.ca, ['one.example.test']), generateServerCertificate(certs.ca, ['two.example.test'])]);
    await writeFile(join(dir, 'cert.pem'), one.cert);
    const log = new RecordingLogger();
    const store = await open(log);
    let calls = 0;
    store.onChange(() => {
      throw new Error('listener broke');
    });
    store.onChange(() => calls++);
    await store.reload();
    expect(calls, 'nothing changed').to.equal(0);
    await writeFile(join(dir, 'key.pem'), one.key);
    await store.reload();
    expect(calls, 'the key was added').to.equal(1);
    expect(store.certificates[0]!.hasPrivateKey).to.equal(true);
    await writeFile(join(dir, 'cert.pem'), two.cert);
    await store.reload();
    expect(calls, 'the certificate was replaced').to.equal(2);
    expect(log.find('warn', 'certificate store listener failed').map((r) => r.meta)).to.deep.equal([{ error: 'listener broke' }, { error: 'listener broke' }]);
    expect(log.find('info', 'certificate store reloaded').map((r) => r.meta)).to.deep.equal([
      { directory: store.directory, certificates: 1, skipped: 0 },
      { directory: store.directory, certificates: 1, skipped: 0 },
      { directory: store.directory, certificates: 1, skipped: 0 },
    ]);
  });

  it('keeps its certificates when the directory disappears, and says so', async () => {
    await writeFile(join(dir, 'server.pem'), certs.server.cert);
    const log = new RecordingLogger();
    const store = await open(log);
    await rm(dir, { recursive: true, force: true });
    await store.reload();
    expect(store.certificates).to.have.length(1);
    const [warning] = log.find('warn', 'certificate directory unreadable, keeping the certificates loaded before');
    expect(warning?.meta.directory).to.equal(store.directory);
    expect(warning?.meta.error).to.match(/^ENOENT: no such file or directory, scandir /);
  });

  /** Runs `act` and resolves once a watcher opened now (after the stores') has seen an event in the directory. */
  async function seenByWatchers(act: () => Promise<unknown>): Promise<void> {
    const w = watch(dir);
    try {
      const event = new Promise<void>((resolve) => w.once('change', () => resolve()));
      await act();
      await event;
    } finally {
      w.close();
    }
  }

  it('watches nothing with watch: false or once closed, and reloads only after the given quiet time', async () => {
    const held = heldTimers(7_001, 7_002, 7_003);
    try {
      stores.push(await CertificateStore.open({ directory: dir, watch: false, debounceMs: 7_001 }));
      const closed = await CertificateStore.open({ directory: dir, debounceMs: 7_002 });
      stores.push(closed);
      closed.close();
      const live = await CertificateStore.open({ directory: dir, debounceMs: 7_003 });
      stores.push(live);
      await seenByWatchers(() => writeFile(join(dir, 'server.pem'), certs.server.cert));
      const delays = held.armed.map((t) => t.ms);
      expect(delays.length).to.be.greaterThan(0);
      expect(new Set(delays)).to.deep.equal(new Set([7_003]));
      expect(live.certificates).to.have.length(0);
      const changed = new Promise<void>((resolve) => live.onChange(resolve));
      held.armed.at(-1)!.fire();
      await changed;
      expect(live.certificates).to.have.length(1);
    } finally {
      held.restore();
    }
  });

  it('starts the quiet time again at each event, and drops a pending reload at close()', async () => {
    const held = heldTimers(7_004);
    try {
      const debounced = await CertificateStore.open({ directory: dir, debounceMs: 7_004 });
      stores.push(debounced);
      await seenByWatchers(() => writeFile(join(dir, 'a.pem'), certs.server.cert));
      await seenByWatchers(() => writeFile(join(dir, 'b.pem'), certs.ca.cert));
      expect(held.armed.length).to.be.greaterThan(1);
      const last = held.armed.at(-1)!;
      expect(held.armed.slice(0, -1).every((t) => held.cleared.has(t.handle)), 'each event clears the timer before it').to.equal(true);
      expect(held.cleared.has(last.handle)).to.equal(false);
      expect(last.handle.hasRef(), 'the reload timer keeps no process alive').to.equal(false);
      debounced.close();
      expect(held.cleared.has(last.handle), 'close() clears the pending reload').to.equal(true);
    } finally {
      held.restore();
    }
  });

  it('logs a failing directory watcher', async () => {
    const log = new RecordingLogger();
    const store = await open(log, true);
    // An inotify watcher does not fail on Linux once started; its 'error' event is emitted as Node would emit it.
    (store as unknown as { watcher: FSWatcher }).watcher.emit('error', new Error('watch broke'));
    expect(log.find('warn', 'certificate directory watch failed').map((r) => r.meta)).to.deep.equal([{ directory: store.directory, error: 'watch broke' }]);
  });

  it('tells no listener about a reload of several unchanged certificates', async () => {
    await Promise.all([writeFile(join(dir, 'a.pem'), certs.server.cert + certs.server.key), writeFile(join(dir, 'b.pem'), certs.ca.cert)]);
    const store = await open();
    let calls = 0;
    store.onChange(() => calls++);
    await store.reload();
    await store.reload();
    expect(store.certificates).to.have.length(2);
    expect(calls).to.equal(0);
  });

  it('serves a certificate from the first to the last second of its validity, not outside it', async () => {
    const pair = await dated('edge.example.test', -1, 1);
    await writeFile(join(dir, 'edge.pem'), pair.cert + pair.key);
    const store = await open();
    const c = new X509Certificate(pair.cert);
    const realNow = Date.now;
    const servedAt = (t: number): boolean => {
      Date.now = () => t;
      try {
        return store.serverCertificateFor('edge.example.test') !== undefined && store.clientCertificates().length === 1;
      } finally {
        Date.now = realNow;
      }
    };
    const [from, to] = [Date.parse(c.validFrom), Date.parse(c.validTo)];
    expect([servedAt(from - 1), servedAt(from), servedAt(to), servedAt(to + 1)]).to.deep.equal([false, true, true, false]);
  });

  it('matches a lower-case name as it comes (OpenSSL compares an e-mail local part case-sensitively)', async () => {
    const g = await generate([{ name: 'commonName', value: 'mailbox' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 1, value: 'alice@example.test' }] }],
    });
    await writeFile(join(dir, 'mailbox.pem'), g.cert + g.private);
    const store = await open();
    expect(cnOf(store.serverCertificateFor('alice@example.test')?.certificate.toString())).to.equal('mailbox');
  });
});
