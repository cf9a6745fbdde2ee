import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { toPkcs12, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { CertificateError, ServerSecurity, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { SslProtocols, SslProtocolsError } from '../../lib/core/ssl-protocols.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

const log = createLogger({ silent: true });

/** Debian's `nobody`/`nogroup`: a user that root's privileges do not follow. */
const NOBODY = 65534;

/**
 * Runs `new ServerSecurity({ certificate: { certFile, keyFile } }).prepare()` in a child node process that first drops
 * to `nobody` when it runs as root (so file modes apply to it), and returns the error's name and message (or `ok`).
 * The module is imported before privileges are dropped: its path need not be readable by nobody.
 */
function prepareAsUnprivileged(certFile: string, keyFile: string): Promise<{ name: string; message: string } | 'ok'> {
  const module = new URL('../../lib/core/server-security.js', import.meta.url).href;
  const script = `
    const { ServerSecurity } = await import(${JSON.stringify(module)});
    if (process.getuid() === 0) { process.setgid(${NOBODY}); process.setuid(${NOBODY}); }
    if (process.getuid() === 0) throw new Error('still root');
    const s = new ServerSecurity({ certificate: { certFile: ${JSON.stringify(certFile)}, keyFile: ${JSON.stringify(keyFile)} } });
    try { await s.prepare(); console.log(JSON.stringify('ok')); }
    catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }
    s.close();`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000 }, (err, stdout) =>
      err ? reject(err) : resolve(JSON.parse(stdout) as { name: string; message: string } | 'ok'),
    );
  });
}

