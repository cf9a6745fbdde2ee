import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDevCertificates, type DevCertificates } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { ServerSecurity, type ServerSecurityOptions } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { testCertificates } from '../support/certs.js';

/** dist/samples/implicit-tls-server.js, relative to this compiled spec (dist/spec/core). */
const SAMPLE = fileURLToPath(new URL('../../samples/implicit-tls-server.js', import.meta.url));
/** Upper bound for one s_client run; a loopback handshake takes milliseconds. */
const S_CLIENT_TIMEOUT_MS = 10_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function hasOpenssl(): Promise<boolean> {
  return new Promise((resolve) => execFile('openssl', ['version'], (err) => resolve(!err)));
}

/**
 * Runs `openssl s_client` against 127.0.0.1:port, typing `input` (LF lines; `-crlf` turns them into CRLF).
 * `-quiet` implies `-ign_eof` (keep reading until the server closes, so the replies to the typed lines are in
 * stdout) and keeps s_client's session report (TLS 1.3 ticket dumps) from interleaving with the server's lines.
 */
async function sClient(port: number, args: string[], input = 'WHO\nQUIT\n'): Promise<Run> {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-crlf', '-quiet', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined); // s_client may exit before reading stdin (failed handshake)
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), S_CLIENT_TIMEOUT_MS);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Lines the NOTE server sent (they start with `+ ` or `- `), without s_client's own report. */
function replies(run: Run): string[] {
  return run.stdout.split(/\r?\n/).filter((l) => /^[+-] /.test(l));
}

/**
 * Runs `openssl s_client -tls1_2` without `-quiet` (so its `R` command letter works): waits for the greeting,
 * types `R` (client-initiated renegotiation), waits for s_client's `RENEGOTIATING`, then types `WHO` and ends
 * stdin. A server that allows renegotiation answers `WHO`; one that refuses it makes s_client fail first.
 */
