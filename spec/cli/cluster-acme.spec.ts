import { expect } from 'chai';
import type { Worker } from 'node:cluster';
import { ClusterAcmeRelay } from '../../lib/cli/cluster-acme.js';
import type { AppliedMessage } from '../../lib/cli/cluster-messages.js';
import { CertificateError } from '../../lib/core/server-security.js';
import { createLogger } from '../../lib/log/logger.js';
import { testCertificates } from '../support/certs.js';

const log = createLogger({ silent: true });

/** A stand-in for a cluster worker: records what the relay sends; `connected` as node:cluster reports it. */
function fakeWorker(id: number, connected = true): Worker & { sent: Array<{ postern: string; id: number }> } {
  const sent: Array<{ postern: string; id: number }> = [];
  return { id, sent, process: { pid: 1000 + id }, isConnected: () => connected, send: (m: { postern: string; id: number }) => sent.push(m) } as unknown as Worker & {
    sent: typeof sent;
  };
}

/** Resolves true if `p` settled before the current macrotask queue drained. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('cli: the primary\'s ACME relay (ClusterAcmeRelay)', () => {
  it('tells the manager a challenge is ready only once every joined, connected worker applied it', async () => {
    const certs = await testCertificates();
    const relay = new ClusterAcmeRelay(certs.server, log);
    const [a, b, gone] = [fakeWorker(1), fakeWorker(2), fakeWorker(3, false)];
    relay.joined(a);
    relay.joined(b);
    relay.joined(gone); // disconnected: nothing is sent to it or awaited from it
    const ready = relay.acmeChallenges.add('mx.test', 'KEY', 'CERT');
    expect(a.sent).to.deep.equal([{ postern: 'acme-challenge', id: 1, domain: 'mx.test', challenge: { domain: 'mx.test', key: 'KEY', cert: 'CERT' } }]);
    expect(b.sent).to.have.length(1);
    expect(gone.sent).to.deep.equal([]);
    relay.applied(a, { postern: 'applied', id: 1 } satisfies AppliedMessage);
    expect(await settled(ready), 'one worker still to apply').to.equal(false);
    relay.applied(b, { postern: 'applied', id: 1 });
    expect(await settled(ready)).to.equal(true);
  });

  it('keeps pending challenges for workers started later, and stops waiting for a worker that exits', async () => {
    const certs = await testCertificates();
    const relay = new ClusterAcmeRelay(certs.server, log);
    const a = fakeWorker(1);
    relay.joined(a);
    const ready = relay.acmeChallenges.add('mx.test', 'KEY', 'CERT');
    const token = relay.acmeHttpChallenges.add('tok', 'tok.thumb');
    // A worker forked now gets both in its init message.
    expect(relay.challenges).to.deep.equal([{ domain: 'mx.test', key: 'KEY', cert: 'CERT' }]);
    expect(relay.httpChallenges).to.deep.equal([['tok', 'tok.thumb']]);
    relay.left(a); // crashed before answering
    expect(await settled(ready)).to.equal(true);
    expect(await settled(token)).to.equal(true);
    await relay.acmeChallenges.remove('mx.test'); // nobody joined: resolves at once
    await relay.acmeHttpChallenges.remove('tok');
    expect(relay.challenges).to.deep.equal([]);
    expect(relay.httpChallenges).to.deep.equal([]);
  });

  it('checks a certificate before sending it: an unusable one is refused with CertificateError and reaches no worker', async () => {
    const certs = await testCertificates();
    const relay = new ClusterAcmeRelay(certs.server, log);
    const a = fakeWorker(1);
    relay.joined(a);
    let error: unknown;
    try {
      await relay.useCertificate({ cert: certs.server.cert, key: certs.client.key });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(CertificateError);
    expect((error as Error).message).to.match(/^unusable certificate: /);
    expect(a.sent).to.deep.equal([]);
    expect(relay.currentPem).to.equal(certs.server);
    // A good one becomes current at once (what a worker forked now gets) and is sent to every worker.
    const installed = relay.useCertificate({ cert: certs.server.cert, key: certs.server.key });
    await new Promise((r) => setImmediate(r));
    expect(a.sent.map((m) => m.postern)).to.deep.equal(['certificate']);
    relay.applied(a, { postern: 'applied', id: a.sent[0]!.id });
    await installed;
  });
});
