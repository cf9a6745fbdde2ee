import { expect } from 'chai';
import { constants as cryptoConstants } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ServerSecurity, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { generateTicketKeys, TICKET_KEY_BYTES, TicketKeyRotation } from '../../lib/core/ticket-keys.js';
import { generateServerCertificate, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { resumeHandshake, type ResumeResult } from '../support/tls-resume.js';

const log = createLogger({ silent: true });

/** One implicit-TLS handshake; resolves whether the session was resumed and the session to reuse next. */
function handshake(port: number, ca: string, session: Buffer | undefined, extra: tls.ConnectionOptions = {}): Promise<ResumeResult> {
  return resumeHandshake(port, { ca, session, ...extra });
}

describe('core: session tickets and their keys', () => {
  let certs: DevCertificates;
  const servers: TcpServer[] = [];
  const securities: ServerSecurity[] = [];

  before(async () => {
    certs = await testCertificates();
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const s of securities.splice(0)) s.close();
  });

  async function start(opts: ServerSecurityOptions = {}): Promise<{ port: number; security: ServerSecurity }> {
    const security = new ServerSecurity({ certificate: certs.server, ...opts });
    securities.push(security);
    const server = new TcpServer(new NoteHandler(security), { port: 0, security }, log);
    servers.push(server);
    return { port: (await server.start()).port, security };
  }

  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${maxVersion}: a ticket from one server resumes on another holding the same keys, not on one with other keys`, async () => {
      const keys = generateTicketKeys();
      const a = await start({ ticketKeys: keys });
      const b = await start({ ticketKeys: keys });
      const c = await start();
      const first = await handshake(a.port, certs.ca.cert, undefined, { maxVersion });
      expect(first).to.include({ reused: false, protocol: maxVersion });
      expect((await handshake(b.port, certs.ca.cert, first.session, { maxVersion })).reused).to.equal(true);
      expect((await handshake(c.port, certs.ca.cert, first.session, { maxVersion })).reused).to.equal(false);
    });
  }

  it('setTicketKeys switches every context at once: old tickets stop resuming, new ones resume elsewhere', async () => {
    const a = await start();
    const b = await start({ ticketKeyRotationMs: 0 });
    const before = await handshake(a.port, certs.ca.cert, undefined);
    const keys = generateTicketKeys();
    a.security.setTicketKeys(keys);
    b.security.setTicketKeys(keys);
    expect((await handshake(a.port, certs.ca.cert, before.session)).reused).to.equal(false);
    const after = await handshake(a.port, certs.ca.cert, undefined);
    expect((await handshake(b.port, certs.ca.cert, after.session)).reused).to.equal(true);
    expect(() => a.security.setTicketKeys(Buffer.alloc(47))).to.throw(RangeError, `${TICKET_KEY_BYTES} bytes`);
  });

  // OpenSSL seals tickets with the keys of the context a socket started with (the default one), also when SNI picked a
  // store certificate's context, so the store's contexts need no keys of their own: this fails when the default
  // context keeps its old keys.
  it('setTicketKeys also applies to SNI names served from the certificate store', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-ticket-store-'));
    try {
      const aTest = await generateServerCertificate(certs.ca, ['a.test']);
      await writeFile(path.join(dir, 'a.pem'), aTest.cert + aTest.key);
      const store = { certificateStore: { directory: dir } };
      const a = await start(store);
      const b = await start({ ...store, ticketKeyRotationMs: 0 });
      const sni = { servername: 'a.test' };
      const before = await handshake(a.port, certs.ca.cert, undefined, sni); // builds a.test's context with the first keys
      const keys = generateTicketKeys();
      a.security.setTicketKeys(keys);
      b.security.setTicketKeys(keys);
      expect((await handshake(a.port, certs.ca.cert, before.session, sni)).reused, 'a ticket sealed with the old keys').to.equal(false);
      const after = await handshake(a.port, certs.ca.cert, undefined, sni);
      expect((await handshake(b.port, certs.ca.cert, after.session, sni)).reused, 'a ticket sealed with the new keys, on the other server').to.equal(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps working keys across reload(): rebuilt contexts get the current ticket keys', async () => {
    const a = await start();
    const first = await handshake(a.port, certs.ca.cert, undefined);
    await a.security.reload();
    expect((await handshake(a.port, certs.ca.cert, first.session)).reused).to.equal(true);
  });

  it('TLS 1.2 session IDs never resume (no server session cache), tickets or not', async () => {
    const a = await start();
    const noTicket = { maxVersion: 'TLSv1.2' as const, secureOptions: cryptoConstants.SSL_OP_NO_TICKET };
    const first = await handshake(a.port, certs.ca.cert, undefined, noTicket);
    expect(first.session).to.not.equal(undefined);
    expect((await handshake(a.port, certs.ca.cert, first.session, noTicket)).reused).to.equal(false);
  });

  it('sessionTickets: false issues no tickets, so nothing resumes', async () => {
    const a = await start({ sessionTickets: false });
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await handshake(a.port, certs.ca.cert, undefined, { maxVersion });
      const second = await handshake(a.port, certs.ca.cert, first.session, { maxVersion });
      expect(second.reused, maxVersion).to.equal(false);
    }
    expect(() => a.security.setTicketKeys(generateTicketKeys())).to.throw(/session tickets are off/);
  });

  it('TicketKeyRotation hands out a new 48-byte set on rotate()', () => {
    const seen: Buffer[] = [];
    const r = new TicketKeyRotation(0, (k) => seen.push(k));
    const first = r.current;
    const next = r.rotate();
    expect(next).to.have.length(TICKET_KEY_BYTES);
    expect(next.equals(first)).to.equal(false);
    expect(seen).to.deep.equal([next]);
    r.start(); // interval 0: no timer
    r.stop();
  });
});
