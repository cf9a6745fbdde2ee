import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { SmtpHooks } from '../../lib/smtp/smtp-backend.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { testCertificates } from '../support/certs.js';
import { findHaproxy, startHaproxy, type RunningHaproxy } from '../support/haproxy.js';
import { LineClient } from '../support/line-client.js';
import { postgresMissing, startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { plainAuth } from './smtp-harness.js';

/** The client's own source address: another loopback address than the proxy's 127.0.0.1. */
const CLIENT = '127.0.0.5';

describe('smtp: two nodes on one PostgreSQL database behind HAProxy (round-robin, send-proxy-v2)', function () {
  this.timeout(60_000);
  let pg: PostgresCluster | undefined;
  let haproxy: RunningHaproxy | undefined;
  const nodes: RunningMailServer[] = [];
  const peers: Array<Array<PeerInfo>> = [[], []];
  let certs: DevCertificates;

  before(async function () {
    const binary = await findHaproxy();
    const missing = postgresMissing();
    if (!binary || missing) this.skip(); // CI installs both Debian packages (.ci/run)
    certs = await testCertificates();
    pg = await startPostgresCluster();
    const url = await pg.createDatabase();
    for (const i of [0, 1]) {
      nodes.push(
        await startMailServer({
          protocols: ['smtp', 'smtps'],
          store: url,
          users: ['alice:secret@example.com'],
          tls: { certificate: certs.server },
          ca: certs.ca.cert,
          proxyProtocol: { trusted: ['127.0.0.1/32'] },
          modules: [new ContainerModule(({ bind }) => void bind(SmtpHooks).toConstantValue({ onConnect: async (peer) => void peers[i]!.push(peer) }))],
        }),
      );
    }
    haproxy = await startHaproxy(binary!, [
      { name: 'smtp', servers: nodes.map((n) => ({ host: '127.0.0.1', port: n.ports.smtp! })) },
      { name: 'smtps', servers: nodes.map((n) => ({ host: '127.0.0.1', port: n.ports.smtps! })) },
    ]);
  });
  after(async () => {
    await haproxy?.stop();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await pg?.stop();
  });

  /** One authenticated transaction through the proxy from {@link CLIENT}; STARTTLS or implicit TLS. */
  async function transaction(implicit: boolean, subject: string): Promise<void> {
    const trust = { ca: certs.ca.cert, servername: 'localhost' };
    const c = await LineClient.connect(implicit ? haproxy!.ports.smtps! : haproxy!.ports.smtp!, { localAddress: CLIENT, ...(implicit ? { tls: trust } : {}) });
    try {
      await c.expect(/^220 /);
      await c.command('EHLO client.example', /^250 /);
      if (!implicit) {
        await c.command('STARTTLS', /^220 /);
        await c.startTls(trust);
        await c.command('EHLO client.example', /^250 /);
      }
      await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^235 /);
      await c.command('MAIL FROM:<alice@example.com>', /^250 /);
      await c.command('RCPT TO:<alice@example.com>', /^250 /);
      await c.command('DATA', /^354 /);
      await c.command(`Subject: ${subject}\r\n\r\nhello\r\n.`, /^250 /);
      await c.command('QUIT', /^221 /);
    } finally {
      await c.close();
    }
  }

  it('spreads STARTTLS and implicit-TLS sessions over both nodes; every Received header and hook sees the client', async () => {
    const subjects = ['s1', 's2', 's3', 's4'];
    for (const [i, s] of subjects.entries()) await transaction(i % 2 === 1, s);
    // Round-robin per frontend: each node took sessions, and each saw only the client's own address.
    for (const [i, seen] of peers.entries()) {
      expect(seen.length, `node ${i + 1}`).to.be.greaterThan(0);
      for (const p of seen) expect(p.remoteAddress, `node ${i + 1}`).to.equal(CLIENT);
    }
    expect(peers[0]!.length + peers[1]!.length).to.equal(4);
    // One database: either node sees all four messages.
    for (const node of nodes) {
      const msgs = await node.waitForMessages(4);
      expect(msgs.map((m) => m.subject).sort()).to.deep.equal(subjects);
      for (const m of msgs) expect(m.raw.toString('latin1')).to.match(/\r\nReceived: from client\.example \(\[127\.0\.0\.5\]\)\r\n\tby .* with ESMTPSA /);
    }
  });
});