describe('core: ServerSecurity certificate sources and protocols', () => {
  let certs: DevCertificates;
  let dir: string;
  const servers: TcpServer[] = [];
  const securities: ServerSecurity[] = [];
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    dir = await mkdtemp(join(tmpdir(), 'postern-sec-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const s of securities.splice(0)) s.close();
  });

  function security(options: ServerSecurityOptions): ServerSecurity {
    const s = new ServerSecurity(options);
    securities.push(s);
    return s;
  }

  async function serve(options: ServerSecurityOptions): Promise<number> {
    const sec = security(options);
    const server = new TcpServer(new NoteHandler(sec), { port: 0, security: sec }, log);
    servers.push(server);
    return (await server.start()).port;
  }

  /** Connects with TLS trusting the dev CA; returns the server certificate's CN after the greeting. */
  async function servedCn(port: number, extra: tls.ConnectionOptions = {}): Promise<string> {
    const c = await LineClient.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost', checkServerIdentity: () => undefined, ...extra } });
    clients.push(c);
    expect(await c.readLine()).to.equal('+ NOTE ready');
    return String((c.raw as tls.TLSSocket).getPeerCertificate().subject.CN);
  }

  async function file(name: string, content: string | Buffer): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  }

  async function prepareError(options: ServerSecurityOptions): Promise<unknown> {
    return security(options)
      .prepare()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
  }

  describe('sources', () => {
    it('serves PEM strings with an intermediate chain', async () => {
      const port = await serve({ certificate: { cert: certs.server.cert, key: certs.server.key, chain: certs.ca.cert } });
      const c = await LineClient.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost' } });
      clients.push(c);
      expect(await c.readLine()).to.equal('+ NOTE ready');
      const peer = (c.raw as tls.TLSSocket).getPeerCertificate(true);
      expect(peer.subject.CN).to.equal('localhost');
      expect(peer.issuerCertificate.subject.CN).to.equal('Postern Dev CA');
    });

    it('serves PEM Buffers', async () => {
      const port = await serve({ certificate: { cert: Buffer.from(certs.server.cert), key: Buffer.from(certs.server.key) } });
      expect(await servedCn(port)).to.equal('localhost');
    });

    it('serves certFile/keyFile', async () => {
      const certFile = await file('files-cert.pem', certs.server.cert);
      const keyFile = await file('files-key.pem', certs.server.key);
      const port = await serve({ certificate: { certFile, keyFile } });
      expect(await servedCn(port)).to.equal('localhost');
    });

    it('serves a PFX buffer with its passphrase', async () => {
      const pfx = toPkcs12(certs.server, 'pfx secret');
      const port = await serve({ certificate: { pfx, passphrase: 'pfx secret' } });
      expect(await servedCn(port)).to.equal('localhost');
      const security = new ServerSecurity({ certificate: { pfx, passphrase: 'pfx secret' } });
      await security.prepare();
      expect(security.fingerprint256).to.equal(new X509Certificate(certs.server.cert).fingerprint256); // known for PFX too
    });

    it('serves a pfxFile with its passphrase', async () => {
      const pfxFile = await file('server.pfx', toPkcs12(certs.server, 'pfx secret'));
      const port = await serve({ certificate: { pfxFile, passphrase: 'pfx secret' } });
      expect(await servedCn(port)).to.equal('localhost');
    });

    it('refuses a PFX with the wrong passphrase at prepare()', async () => {
      const err = await prepareError({ certificate: { pfx: toPkcs12(certs.server, 'right'), passphrase: 'wrong' } });
      expect(err).to.be.instanceOf(CertificateError);
      expect((err as Error).message).to.equal('cannot use the certificate: mac verify failure (is the passphrase right?)');
    });

    it('refuses a key that does not match its certificate at prepare()', async () => {
      const err = await prepareError({ certificate: { cert: certs.server.cert, key: certs.client.key } });
      expect(err).to.be.instanceOf(CertificateError);
      expect((err as Error).message).to.match(/^cannot use the certificate: .*key values mismatch$/);
    });

    it('refuses a missing certificate file at prepare(), naming the path but no content', async () => {
      const err = await prepareError({ certificate: { certFile: join(dir, 'missing.pem'), keyFile: join(dir, 'missing-key.pem') } });
      expect(err).to.be.instanceOf(CertificateError);
      expect((err as Error).message).to.contain('missing.pem').and.contain('ENOENT');
    });

    it('refuses an unreadable key file at prepare() with EACCES (run as an unprivileged user when we are root)', async () => {
      // Root reads mode-000 files, so as root the check runs in a child process that has dropped to nobody (65534).
      const readable = await mkdtemp(join(tmpdir(), 'postern-eacces-'));
      try {
        await chmod(readable, 0o755);
        const certFile = join(readable, 'cert.pem');
        const keyFile = join(readable, 'key.pem');
        await writeFile(certFile, certs.server.cert, { mode: 0o644 });
        await writeFile(keyFile, certs.server.key, { mode: 0o000 });
        await chmod(keyFile, 0o000);
        const outcome = await prepareAsUnprivileged(certFile, keyFile);
        expect(outcome).to.deep.equal({ name: 'CertificateError', message: `cannot read ${keyFile}: EACCES` });
      } finally {
        await rm(readable, { recursive: true, force: true });
      }
    });

    it('refuses a directory given as a certificate file at prepare()', async () => {
      const err = await prepareError({ certificate: { certFile: dir, keyFile: dir } });
      expect(err).to.be.instanceOf(CertificateError);
      expect((err as Error).message).to.equal(`cannot read ${dir}: EISDIR`);
    });

    it('makes TcpServer.start() fail with CertificateError for bad material', async () => {
      const sec = security({ certificate: { cert: certs.server.cert, key: certs.client.key } });
      const server = new TcpServer(new NoteHandler(sec), { port: 0, security: sec }, log);
      const err = await server.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(CertificateError);
      await server.close();
    });
  });

  describe('watchFiles', () => {
    it('serves the rewritten certificate files to new connections', async () => {
      const certFile = await file('watched-cert.pem', certs.server.cert);
      const keyFile = await file('watched-key.pem', certs.server.key);
      const reloads: number[] = [];
      const sec = security({ certificate: { certFile, keyFile }, watchFiles: true });
      sec.onReload = () => reloads.push(Date.now());
      const server = new TcpServer(new NoteHandler(sec), { port: 0, security: sec }, log);
      servers.push(server);
      const { port } = await server.start();
      expect(await servedCn(port)).to.equal('localhost');
      const live = clients[0];

      await writeFile(certFile, certs.wrongHostServer.cert);
      await writeFile(keyFile, certs.wrongHostServer.key);
      // The watcher settles for 200 ms after the last change; poll with bounded retries.
      let cn = 'localhost';
      for (let attempt = 0; attempt < 50 && cn !== 'other.example'; attempt++) {
        await new Promise((r) => setTimeout(r, 50));
        cn = await servedCn(port);
      }
      expect(cn).to.equal('other.example');
      expect(reloads.length).to.be.greaterThan(0);
      expect(sec.certificate?.subject).to.contain('CN=other.example');
      // The connection made before the change keeps its session.
      live.line('HELLO');
      expect(await live.readLine()).to.equal('+ hello');
    });

    it('keeps serving the old certificate when a reload fails', async () => {
      const certFile = await file('bad-reload-cert.pem', certs.server.cert);
      const keyFile = await file('bad-reload-key.pem', certs.server.key);
      const port = await serve({ certificate: { certFile, keyFile } });
      const sec = securities[securities.length - 1];
      await writeFile(keyFile, certs.client.key); // does not match
      const err = await sec.reload().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(CertificateError);
      expect(await servedCn(port)).to.equal('localhost');
    });
  });

  describe('protocols', () => {
    for (const [name, flags] of [
      ['Tls | Tls13', SslProtocols.Tls | SslProtocols.Tls13],
      ['Tls11 | Tls13', SslProtocols.Tls11 | SslProtocols.Tls13],
      ['Tls | Tls12', SslProtocols.Tls | SslProtocols.Tls12],
    ] as const) {
      it(`refuses the non-contiguous set ${name} with SslProtocolsError`, () => {
        expect(() => new ServerSecurity({ certificate: certs.server, protocols: flags })).to.throw(SslProtocolsError);
      });
    }

    it('refuses unknown flag bits (SSL 3) with SslProtocolsError', () => {
      expect(() => new ServerSecurity({ certificate: certs.server, protocols: 48 as SslProtocols })).to.throw(SslProtocolsError);
    });

    it('narrows to TLS 1.2 only when asked', async () => {
      const port = await serve({ certificate: certs.server, protocols: SslProtocols.Tls12 });
      await servedCn(port);
      expect((clients[0].raw as tls.TLSSocket).getProtocol()).to.equal('TLSv1.2');
    });

    const legacyClient: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' };

    it('refuses a TLS 1.0 client by default with a protocol_version alert, and keeps serving', async () => {
      const port = await serve({ certificate: certs.server });
      const err = await servedCn(port, legacyClient).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).to.equal('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'); // RFC 8446 §6.2 protocol_version(70)
      expect(await servedCn(port)).to.equal('localhost');
      expect((clients[0].raw as tls.TLSSocket).getProtocol()).to.equal('TLSv1.3');
    });

    it('negotiates TLS 1.0 only when Tls is enabled explicitly', async () => {
      const port = await serve({ certificate: certs.server, protocols: SslProtocols.Tls | SslProtocols.Tls11 | SslProtocols.Tls12 | SslProtocols.Tls13 });
      expect(await servedCn(port, legacyClient)).to.equal('localhost');
      expect((clients[0].raw as tls.TLSSocket).getProtocol()).to.equal('TLSv1');
      // Modern clients still get TLS 1.3 from the same listener.
      await servedCn(port);
      expect((clients[1].raw as tls.TLSSocket).getProtocol()).to.equal('TLSv1.3');
    });
  });
});
