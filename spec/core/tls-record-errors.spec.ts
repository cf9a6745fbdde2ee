import { expect } from 'chai';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Connection } from '../../lib/core/connection.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';

const log = createLogger({ silent: true });

/** An application-data record (TLS 1.2/1.3 framing) that no key decrypts: the server must answer `bad_record_mac`. */
const FORGED_RECORD = Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...Buffer.alloc(32, 7)]);

/**
 * A TLS client whose record layer runs over a Duplex the test controls: the TLS socket reads what the server sent and
 * writes through `raw`, so the test can put a forged record on the wire and still see the server's FIN and close.
 */
class TappedTlsClient {
  readonly tls: tls.TLSSocket;
  readonly closed: Promise<'closed'>;
  received = '';
  tlsError?: string;

  private constructor(readonly raw: net.Socket) {
    const tap = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        raw.write(chunk, done);
      },
    });
    raw.on('data', (d: Buffer) => tap.push(d));
    raw.on('error', () => undefined);
    this.closed = new Promise((resolve) => raw.once('close', () => resolve('closed')));
    this.tls = tls.connect({ socket: tap, rejectUnauthorized: false, servername: 'localhost' });
    this.tls.on('data', (d: Buffer) => (this.received += d.toString('latin1')));
    this.tls.on('error', (err: NodeJS.ErrnoException) => (this.tlsError = err.code));
  }

  /** Connects; with `upgrade`, speaks NOTE's plaintext `UPGRADE` first (the STARTTLS-style path). */
  static async open(port: number, upgrade: boolean): Promise<TappedTlsClient> {
    const raw = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
    if (upgrade) {
      let plain = '';
      await new Promise<void>((resolve) => {
        const onData = (d: Buffer): void => {
          plain += d.toString('latin1');
          if (plain.includes('+ NOTE ready\r\n') && !plain.includes('UPGRADE-SENT')) {
            plain += 'UPGRADE-SENT';
            raw.write('UPGRADE\r\n');
          }
          if (plain.includes('+ go ahead\r\n')) {
            raw.off('data', onData);
            resolve();
          }
        };
        raw.on('data', onData);
      });
    }
    const client = new TappedTlsClient(raw);
    await new Promise<void>((resolve, reject) => client.tls.once('secureConnect', resolve).once('error', reject));
    return client;
  }

  /** Resolves once `text` arrived over TLS. */
  async waitFor(text: string): Promise<void> {
    while (!this.received.includes(text)) await new Promise((r) => this.tls.once('data', r));
  }
}

describe('core: a TLS record error after the handshake closes the connection at once', () => {
  let certs: DevCertificates;
  const servers: TcpServer[] = [];
  const clients: TappedTlsClient[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.raw.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(implicit: boolean): Promise<{ port: number; server: TcpServer }> {
    const security = new ServerSecurity({ certificate: certs.server });
    // An idle timeout far beyond the test's: a close can only come from the record error.
    const server = new TcpServer(new NoteHandler(security), { port: 0, security: implicit ? security : undefined, idleTimeoutMs: 600_000 }, log);
    servers.push(server);
    const { port } = await server.start();
    return { port, server };
  }

  for (const implicit of [true, false]) {
    it(`${implicit ? 'implicit TLS' : 'after a STARTTLS-style upgrade'}: alert bad_record_mac, then FIN and close with reason "error"; the listener keeps serving`, async () => {
      const { port, server } = await start(implicit);
      const client = await TappedTlsClient.open(port, !implicit);
      clients.push(client);
      if (implicit) await client.waitFor('+ NOTE ready\r\n');
      client.tls.write('ECHO still here\r\n');
      await client.waitFor('still here');
      const [connection] = [...server.connections] as Connection[];
      const reason = new Promise<unknown>((resolve) => connection!.once('close', resolve));
      client.raw.write(FORGED_RECORD);
      expect(await reason).to.equal('error');
      expect(await client.closed).to.equal('closed');
      expect(client.tlsError, 'the alert the server sent').to.equal('ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC');
      expect(server.connections.size).to.equal(0);
      const next = await TappedTlsClient.open(port, !implicit);
      clients.push(next);
      next.tls.write('ECHO next\r\n');
      await next.waitFor('next');
    });
  }
});
