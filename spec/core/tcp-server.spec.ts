import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import { TcpServer, type TcpServerOptions } from '../../lib/core/tcp-server.js';
import { ServerSecurity, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { SslPolicyErrors, X509ChainStatusFlags, type X509Chain } from '../../lib/core/policy-errors.js';
import { SslProtocols } from '../../lib/core/ssl-protocols.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { REPLY_QUEUE_LIMIT } from '../../lib/protocol/limits.js';
import { NoteHandler, type NoteSession } from '../../samples/custom-protocol.js';
import type { Connection } from '../../lib/core/connection.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';

describe('core: TcpServer, Connection and authenticateAsServer', () => {
  let certs: DevCertificates;
  const servers: TcpServer[] = [];
  const clients: LineClient[] = [];
  /** Every server of a test logs here: the reason and code of refused handshakes. */
  let log: RecordingLogger;

  before(async () => {
    certs = await testCertificates();
  });
  beforeEach(() => {
    log = new RecordingLogger();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(sec: ServerSecurityOptions = {}, opts: Partial<TcpServerOptions> & { implicit?: boolean } = {}): Promise<{ port: number; security: ServerSecurity; server: TcpServer }> {
    const security = new ServerSecurity({ certificate: certs.server, ...sec });
    const server = new TcpServer(new NoteHandler(security), { port: 0, ...opts, security: opts.implicit ? security : undefined }, log);
    servers.push(server);
    const { port } = await server.start();
    return { port, security, server };
  }

  async function connect(port: number, tlsOptions?: tls.ConnectionOptions): Promise<LineClient> {
    const c = await LineClient.connect(port, { tls: tlsOptions });
    clients.push(c);
    return c;
  }

  const trustCa = (): tls.ConnectionOptions => ({ ca: certs.ca.cert, servername: 'localhost' });

  it('greets at once and answers pipelined commands in order, in one flush', async () => {
    const { port } = await start();
    const c = await connect(port);
    expect(await c.readLine()).to.equal('+ NOTE ready');
    c.send('ECHO one\r\nECHO two\r\nHELLO\r\n');
    expect(await c.expect(/^\+ hello$/)).to.deep.equal(['+ one', '+ two', '+ hello']);
  });

  it('upgrades in place and never executes plaintext pipelined after the upgrade command', async () => {
    const { port } = await start();
    const c = await connect(port);
    await c.readLine();
    c.send('UPGRADE\r\nECHO injected\r\n');
    expect(await c.readLine()).to.equal('+ go ahead');
    const s = await c.startTls(trustCa());
    expect(s.authorized).to.equal(true);
    c.line('WHO');
    const who = await c.readLine();
    expect(who).to.match(/^\+ tls=true protocol=TLSv1\.3 /);
    c.line('ECHO after');
    expect(await c.readLine()).to.equal('+ after');
    expect(c.pending).to.equal('');
  });

  for (const [how, act] of [
    ['drops the connection', (s: net.Socket) => s.destroy()],
    ['sends half a ClientHello and drops', (s: net.Socket) => s.end(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))],
  ] as const) {
    it(`detaches the plaintext socket at the upgrade: a client that ${how} mid-handshake is a failed handshake, not a plain close`, async () => {
      // Were the plaintext socket still attached, its close would end the Connection as 'peer-closed' before the
      // handshake could report, and the failure would never be logged.
      const { port } = await start();
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      let received = '';
      socket.setEncoding('latin1');
      await new Promise<void>((resolve) => {
        socket.on('data', (d: string) => {
          received += d;
          if (received.includes('+ go ahead\r\n')) resolve();
        });
        socket.write('UPGRADE\r\n');
      });
      act(socket);
      const closed = await log.next('connection closed');
      expect(closed.meta.reason).to.equal('tls-failed');
      expect(log.find('tls handshake failed').map((r) => r.meta.reason)).to.deep.equal(['peer-closed']);
    });
  }

  it('prepares unprepared TLS material before the go-ahead, so the handshake cannot race it', async () => {
    const security = new ServerSecurity({}); // self-signed, generated lazily on the first upgrade
    const server = new TcpServer(new NoteHandler(security), { port: 0 }, log);
    servers.push(server);
    const { port } = await server.start();
    expect(security.isPrepared).to.equal(false);
    const c = await connect(port);
    await c.readLine();
    c.line('UPGRADE');
    expect(await c.readLine()).to.equal('+ go ahead');
    const pem = security.generatedCertificatePem;
    expect(pem).to.be.a('string');
    await c.startTls({ ca: pem, servername: 'localhost' });
    c.line('HELLO');
    expect(await c.readLine()).to.equal('+ hello');
  });

  it('refuses a second upgrade on a secure connection', async () => {
    const { port } = await start();
    const c = await connect(port);
    await c.readLine();
    c.line('UPGRADE');
    await c.readLine();
    await c.startTls(trustCa());
    c.line('UPGRADE');
    expect(await c.readLine()).to.equal('- state UPGRADE');
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`completes an implicit-TLS handshake with ${version}`, async () => {
      const { port } = await start({}, { implicit: true });
      const c = await connect(port, { ...trustCa(), minVersion: version, maxVersion: version });
      expect((c.raw as tls.TLSSocket).getProtocol()).to.equal(version);
      expect(await c.readLine()).to.equal('+ NOTE ready');
      c.line('WHO');
      expect(await c.readLine()).to.contain(`protocol=${version}`);
    });
  }

  it('listens on IPv6 loopback and verifies against the ::1 address in the certificate', async () => {
    const { port, server } = await start({}, { implicit: true, host: '::1' });
    expect(server.address().family).to.equal('IPv6');
    const c = await LineClient.connect(port, { host: '::1', tls: { ca: certs.ca.cert } }); // no servername: checked against ::1
    clients.push(c);
    expect((c.raw as tls.TLSSocket).authorized).to.equal(true);
    expect(await c.readLine()).to.equal('+ NOTE ready');
    c.line('WHO');
    expect(await c.readLine()).to.match(/^\+ tls=true /);
  });

  it('refuses TLS 1.2 clients on a TLS-1.3-only listener with protocol_version, and keeps serving others', async () => {
    const { port } = await start({ protocols: SslProtocols.Tls13 }, { implicit: true });
    await expectHandshakeFailure(port, { ...trustCa(), maxVersion: 'TLSv1.2' });
    const ok = await connect(port, trustCa());
    expect(await ok.readLine()).to.equal('+ NOTE ready');
  });

  it('never offers TLS below 1.2 by default: protocol_version alert', async () => {
    const { port } = await start({}, { implicit: true });
    await expectHandshakeFailure(port, { ...trustCa(), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  });

  describe('client certificates and policy errors', () => {
    type Seen = { flags: SslPolicyErrors; chain: X509Chain; subject?: string };
    function recorder(answer: boolean | 'throw' = true): { seen: Seen[]; cb: ServerSecurityOptions['validationCallback'] } {
      const seen: Seen[] = [];
      return {
        seen,
        cb: (_sender, cert, chain, flags) => {
          seen.push({ flags, chain, subject: cert?.subject });
          if (answer === 'throw') throw new Error('policy exploded');
          return answer;
        },
      };
    }

    // OpenSSL's verify result is read on sockets we wrap ourselves too: its code comes first (the purpose check,
    // for one, only OpenSSL makes: without it a server certificate passed as a client certificate).
    const cases: Array<[string, () => { cert: string; key: string } | undefined, SslPolicyErrors, X509ChainStatusFlags | undefined, string | undefined]> = [
      ['a valid certificate', () => certs.client, SslPolicyErrors.None, undefined, undefined],
      ['no certificate', () => undefined, SslPolicyErrors.RemoteCertificateNotAvailable, undefined, undefined],
      ['a certificate from an untrusted CA', () => certs.untrustedClient, SslPolicyErrors.RemoteCertificateChainErrors, X509ChainStatusFlags.PartialChain, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['an expired certificate', () => certs.expiredClient, SslPolicyErrors.RemoteCertificateChainErrors, X509ChainStatusFlags.NotTimeValid, 'CERT_HAS_EXPIRED'],
      ['a certificate for servers only (wrong extended key usage)', () => certs.server, SslPolicyErrors.RemoteCertificateChainErrors, X509ChainStatusFlags.NotValidForUsage, 'INVALID_PURPOSE'],
      ['a self-signed certificate', () => certs.selfSignedClient, SslPolicyErrors.RemoteCertificateChainErrors, X509ChainStatusFlags.UntrustedRoot, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ];
    for (const [name, pick, flags, status, code] of cases) {
      it(`reports ${SslPolicyErrors[flags]}${code ? ` (${code})` : ''} for ${name} and lets the callback decide`, async () => {
        const { seen, cb } = recorder(true);
        const { port } = await start({ requestClientCertificate: true, trustedCertificates: certs.ca.cert, validationCallback: cb }, { implicit: true });
        const c = await connect(port, { ...trustCa(), ...(pick() ?? {}) });
        expect(await c.readLine()).to.equal('+ NOTE ready');
        expect(seen).to.have.length(1);
        expect(seen[0].flags).to.equal(flags);
        if (status) {
          expect(seen[0].chain.chainStatus[0]).to.include({ status, code });
          expect(seen[0].chain.chainStatus[0].statusInformation).to.match(new RegExp(`^${code}: .+`));
        } else {
          expect(seen[0].chain.chainStatus).to.deep.equal([]);
        }
        c.line('WHO');
        expect(await c.readLine()).to.contain(`policy=${flags}`);
      });
    }

    it('closes the connection when the callback says no', async () => {
      const { seen, cb } = recorder(false);
      const { port } = await start({ requestClientCertificate: true, trustedCertificates: certs.ca.cert, validationCallback: cb }, { implicit: true });
      await expectRefused(port, { ...trustCa(), ...certs.client }, 'client certificate refused (policy errors 0)');
      expect(seen).to.have.length(1);
    });

    it('refuses the peer when the callback throws, and keeps serving', async () => {
      let calls = 0;
      const { port } = await start(
        {
          requestClientCertificate: true,
          trustedCertificates: certs.ca.cert,
          validationCallback: () => {
            if (++calls === 1) throw new Error('policy exploded');
            return true;
          },
        },
        { implicit: true },
      );
      await expectRefused(port, { ...trustCa(), ...certs.client }, 'validation callback failed: policy exploded');
      const ok = await connect(port, { ...trustCa(), ...certs.client });
      expect(await ok.readLine()).to.equal('+ NOTE ready');
      expect(calls).to.equal(2);
    });

    it('without a callback accepts a missing certificate when requested but not required', async () => {
      const { port } = await start({ requestClientCertificate: true, trustedCertificates: certs.ca.cert }, { implicit: true });
      const c = await connect(port, trustCa());
      expect(await c.readLine()).to.equal('+ NOTE ready');
    });

    it('without a callback refuses a missing certificate when required, and an untrusted one', async () => {
      const { port } = await start({ requireClientCertificate: true, trustedCertificates: certs.ca.cert }, { implicit: true });
      await expectRefused(port, trustCa(), `client certificate refused (policy errors ${SslPolicyErrors.RemoteCertificateNotAvailable})`);
      await expectRefused(port, { ...trustCa(), ...certs.untrustedClient }, `client certificate refused (policy errors ${SslPolicyErrors.RemoteCertificateChainErrors})`);
      const ok = await connect(port, { ...trustCa(), ...certs.client });
      expect(await ok.readLine()).to.equal('+ NOTE ready');
    });

    it('asks for the certificate during a STARTTLS-style upgrade too', async () => {
      const { seen, cb } = recorder(true);
      const { port } = await start({ requestClientCertificate: true, trustedCertificates: certs.ca.cert, validationCallback: cb });
      const c = await connect(port);
      await c.readLine();
      c.line('UPGRADE');
      await c.readLine();
      await c.startTls({ ...trustCa(), ...certs.client });
      c.line('WHO');
      expect(await c.readLine()).to.match(/cert=.*CN=postern-client/);
      expect(seen[0].flags).to.equal(SslPolicyErrors.None);
    });
  });

  it('destroys a connection whose handshake does not finish in time', async () => {
    const { port } = await start({ handshakeTimeoutMs: 150 }, { implicit: true });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    // No wall clock: the close must come from our handshake timer (reason `timeout`), not from anything else.
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect((await log.next('tls handshake failed')).meta).to.include({ reason: 'timeout', error: 'TLS handshake did not finish within 150 ms' });
  });

  it('chooses the certificate by SNI', async () => {
    const { port } = await start({ sni: { 'other.example': certs.wrongHostServer } }, { implicit: true });
    const a = await connect(port, { ca: certs.ca.cert, servername: 'other.example' });
    expect((a.raw as tls.TLSSocket).getPeerCertificate().subject.CN).to.equal('other.example');
    const b = await connect(port, trustCa());
    expect((b.raw as tls.TLSSocket).getPeerCertificate().subject.CN).to.equal('localhost');
  });

  it('serves a reloaded certificate to new connections only', async () => {
    const { port, security } = await start({}, { implicit: true });
    const before = await connect(port, trustCa());
    const mutable = security.options as { certificate?: ServerSecurityOptions['certificate'] };
    mutable.certificate = certs.wrongHostServer;
    await security.reload();
    const after = await connect(port, { ca: certs.ca.cert, servername: 'other.example', checkServerIdentity: () => undefined });
    expect((after.raw as tls.TLSSocket).getPeerCertificate().subject.CN).to.equal('other.example');
    before.line('HELLO');
    expect(await before.readLine()).to.equal('+ NOTE ready');
    expect(await before.readLine()).to.equal('+ hello');
  });

  it('generates a self-signed certificate when none is configured', async () => {
    const security = new ServerSecurity({});
    await security.prepare();
    expect(security.isSelfSigned).to.equal(true);
    expect(security.fingerprint256).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(security.certificate?.checkIP('127.0.0.1')).to.equal('127.0.0.1');
  });

  it('refuses over-long lines, then closes a client that keeps erring', async () => {
    const { port } = await start();
    const c = await connect(port);
    await c.readLine();
    c.line('ECHO ' + 'x'.repeat(5000));
    expect(await c.readLine()).to.equal('- line too long');
    c.line('ECHO fine');
    expect(await c.readLine()).to.equal('+ fine');
    for (let i = 0; i < 10; i++) c.line('BOGUS');
    const lines = await c.expect(/too many errors/);
    expect(lines.filter((l) => l === '- unknown BOGUS')).to.have.length(10);
    await c.closed();
  });

  it('disconnects a client that streams a line without end, without buffering it', async () => {
    const { port } = await start();
    const c = await connect(port);
    await c.readLine();
    const junk = Buffer.alloc(256 * 1024, 0x61);
    for (let i = 0; i < 8 && !c.isClosed; i++) c.send(junk);
    const lines = await c.expect(/line too long/);
    expect(lines).to.deep.equal(['- line too long']);
    await c.closed();
  });

  it('bounds the replies it queues for a client that pipelines without reading them, and answers everything in order', async () => {
    const security = new ServerSecurity({ certificate: certs.server });
    let maxQueued = 0;
    // Records how much each write carries: the reply queue's size whenever the session flushes it.
    class MeasuredHandler extends NoteHandler {
      protected override createSession(connection: Connection): NoteSession {
        const session = super.createSession(connection);
        // The command loop writes through writeQueued (flush() is the same write, with a promise always).
        const write = session.writeQueued.bind(session);
        session.writeQueued = () => {
          maxQueued = Math.max(maxQueued, session.queuedReplyLength);
          return write();
        };
        return session;
      }
    }
    const server = new TcpServer(new MeasuredHandler(security), { port: 0 }, log);
    servers.push(server);
    const { port } = await server.start();
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause(); // do not read while sending
    const sent = 40_000; // ~6 MB of commands, as much in replies
    socket.write(('ECHO ' + 'r'.repeat(150) + '\r\n').repeat(sent));
    let received = '';
    let count = 0;
    const done = new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        let i: number;
        while ((i = received.indexOf('\r\n')) !== -1) {
          if (received.startsWith('+ r')) count++;
          received = received.slice(i + 2);
          if (count === sent) resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 200)); // let the server fill every buffer while we do not read
    socket.resume();
    await done;
    socket.destroy();
    expect(maxQueued).to.be.greaterThan(0).and.at.most(REPLY_QUEUE_LIMIT + 200);
  });

  it('refuses connections over the limit with the handler line', async () => {
    const { port } = await start({}, { maxConnections: 1 });
    const first = await connect(port);
    await first.readLine();
    const second = await connect(port);
    expect(await second.readLine()).to.equal('- busy');
    await second.closed();
  });

  it('closes gracefully with clients still connected and leaves nothing behind', async () => {
    const { port, server } = await start({}, { closeTimeoutMs: 300 });
    const a = await connect(port);
    const b = await connect(port);
    await a.readLine();
    await b.readLine();
    await server.close();
    await a.closed();
    await b.closed();
    expect(server.connections.size).to.equal(0);
    await server.close(); // idempotent
  });

  /**
   * A refusal by policy. TLS 1.3: the client finishes its side of the handshake (so connecting succeeds), then the
   * server closes without a greeting; the server logs `rejected-by-policy` with `error`. A connect error (a dead
   * server, a refused port) fails the test.
   */
  async function expectRefused(port: number, options: tls.ConnectionOptions, error: string): Promise<void> {
    const from = log.records.length;
    const c = await connect(port, options);
    await c.closed();
    expect(c.pending).to.equal('');
    const failed = log.records.slice(from).filter((r) => r.message === 'tls handshake failed');
    expect(failed.map((r) => r.meta)).to.have.length(1);
    expect(failed[0].meta).to.include({ reason: 'rejected-by-policy', error });
  }

  /** The server refuses the client's versions: the client gets alert protocol_version(70), the server logs why. */
  async function expectHandshakeFailure(port: number, options: tls.ConnectionOptions): Promise<void> {
    const err = await LineClient.connect(port, { tls: options }).then(
      (c) => {
        clients.push(c);
        return undefined;
      },
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code, 'handshake should fail with an alert').to.equal('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    const failed = await log.next('tls handshake failed');
    expect(failed.meta).to.include({ reason: 'protocol', code: 'ERR_SSL_UNSUPPORTED_PROTOCOL' });
  }
});
