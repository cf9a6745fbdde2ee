/**
 * `postern --check`: the configuration and TLS files are read as a start reads them, what would listen is printed,
 * and nothing is bound (a port another process holds does not matter); a start's refusal is the same one line.
 */
import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_OPTIONS, parseCliArgs } from '../../lib/cli/cli-args.js';
import { checkConfig } from '../../lib/cli/cli-check.js';
import { optionsFromEnv } from '../../lib/cli/cli-sources.js';
import { ListenerSecuritiesToken } from '../../lib/core/listener-securities.js';
import { Logger } from '../../lib/log/logger.js';
import { testCertificates } from '../support/certs.js';
import { RecordingLogger } from '../support/recording-logger.js';
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

  describe('checkConfig in this process (what postern --check runs after parsing its options)', () => {
    /** The lines checkConfig prints for `argv` parsed as the command parses it, with its resolved code. */
    const check = async (argv: string[]): Promise<string[]> => {
      const lines: string[] = [];
      expect(await checkConfig(parseCliArgs(argv, {}).config, (l) => lines.push(l))).to.equal(0);
      return lines;
    };
    const refusal = async (run: Promise<number>): Promise<string> => {
      try {
        await run;
      } catch (err) {
        return (err as Error).message;
      }
      return 'resolved';
    };

    it('prints each listener of --only at --host, its port from --*-port or the default plus --port-offset, and its kind of TLS', async () => {
      expect(await check(['--cert', file('cert.pem'), '--key', file('key.pem'), '--host', '::1', '--only', 'smtp,pop3,pop3s,imap,http', '--pop3-port', '1110', '--port-offset', '7', '--user', 'a:1@example.com'])).to.deep.equal([
        'postern: smtp would listen on [::1]:3032 (STARTTLS)',
        'postern: pop3 would listen on [::1]:1110 (STLS)',
        'postern: pop3s would listen on [::1]:4002 (implicit TLS)',
        'postern: imap would listen on [::1]:3150 (STARTTLS)',
        'postern: http would listen on [::1]:8032 (HTTP API and web inbox)',
        'postern: configuration OK (1 user(s); nothing was started and the store was not opened)',
      ]);
    });

    it('prints the LMTP socket that would be made, and no self-signed line when a certificate is configured', async () => {
      expect(await check(['--cert', file('cert.pem'), '--key', file('key.pem'), '--only', 'lmtp', '--lmtp-port', '2424', '--lmtp-socket', file('lmtp.sock')])).to.deep.equal([
        'postern: lmtp would listen on 127.0.0.1:2424 (STARTTLS)',
        `postern: lmtp-socket would listen on ${file('lmtp.sock')} (Unix socket, STARTTLS)`,
        'postern: configuration OK (0 user(s); nothing was started and the store was not opened)',
      ]);
    });

    it('prints the self-signed line when no certificate is configured; 127.0.0.1 and no users when the config names none', async () => {
      const lines: string[] = [];
      expect(await checkConfig({ only: ['imaps'], log: { level: 'error' } }, (l) => lines.push(l))).to.equal(0);
      expect(lines).to.deep.equal([
        'postern: imaps would listen on 127.0.0.1:3993 (implicit TLS)',
        'postern: no --cert/--pfx: a self-signed certificate would be generated at each start',
        'postern: configuration OK (0 user(s); nothing was started and the store was not opened)',
      ]);
    });

    it('with no --only lists no listener, and leaves no watcher behind: a certificate file rewritten afterwards is not reloaded', async () => {
      const log = new RecordingLogger();
      const lines: string[] = [];
      const config = {
        tls: { certificate: { certFile: file('cert.pem'), keyFile: file('key.pem') }, watchFiles: true },
        modules: [new ContainerModule(({ rebind }) => void rebind(Logger).toConstantValue(log))],
      };
      expect(await checkConfig(config, (l) => lines.push(l))).to.equal(0);
      expect(lines).to.deep.equal(['postern: configuration OK (0 user(s); nothing was started and the store was not opened)']);
      await writeFile(file('cert.pem'), await readFile(file('cert.pem')));
      await new Promise((resolve) => setTimeout(resolve, 800)); // a watcher reloads 200 ms after the last change
      expect(log.records.map((r) => r.message)).to.deep.equal([]);
    });

    it('checks a container whose modules unbind the per-listener securities, as a start does (they are optional)', async () => {
      const lines: string[] = [];
      const modules = [new ContainerModule(({ unbind }) => void unbind(ListenerSecuritiesToken))];
      expect(await checkConfig({ only: ['smtp'], tls: { certificate: { certFile: file('cert.pem'), keyFile: file('key.pem') } }, modules }, (l) => lines.push(l))).to.equal(0);
      expect(lines).to.deep.equal(['postern: smtp would listen on 127.0.0.1:3025 (STARTTLS)', 'postern: configuration OK (0 user(s); nothing was started and the store was not opened)']);
    });

    it("rejects as a start would: a listener's own key that does not match its certificate; a certificate with ACME", async () => {
      const argv = ['--cert', `${file('cert.pem')}@imaps`, '--key', `${file('other-key.pem')}@imaps`, '--only', 'smtp,imaps', '--log-level', 'error'];
      expect(await refusal(checkConfig(parseCliArgs(argv, {}).config, () => undefined))).to.match(/cannot use the certificate/);
      const certs = await testCertificates();
      const acme = { directoryUrl: 'https://acme.invalid/directory', email: 'ops@example.com', domains: ['mail.example.com'], stateDir: file('acme') };
      const lines: string[] = [];
      expect(await refusal(checkConfig({ acme, tls: { certificate: { cert: certs.server.cert, key: certs.server.key } } }, (l) => lines.push(l)))).to.equal('use either a configured certificate or ACME, not both');
      expect(lines).to.deep.equal([]);
    });
  });

  it('is an argument only: POSTERN_CHECK and a config file line cannot turn every start into a check', () => {
    expect(optionsFromEnv(CLI_OPTIONS, { POSTERN_CHECK: '1', POSTERN_HELP: '1', POSTERN_CONFIG: 'x' })).to.deep.equal({});
  });
});
