/**
 * The ClientHello read ahead of the TLS stack (lib/core/client-hello.ts), and what it is for: answering an ACME
 * TLS-ALPN-01 validation (RFC 8737) under TLS 1.2, where OpenSSL picks the certificate before it selects ALPN.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { parseClientHello } from '../../lib/core/client-hello.js';
import { generateServerCertificate, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { closeAfterEach } from '../support/closers.js';

/** The first bytes a real node:tls client sends (its ClientHello record), captured by a plain TCP server. */
async function clientHelloOf(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const got = once(server, 'connection').then(async (args: unknown[]) => {
      const socket = args[0] as net.Socket;
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      socket.destroy();
      return chunk;
    });
    const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', ...options });
    client.on('error', () => undefined);
    const hello = await got;
    client.destroy();
    return hello;
  } finally {
    server.close();
  }
}

describe('core: ClientHello read ahead (ACME TLS-ALPN-01 under TLS 1.2)', () => {
  let certs: DevCertificates;
  const closers = closeAfterEach();
  before(async () => {
    certs = await testCertificates();
  });
  describe('parseClientHello', () => {
    it("reads the server name and the ALPN list of real TLS 1.2 and TLS 1.3 clients' ClientHellos", async () => {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const hello = await clientHelloOf({ servername: 'acme.example.test', ALPNProtocols: ['acme-tls/1', 'imap'], maxVersion });
        expect(parseClientHello(hello), maxVersion).to.deep.equal({ servername: 'acme.example.test', alpn: ['acme-tls/1', 'imap'] });
      }
      const plain = await clientHelloOf({ maxVersion: 'TLSv1.2' });
      expect(parseClientHello(plain)).to.deep.equal({ servername: undefined, alpn: [] });
    });

    it("asks for more until the first record is whole, and refuses what is not a ClientHello or breaks its lengths", async () => {
      const hello = await clientHelloOf({ servername: 'a.example.test', ALPNProtocols: ['acme-tls/1'] });
      for (const cut of [0, 1, 4, 5, 60, hello.length - 1]) expect(parseClientHello(hello.subarray(0, cut)), `first ${cut} octets`).to.equal('more');
      expect(parseClientHello(Buffer.from('EHLO client.example\r\n'))).to.equal(undefined);
      expect(parseClientHello(Buffer.from([0x16]))).to.equal('more');
      expect(parseClientHello(Buffer.from([0x17, 3, 3, 0, 1, 0])), 'application data').to.equal(undefined);
      const serverHello = Buffer.from(hello);
      serverHello[5] = 2;
      expect(parseClientHello(serverHello), 'a handshake message other than ClientHello').to.equal(undefined);
      const tooLong = Buffer.from(hello);
      tooLong.writeUInt16BE(hello.readUInt16BE(3) + 1, 3);
      expect(parseClientHello(Buffer.concat([tooLong, Buffer.alloc(1)])), 'trailing octets after the message, inside its record').to.deep.include({ servername: 'a.example.test' });
      const lying = Buffer.from(hello);
      lying.writeUIntBE(0xffff, 6, 3);
      expect(parseClientHello(lying), 'a message longer than its record').to.equal(undefined);
      const huge = Buffer.from([0x16, 3, 1, 0x40, 0x01]);
      expect(parseClientHello(huge), 'a record over 2^14 octets').to.equal(undefined);
    });
  });

  describe('an implicit-TLS listener with a pending validation', () => {
    let seen: RecordingLogger;
    async function listener(handshakeTimeoutMs?: number): Promise<number> {
      const security = new ServerSecurity({ certificate: certs.server, handshakeTimeoutMs });
      closers.push(() => security.close());
      await security.prepare();
      const challenge = await generateServerCertificate(certs.untrustedCa, ['acme.example.test']);
      security.acmeChallenges.add('acme.example.test', challenge.key, challenge.cert);
      seen = new RecordingLogger();
      const server = new TcpServer(new NoteHandler(security), { port: 0, security }, seen);
      closers.push(() => server.close());
      return (await server.start()).port;
    }

    /** One handshake: the ALPN protocol chosen and the CN of the certificate shown. */
    async function handshake(port: number, options: tls.ConnectionOptions): Promise<[string | false | null, string]> {
      const c = tls.connect({ port, host: '127.0.0.1', servername: 'acme.example.test', rejectUnauthorized: false, ...options });
      closers.push(() => c.destroy());
      await once(c, 'secureConnect');
      return [c.alpnProtocol, String(c.getPeerCertificate().subject.CN)];
    }

    it('shows the challenge certificate to a TLS 1.2 client offering acme-tls/1, and its own to other TLS 1.2 clients', async () => {
      const port = await listener();
      expect(await handshake(port, { ALPNProtocols: ['acme-tls/1'], maxVersion: 'TLSv1.2' })).to.deep.equal(['acme-tls/1', 'acme.example.test']);
      expect(await handshake(port, { ALPNProtocols: ['imap'], maxVersion: 'TLSv1.2' })).to.deep.equal(['imap', 'localhost']);
      expect(await handshake(port, { maxVersion: 'TLSv1.2' })).to.deep.equal([false, 'localhost']);
      expect(await handshake(port, { ALPNProtocols: ['acme-tls/1'], maxVersion: 'TLSv1.3' })).to.deep.equal(['acme-tls/1', 'acme.example.test']);
    });

    it('hands bytes that are not a ClientHello to the TLS stack, which refuses them', async () => {
      const port = await listener();
      const raw = net.connect(port, '127.0.0.1');
      closers.push(() => raw.destroy());
      raw.on('error', () => undefined);
      raw.write('EHLO client.example\r\n');
      await once(raw, 'close');
      expect((await seen.next('tls handshake failed')).meta).to.include({ reason: 'protocol', code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    });

    // The read-ahead waits up to the handshake limit, then the handshake its own: at most twice the limit in all.
    it('gives up on a client that sends nothing (after at most twice the handshake limit)', async () => {
      const port = await listener(300);
      const raw = net.connect(port, '127.0.0.1');
      closers.push(() => raw.destroy());
      raw.on('error', () => undefined);
      const started = performance.now();
      await once(raw, 'close');
      expect(performance.now() - started).to.be.below(5_000);
      expect((await seen.next('tls handshake failed')).meta).to.include({ reason: 'timeout' });
    });

    it('waits for a ClientHello that arrives in two pieces', async () => {
      const port = await listener();
      const raw = net.connect(port, '127.0.0.1');
      closers.push(() => raw.destroy());
      let first = true;
      // A transport that sends the first write's first 20 octets, then the rest 30 ms later.
      const split = new Duplex({
        write(chunk: Buffer, _encoding, callback) {
          if (!first) return raw.write(chunk, () => callback());
          first = false;
          raw.write(chunk.subarray(0, 20));
          setTimeout(() => raw.write(chunk.subarray(20), () => callback()), 30);
        },
        read() {},
      });
      raw.on('data', (chunk: Buffer) => split.push(chunk));
      raw.on('close', () => split.push(null));
      expect(await handshake(port, { socket: split, ALPNProtocols: ['acme-tls/1'], maxVersion: 'TLSv1.2' })).to.deep.equal(['acme-tls/1', 'acme.example.test']);
    });
  });
});