async function sClientRenegotiate(port: number, caFile: string): Promise<Run> {
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-crlf', '-tls1_2', '-CAfile', caFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  const onData = (): void => waiters.splice(0).forEach((w) => w());
  const waitFor = (pattern: RegExp): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => (pattern.test(stdout + stderr) || child.exitCode !== null ? resolve() : void waiters.push(check));
      check();
    });
  child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), onData()));
  child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), onData()));
  child.once('exit', onData);
  child.stdin.on('error', () => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL'), S_CLIENT_TIMEOUT_MS);
  const closed = once(child, 'close') as Promise<[number | null]>;
  await waitFor(/^\+ NOTE ready/m);
  child.stdin.write('R\n');
  await waitFor(/^RENEGOTIATING/m);
  child.stdin.end('WHO\n');
  const [code] = await closed;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('core: openssl s_client interop', function () {
  let certs: DevCertificates;
  let dir: string;
  const servers: TcpServer[] = [];
  const file = (name: string): string => join(dir, name);

  before(async function () {
    if (!(await hasOpenssl())) this.skip();
    certs = await testCertificates();
    dir = await mkdtemp(join(tmpdir(), 'postern-openssl-'));
    await writeDevCertificates(dir, certs);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  describe('against an in-process implicit-TLS listener', () => {
    /** What the listener logged (the reason and code of a refused handshake). */
    let seen: RecordingLogger;
    async function start(sec: ServerSecurityOptions = {}): Promise<number> {
      const security = new ServerSecurity({ certificate: certs.server, ...sec });
      seen = new RecordingLogger();
      const server = new TcpServer(new NoteHandler(security), { port: 0, security }, seen);
      servers.push(server);
      return (await server.start()).port;
    }
    const verify = (): string[] => ['-CAfile', file('ca.pem'), '-verify_return_error'];

    for (const [flag, version] of [
      ['-tls1_2', 'TLSv1.2'],
      ['-tls1_3', 'TLSv1.3'],
    ] as const) {
      it(`handshakes with ${flag} and shows the greeting`, async () => {
        const port = await start();
        const run = await sClient(port, [flag, ...verify()]);
        expect(replies(run)).to.deep.equal(['+ NOTE ready', `+ tls=true protocol=${version} cert=- policy=0`, '+ bye']);
        expect(run.code).to.equal(0);
      });
    }

    /** The server's record of the one failed handshake: reason and OpenSSL code, no session. */
    async function refusal(sessions = 0): Promise<Record<string, unknown>> {
      const failed = await seen.next('tls handshake failed');
      expect(seen.find('tls handshake failed')).to.have.length(1);
      expect(seen.find('tls established')).to.have.length(sessions);
      return failed.meta;
    }

    it('refuses -tls1_1 (even with the client at security level 0) with a protocol_version alert', async () => {
      const port = await start();
      const run = await sClient(port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', ...verify()]);
      expect(replies(run)).to.deep.equal([]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.match(/tlsv1 alert protocol version.*SSL alert number 70/); // RFC 8446 §6.2 protocol_version(70)
      expect(await refusal()).to.include({ reason: 'protocol', code: 'ERR_SSL_UNSUPPORTED_PROTOCOL' });
    });

    it('negotiates an ECDHE AEAD suite under -tls1_2 and refuses CBC-only clients (testssl.sh "obsolete CBC", LUCKY13)', async () => {
      const port = await start();
      const ok = await sClient(port, ['-tls1_2', '-brief', ...verify()], 'QUIT\n');
      expect(ok.stderr + ok.stdout).to.match(/Ciphersuite: ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)/);
      const cbc = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384', ...verify()]);
      expect(replies(cbc)).to.deep.equal([]);
      expect(cbc.code).to.equal(1);
      expect(cbc.stderr).to.match(/alert handshake failure.*SSL alert number 40/); // handshake_failure(40): no shared suite
      expect(await refusal(1)).to.include({ reason: 'protocol', code: 'ERR_SSL_NO_SHARED_CIPHER' });
    });

    it('refuses the CCM-8 suites under -tls1_2', async () => {
      const port = await start();
      const run = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES256-CCM8', ...verify()]);
      expect(replies(run)).to.deep.equal([]);
      expect(run.stderr).to.match(/alert handshake failure.*SSL alert number 40/);
      expect(await refusal()).to.include({ reason: 'protocol', code: 'ERR_SSL_NO_SHARED_CIPHER' });
    });

    it('refuses client-initiated renegotiation (s_client R) under TLS 1.2', async () => {
      const port = await start();
      const run = await sClientRenegotiate(port, file('ca.pem'));
      expect(run.stdout).to.match(/^\+ NOTE ready/m);
      expect(run.stdout).to.include('Secure Renegotiation IS supported');
      expect(run.stdout + run.stderr).to.match(/no renegotiation/);
      expect(replies(run)).to.deep.equal(['+ NOTE ready']);
      expect(run.code).to.not.equal(0);
    });

    it('greets a client presenting the dev client certificate with -cert/-key when one is required', async () => {
      const port = await start({ requireClientCertificate: true, trustedCertificates: certs.ca.cert });
      const run = await sClient(port, ['-tls1_3', ...verify(), '-cert', file('client.pem'), '-key', file('client-key.pem')]);
      const lines = replies(run);
      expect(lines[0]).to.equal('+ NOTE ready');
      expect(lines[1]).to.match(new RegExp(`cert=.*CN=postern-client policy=${SslPolicyErrors.None}$`));
    });

    /**
     * A refused client certificate: the client verified our certificate and finished its side of the handshake
     * (`verify return:1` at depth 0), then the server closed without a greeting: s_client reads an unexpected EOF, or
     * a reset (errno 104, ECONNRESET) when the server's close found client bytes (a TLS 1.3 certificate) unread.
     */
    function expectClosedAfterHandshake(run: Run): void {
      expect(replies(run)).to.deep.equal([]);
      expect(run.stderr).to.match(/depth=0 CN = localhost\nverify return:1\n/);
      expect(run.stderr, run.stderr).to.match(/unexpected eof while reading|read:errno=104/);
      // s_client exits 1 after an EOF, and with the errno itself (104) after a reset.
      expect(run.code, run.stderr).to.be.oneOf(/read:errno=104/.test(run.stderr) ? [1, 104] : [1]);
    }

    // Required, missing, and no callback that could accept it: OpenSSL refuses inside the handshake, with the alert
    // RFC 8446 §4.4.2.4 (certificate_required, 116) and RFC 5246 §7.4.6 (handshake_failure, 40) name.
    for (const [flag, alert] of [
      ['-tls1_2', /sslv3 alert handshake failure.*SSL alert number 40/],
      ['-tls1_3', /tlsv13 alert certificate required.*SSL alert number 116/],
    ] as const) {
      it(`refuses a missing client certificate that is required with a TLS alert (${flag})`, async () => {
        const port = await start({ requireClientCertificate: true, trustedCertificates: certs.ca.cert });
        const run = await sClient(port, [flag, ...verify()]);
        expect(replies(run)).to.deep.equal([]);
        expect(run.stderr).to.match(/depth=0 CN = localhost\nverify return:1\n/); // our certificate was verified first
        expect(run.stderr, run.stderr).to.match(alert);
        expect(run.code, run.stderr).to.equal(1);
        expect(await refusal()).to.include({
          reason: 'rejected-by-policy',
          code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
          error: `client certificate refused (policy errors ${SslPolicyErrors.RemoteCertificateNotAvailable})`,
        });
      });
    }

    it('leaves a missing required certificate to the validation callback when there is one (no alert; it may accept)', async () => {
      const port = await start({ requireClientCertificate: true, trustedCertificates: certs.ca.cert, validationCallback: (_s, _c, _chain, errors) => errors === SslPolicyErrors.RemoteCertificateNotAvailable });
      const run = await sClient(port, ['-tls1_3', ...verify()]);
      expect(replies(run), run.stderr).to.deep.equal(['+ NOTE ready', `+ tls=true protocol=TLSv1.3 cert=- policy=${SslPolicyErrors.RemoteCertificateNotAvailable}`, '+ bye']);
      expect(run.stderr).not.to.match(/alert/);
      expect(run.code).to.equal(0);
    });

    it('closes without a greeting for a client certificate from an untrusted CA', async () => {
      const port = await start({ requireClientCertificate: true, trustedCertificates: certs.ca.cert });
      const run = await sClient(port, ['-tls1_3', ...verify(), '-cert', file('untrusted-client.pem'), '-key', file('untrusted-client-key.pem')]);
      expectClosedAfterHandshake(run);
      expect(await refusal()).to.include({ reason: 'rejected-by-policy', error: `client certificate refused (policy errors ${SslPolicyErrors.RemoteCertificateChainErrors})` });
    });
  });

  describe('against samples/implicit-tls-server.js as a child process', () => {
    const children: ChildProcess[] = [];

    afterEach(async () => {
      await Promise.all(children.splice(0).map((c) => stop(c)));
    });

    /** Spawns the sample on port 0 and resolves with the port it printed on stdout. */
    async function spawnSample(env: Record<string, string>, args: string[] = []): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
      const child = spawn(process.execPath, [SAMPLE, ...args], { cwd: dir, env: { ...process.env, PORT: '0', POSTERN_CERTS: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`sample did not print its port; stderr: ${err}`)), S_CLIENT_TIMEOUT_MS);
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)\n/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`sample exited with ${code}; stderr: ${err}`));
        });
      });
      return { child, port, stderr: () => err };
    }

    /** SIGTERM and wait for a clean exit (status 0) within the bound. */
    async function stop(child: ChildProcess): Promise<number | null> {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), S_CLIENT_TIMEOUT_MS);
      const [code] = await exited;
      clearTimeout(timer);
      return code;
    }

    it('serves -tls1_2 and -tls1_3, refuses -tls1_1, and exits 0 on SIGTERM', async () => {
      const { child, port, stderr } = await spawnSample({});
      for (const [flag, version] of [
        ['-tls1_2', 'TLSv1.2'],
        ['-tls1_3', 'TLSv1.3'],
      ]) {
        const run = await sClient(port, [flag, '-CAfile', file('ca.pem'), '-verify_return_error']);
        expect(replies(run), flag).to.deep.equal(['+ NOTE ready', `+ tls=true protocol=${version} cert=- policy=0`, '+ bye']);
      }
      const old = await sClient(port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', file('ca.pem')]);
      expect(replies(old)).to.deep.equal([]);
      children.splice(children.indexOf(child), 1);
      expect(await stop(child)).to.equal(0);
      // One info line per connection, at its close, with the TLS facts (`tls established` is a debug line).
      expect(stderr()).to.match(/connection closed .*tls=TLSv1\.3 cipher=TLS_/);
      expect(stderr()).to.match(/ closed listener=notes/);
    });

    it('with --require-client-cert greets -cert/-key clients and closes on the others', async () => {
      const { port } = await spawnSample({}, ['--require-client-cert']);
      const withCert = await sClient(port, ['-tls1_3', '-CAfile', file('ca.pem'), '-cert', file('client.pem'), '-key', file('client-key.pem')]);
      expect(replies(withCert)[0]).to.equal('+ NOTE ready');
      expect(replies(withCert)[1]).to.match(/CN=postern-client policy=0$/);
      const without = await sClient(port, ['-tls1_3', '-CAfile', file('ca.pem')]);
      expect(replies(without)).to.deep.equal([]);
    });

    it('generates a self-signed certificate when no certificate directory is given', async () => {
      const { port, stderr } = await spawnSample({ POSTERN_CERTS: '' }, []);
      const run = await sClient(port, ['-tls1_3']);
      expect(replies(run)[0]).to.equal('+ NOTE ready');
      expect(stderr()).to.match(/self-signed certificate fingerprint=([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    });
  });
});
