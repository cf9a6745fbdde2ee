/**
 * ListenerSecurities' bookkeeping without handshakes (issue 16, mutation testing): which listeners have their own
 * configuration, that `prepare()` prepares every one in use, and that `close()` closes exactly the configurations it
 * derived — a closed derived configuration no longer follows the shared certificate, one given as it is still does.
 */
import { expect } from 'chai';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { ListenerSecurities } from '../../lib/core/listener-securities.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { generateTicketKeys } from '../../lib/core/ticket-keys.js';
import { createLogger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';
import { resumeHandshake } from '../support/tls-resume.js';

describe('core: ListenerSecurities bookkeeping', () => {
  let certs: DevCertificates;
  const made: ServerSecurity[] = [];
  before(async () => {
    certs = await testCertificates();
  });
  const servers: TcpServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const s of made.splice(0).reverse()) s.close();
  });

  /** Serves `sec` on implicit TLS; each call is one TLS 1.2 handshake offering `session`: did it resume, and the next session. */
  async function ticketServer(sec: ServerSecurity): Promise<(session?: Buffer) => Promise<{ reused: boolean; session?: Buffer }>> {
    const server = new TcpServer(new NoteHandler(sec), { port: 0, security: sec }, createLogger({ silent: true }));
    servers.push(server);
    const { port } = await server.start();
    return (session) => resumeHandshake(port, { ca: certs.ca.cert, session, maxVersion: 'TLSv1.2' });
  }

  it('names the listeners with their own configuration, skips undefined entries, and prepares every configuration', async () => {
    const shared = new ServerSecurity({ certificate: certs.server });
    const given = new ServerSecurity({ certificate: certs.wrongHostServer });
    made.push(shared, given);
    const securities = new ListenerSecurities(shared, { pop3: undefined, imaps: { requestClientCertificate: true }, pop3s: given });
    made.push(securities.securityFor('imaps'));
    expect(securities.listenerNames).to.deep.equal(['imaps', 'pop3s']);
    expect(['imaps', 'pop3s', 'pop3', 'smtp'].map((n) => securities.hasOwnSecurity(n))).to.deep.equal([true, true, false, false]);
    expect(securities.securityFor('pop3')).to.equal(shared);
    expect(securities.all()).to.deep.equal([shared, securities.securityFor('imaps'), given]);
    expect(securities.all().map((s) => s.isPrepared)).to.deep.equal([false, false, false]);
    await securities.prepare();
    expect(securities.all().map((s) => s.isPrepared)).to.deep.equal([true, true, true]);
    expect(securities.securityFor('imaps').requestsClientCertificate).to.equal(true);
  });

  it('closes the configurations it derived, not one it was given', async () => {
    const shared = new ServerSecurity({ certificate: certs.wrongHostServer });
    made.push(shared);
    const mine = new ListenerSecurities(shared, { imaps: { requestClientCertificate: true } });
    const derived = mine.securityFor('imaps');
    made.push(derived);
    // Derived by the caller (so it follows the shared certificate too) and given as it is: not the listeners' to close.
    const given = shared.derive({ requireClientCertificate: true }, 'given');
    made.push(given);
    const theirs = new ListenerSecurities(shared, { pop3s: given });
    await mine.prepare();
    await theirs.prepare();
    const before = shared.fingerprint256;
    expect([derived.fingerprint256, given.fingerprint256]).to.deep.equal([before, before]);
    let derivedReloads = 0;
    derived.onReload = () => derivedReloads++;
    const givenReloaded = new Promise<void>((resolve) => (given.onReload = resolve));
    mine.close();
    theirs.close();
    await shared.useCertificate(certs.server);
    await givenReloaded; // the derived one, had it still followed, would have been reloaded first
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(shared.fingerprint256).to.not.equal(before);
    expect(given.fingerprint256).to.equal(shared.fingerprint256);
    expect([derived.fingerprint256, derivedReloads]).to.deep.equal([before, 0]);
  });

  it('labels each derived configuration with its listener name, so processes sharing ticket keys agree whatever the order', async () => {
    const keys = generateTicketKeys();
    const [one, two] = [new ServerSecurity({ certificate: certs.server, ticketKeys: keys }), new ServerSecurity({ certificate: certs.server, ticketKeys: keys })];
    made.push(one, two);
    // Two workers whose configurations list the same listeners in another order.
    const first = new ListenerSecurities(one, { imaps: { requestClientCertificate: false }, pop3s: { requestClientCertificate: false } });
    const second = new ListenerSecurities(two, { pop3s: { requestClientCertificate: false }, imaps: { requestClientCertificate: false } });
    made.push(...first.all().slice(1), ...second.all().slice(1));
    const imapsOne = await ticketServer(first.securityFor('imaps'));
    const imapsTwo = await ticketServer(second.securityFor('imaps'));
    const pop3sTwo = await ticketServer(second.securityFor('pop3s'));
    const { session } = await imapsOne();
    expect((await imapsTwo(session)).reused, 'imaps on the other worker').to.equal(true);
    expect((await pop3sTwo(session)).reused, 'pop3s on the other worker').to.equal(false);
  });
});
