/**
 * `postern --check`: the configuration and TLS files are read as a start reads them, what would listen is printed,
 * and nothing is bound (a port another process holds does not matter); a start's refusal is the same one line.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_OPTIONS } from '../../lib/cli/cli-args.js';
import { optionsFromEnv } from '../../lib/cli/cli-sources.js';
import { testCertificates } from '../support/certs.js';
import { runPostern } from './cli-process.js';

describe('cli: postern --check', function () {
  this.timeout(30_000);
  let dir: string;
  let blocker: net.Server;
  let held: number;
  const file = (name: string): string => path.join(dir, name);

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-check-'));
    const certs = await testCertificates();
    await writeFile(file('cert.pem'), certs.server.cert);
    await writeFile(file('key.pem'), certs.server.key);
    await writeFile(file('other-key.pem'), certs.client.key);
    blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    held = (blocker.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => blocker.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('prints what would listen and exits 0, binding nothing (the SMTP port is held by another socket)', async () => {
    await writeFile(file('p.conf'), `user alice:secret@example.com\nuser bob:secret@example.com\nkey ${file('key.pem')}\n`);
    const r = await runPostern(['--check', '--config', file('p.conf'), '--cert', file('cert.pem'), '--only', 'smtp,imaps,http', '--smtp-port', String(held), '--port-offset', '100']);
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.stdout.split('\n')).to.deep.equal([
      `postern: smtp would listen on 127.0.0.1:${held} (STARTTLS)`,
      'postern: imaps would listen on 127.0.0.1:4093 (implicit TLS)',
      'postern: http would listen on 127.0.0.1:8125 (HTTP API and web inbox)',
      'postern: configuration OK (2 user(s); nothing was started and the store was not opened)',
    ]);
  });

  it('says a self-signed certificate would be generated when none is configured', async () => {
    const r = await runPostern(['--check', '--only', 'pop3s']);
    expect(r.code).to.equal(0);
    expect(r.stdout.split('\n')).to.deep.equal([
      'postern: pop3s would listen on 127.0.0.1:3995 (implicit TLS)',
      'postern: no --cert/--pfx: a self-signed certificate would be generated at each start',
      'postern: configuration OK (0 user(s); nothing was started and the store was not opened)',
    ]);
  });

  it('fails with the one line a start would print: a key that does not match its certificate, exit 2', async () => {
    const r = await runPostern(['--check', '--cert', file('cert.pem'), '--key', file('other-key.pem')]);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/^postern: error: .*cannot use the certificate/);
  });

  it("checks the README's sample configuration file, samples/config/postern.conf", async () => {
    const sample = fileURLToPath(new URL('../../../samples/config/postern.conf', import.meta.url));
    const r = await runPostern(['--check', '--config', sample]);
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.stdout.split('\n')).to.deep.equal([
      'postern: smtp would listen on 127.0.0.1:2525 (STARTTLS)',
      'postern: smtps would listen on 127.0.0.1:2465 (implicit TLS)',
      'postern: imap would listen on 127.0.0.1:2143 (STARTTLS)',
      'postern: imaps would listen on 127.0.0.1:2993 (implicit TLS)',
      'postern: pop3s would listen on 127.0.0.1:2995 (implicit TLS)',
      'postern: no --cert/--pfx: a self-signed certificate would be generated at each start',
      'postern: configuration OK (2 user(s); nothing was started and the store was not opened)',
    ]);
  });

  it('is an argument only: POSTERN_CHECK and a config file line cannot turn every start into a check', () => {
    expect(optionsFromEnv(CLI_OPTIONS, { POSTERN_CHECK: '1', POSTERN_HELP: '1', POSTERN_CONFIG: 'x' })).to.deep.equal({});
  });
});
