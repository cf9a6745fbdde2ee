import { expect } from 'chai';
import type { X509Certificate } from 'node:crypto';
import { ClientSecurity, type ClientSecurityOptions } from '../../lib/core/client-security.js';
import { Connection } from '../../lib/core/connection.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors, X509ChainStatusFlags, type LocalCertificate, type X509Chain } from '../../lib/core/policy-errors.js';
import { ServerSecurity, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { SslProtocols } from '../../lib/core/ssl-protocols.js';
import { TcpClient } from '../../lib/core/tcp-client.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { TlsHandshakeError } from '../../lib/core/tls-errors.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { ConnectionLines } from './connection-lines.js';

const log = createLogger({ silent: true });

type Mode = 'implicit' | 'starttls';

describe('core: TcpClient and authenticateAsClient', () => {
  let certs: DevCertificates;
  const servers: TcpServer[] = [];
  const conns: Connection[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  afterEach(async () => {
    await Promise.all(conns.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(mode: Mode, sec: ServerSecurityOptions = {}): Promise<number> {
    const security = new ServerSecurity({ certificate: certs.server, ...sec });
    const server = new TcpServer(new NoteHandler(security), { port: 0, security: mode === 'implicit' ? security : undefined }, log);
    servers.push(server);
    return (await server.start()).port;
  }

  /**
   * Dials `host:port` and secures the connection: implicit TLS through `TcpClient.connect({ security })`,
   * STARTTLS-style through the NOTE `UPGRADE` command and `authenticateAsClient`. Resolves after the greeting.
   */
  async function dial(mode: Mode, port: number, options: ClientSecurityOptions, host = '127.0.0.1'): Promise<ConnectionLines> {
    const security = new ClientSecurity(options);
    if (mode === 'implicit') {
      const conn = await TcpClient.connect({ host, port, security });
      conns.push(conn);
      const lines = new ConnectionLines(conn);
      expect(await lines.readLine()).to.equal('+ NOTE ready');
      return lines;
    }
    const conn = await TcpClient.connect({ host, port });
    conns.push(conn);
    const lines = new ConnectionLines(conn);
    expect(await lines.readLine()).to.equal('+ NOTE ready');
    expect(await lines.command('UPGRADE')).to.equal('+ go ahead');
    await conn.authenticateAsClient(security);
    return lines;
  }

  async function dialFails(mode: Mode, port: number, options: ClientSecurityOptions, host = '127.0.0.1'): Promise<TlsHandshakeError> {
    const err = await dial(mode, port, options, host).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'the handshake should fail').to.be.instanceOf(TlsHandshakeError);
    return err as TlsHandshakeError;
  }

  type Seen = { sender: unknown; cert?: X509Certificate; chain: X509Chain; flags: SslPolicyErrors };
  function recorder(answer: boolean | 'throw'): { seen: Seen[]; cb: NonNullable<ClientSecurityOptions['validationCallback']> } {
    const seen: Seen[] = [];
    return {
      seen,
      cb: (sender, cert, chain, flags) => {
        seen.push({ sender, cert, chain, flags });
        if (answer === 'throw') throw new Error('client policy exploded');
        return answer;
      },
    };
  }

  for (const mode of ['implicit', 'starttls'] as const) {
    describe(`against a ${mode === 'implicit' ? 'implicit-TLS' : 'STARTTLS-style'} listener`, () => {
      it('accepts a server whose chain ends in the trusted CA (policy None) and exposes the TLS facts', async () => {
        const port = await start(mode);
        const { seen, cb } = recorder(true);
        const c = await dial(mode, port, { trustedCertificates: certs.ca.cert, validationCallback: cb });
        expect(seen).to.have.length(1);
        expect(seen[0].flags).to.equal(SslPolicyErrors.None);
        expect(seen[0].sender).to.equal(c.connection);
        expect(seen[0].cert?.subject).to.contain('CN=localhost');
        expect(seen[0].chain.chainStatus).to.deep.equal([]);
        const sec = c.connection.security;
        expect(sec.tls).to.equal(true);
        expect(sec.protocol).to.equal('TLSv1.3');
        expect(sec.cipher).to.be.a('string').and.not.equal('unknown');
        expect(sec.sni).to.equal('127.0.0.1');
        expect(sec.policyErrors).to.equal(SslPolicyErrors.None);
        expect(await c.command('WHO')).to.match(/^\+ tls=true protocol=TLSv1\.3 /);
      });

      it('accepts policy None without a callback', async () => {
        const port = await start(mode);
        const c = await dial(mode, port, { trustedCertificates: certs.ca.cert });
        expect(await c.command('ECHO secure')).to.equal('+ secure');
      });

      it('reports ChainErrors against Node roots: refused without a callback, accepted by a callback returning true', async () => {
        const port = await start(mode);
        const err = await dialFails(mode, port, {});
        expect(err.reason).to.equal('rejected-by-policy');
        const { seen, cb } = recorder(true);
        const c = await dial(mode, port, { validationCallback: cb });
        expect(seen[0].flags).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
        expect(seen[0].chain.chainStatus).to.have.length.greaterThan(0);
        expect(seen[0].chain.chainStatus[0].statusInformation).to.be.a('string').with.length.greaterThan(0);
        expect(c.connection.security.policyErrors).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
        // The server sends only its leaf: the issuer is missing from Node's roots.
        expect(seen[0].chain.chainStatus.map((x) => x.status)).to.include(X509ChainStatusFlags.PartialChain);
        expect(await c.command('ECHO accepted')).to.equal('+ accepted');
      });

      it('reports UntrustedRoot against Node roots when the server sends its chain up to its own root', async () => {
        const port = await start(mode, { certificate: { ...certs.server, chain: certs.ca.cert } });
        const { seen, cb } = recorder(true);
        await dial(mode, port, { validationCallback: cb });
        expect(seen[0].flags).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
        expect(seen[0].chain.chainStatus.map((x) => x.status)).to.include(X509ChainStatusFlags.UntrustedRoot);
        expect(seen[0].chain.certificates.map((x) => x.subject)).to.have.length(2);
      });

      it('reports RemoteCertificateNameMismatch when targetHost does not match the certificate', async () => {
        const port = await start(mode);
        const err = await dialFails(mode, port, { trustedCertificates: certs.ca.cert, targetHost: 'other.example' });
        expect(err.reason).to.equal('rejected-by-policy');
        const { seen, cb } = recorder(true);
        const c = await dial(mode, port, { trustedCertificates: certs.ca.cert, targetHost: 'other.example', validationCallback: cb });
        expect(seen[0].flags).to.equal(SslPolicyErrors.RemoteCertificateNameMismatch);
        expect(c.connection.security.sni).to.equal('other.example');
      });

      for (const host of ['127.0.0.1', 'localhost']) {
        it(`checks the name against the dialled host "${host}" when targetHost is empty`, async () => {
          const port = await start(mode);
          const { seen, cb } = recorder(true);
          const c = await dial(mode, port, { trustedCertificates: certs.ca.cert, targetHost: '', validationCallback: cb }, host);
          expect(seen[0].flags).to.equal(SslPolicyErrors.None);
          expect(c.connection.security.sni).to.equal(host);
        });
      }

      it('refuses the server when the validation callback throws', async () => {
        const port = await start(mode);
        const { seen, cb } = recorder('throw');
        const err = await dialFails(mode, port, { trustedCertificates: certs.ca.cert, validationCallback: cb });
        expect(err.reason).to.equal('rejected-by-policy');
        expect(seen).to.have.length(1);
      });

      it('refuses the server when the validation callback resolves false', async () => {
        const port = await start(mode);
        const err = await dialFails(mode, port, { trustedCertificates: certs.ca.cert, validationCallback: async () => false });
        expect(err.reason).to.equal('rejected-by-policy');
      });

      it('presents the first certificate valid for client authentication (skipping an expired one)', async () => {
        const subjects: string[] = [];
        const port = await start(mode, {
          requireClientCertificate: true,
          trustedCertificates: certs.ca.cert,
          validationCallback: (_s, cert, _chain, flags) => {
            subjects.push(cert?.subject ?? '-');
            return flags === SslPolicyErrors.None;
          },
        });
        const c = await dial(mode, port, { trustedCertificates: certs.ca.cert, certificates: [certs.expiredClient, certs.client, certs.untrustedClient] });
        expect(await c.command('WHO')).to.match(/cert=.*CN=postern-client policy=0$/);
        expect(subjects).to.have.length(1);
        expect(subjects[0]).to.contain('CN=postern-client');
      });

      it('presents no certificate when none in the list is usable', async () => {
        const port = await start(mode, { requestClientCertificate: true, trustedCertificates: certs.ca.cert });
        const c = await dial(mode, port, { trustedCertificates: certs.ca.cert, certificates: [certs.expiredClient] });
        expect(await c.command('WHO')).to.match(/cert=- policy=1$/);
      });

      it('calls the selection callback with (sender, targetHost, localCertificates, undefined, []) and presents its choice', async () => {
        const port = await start(mode, { requestClientCertificate: true, trustedCertificates: certs.ca.cert, validationCallback: () => true });
        const calls: unknown[][] = [];
        const list: LocalCertificate[] = [certs.untrustedClient, certs.client];
        const c = await dial(mode, port, {
          trustedCertificates: certs.ca.cert,
          targetHost: 'localhost',
          certificates: list,
          selectionCallback: (...args) => {
            calls.push(args);
            return args[2][1];
          },
        });
        expect(calls).to.have.length(1);
        const [sender, targetHost, local, remote, issuers] = calls[0];
        expect(sender).to.be.instanceOf(Connection);
        expect(sender).to.equal(c.connection);
        expect(targetHost).to.equal('localhost');
        expect(local).to.deep.equal(list);
        expect(remote).to.equal(undefined);
        expect(issuers).to.deep.equal([]);
        expect(await c.command('WHO')).to.match(/cert=.*CN=postern-client policy=0$/);
      });

      it('fails with reason "protocol" when a TLS-1.3-only client meets a TLS-1.2-only server', async () => {
        const port = await start(mode, { protocols: SslProtocols.Tls12 });
        const err = await dialFails(mode, port, { trustedCertificates: certs.ca.cert, protocols: SslProtocols.Tls13 });
        expect(err.reason).to.equal('protocol');
        // The server keeps serving.
        const ok = await dial(mode, port, { trustedCertificates: certs.ca.cert });
        expect(ok.connection.security.protocol).to.equal('TLSv1.2');
      });
    });
  }

  it('closes the Connection (emitting close once) when the handshake is refused by policy', async () => {
    const port = await start('starttls');
    const conn = await TcpClient.connect({ host: '127.0.0.1', port });
    conns.push(conn);
    const lines = new ConnectionLines(conn);
    let closes = 0;
    conn.on('close', () => closes++);
    await lines.readLine();
    expect(await lines.command('UPGRADE')).to.equal('+ go ahead');
    const err = await conn.authenticateAsClient(new ClientSecurity({})).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TlsHandshakeError);
    await lines.closed();
    expect(conn.isClosed).to.equal(true);
    expect(closes).to.equal(1);
  });

  it('rejects connect to a closed port with the socket error', async () => {
    const port = await start('implicit');
    await servers.splice(0)[0].close();
    const err = await TcpClient.connect({ host: '127.0.0.1', port }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
  });
});
