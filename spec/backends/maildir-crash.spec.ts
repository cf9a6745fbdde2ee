import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { testCertificates } from '../support/certs.js';
import { crashRounds } from './maildir-crash.js';
import { tlsArgs } from './maildir-process-harness.js';

describe('MaildirMailStore crash safety (SIGKILL under load; `npm run crash:maildir` runs many rounds)', function () {
  this.timeout(120_000);
  let dir: string;
  after(async () => rm(dir, { recursive: true, force: true }));

  it('keeps every message answered 250 exactly once, with unchanged UIDs and UIDVALIDITY, and cleans up after the dead process', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-maildir-crash-'));
    const certs = await testCertificates();
    const summary = await crashRounds({ root: path.join(dir, 'root'), tls: await tlsArgs(dir, certs), certs, rounds: 2, senders: 4, maxLoadMs: 500 });
    expect(summary.problems).to.deep.equal([]);
    expect(summary.acked).to.be.at.least(4); // each round delivered under load before its kill, plus the probes
  });
});
