import { expect } from 'chai';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../bench/refs/processes.js';
import { HELP, parseCliArgs, UsageError } from '../../lib/cli/cli-args.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import { startPostern, type PosternProcess } from './cli-process.js';

describe('cli: LMTP flags (--lmtp-port, --lmtp-socket, lmtp in --only)', function () {
  this.timeout(30_000);
  let dir: string;
  const running: PosternProcess[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-cli-lmtp-'));
    const certs = await testCertificates();
    await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
    await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
  });

  it('leaves LMTP off by default; --lmtp-port or lmtp in --only turns it on', () => {
    expect(parseCliArgs([]).config.only).to.deep.equal(['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps', 'http']);
    const withPort = parseCliArgs(['--lmtp-port', '2424']).config;
    expect(withPort.only).to.include('lmtp');
    expect(withPort.ports).to.deep.equal({ lmtp: 2424 });
    expect(parseCliArgs(['--only', 'lmtp,imaps']).config.only).to.deep.equal(['lmtp', 'imaps']);
    expect(parseCliArgs(['--lmtp-socket', '/run/postern/lmtp.sock', '--lmtp-socket-mode', '660']).config.lmtp).to.deep.equal({ socket: '/run/postern/lmtp.sock', socketMode: 0o660 });
    expect(HELP).to.contain('--lmtp-port PORT').and.to.contain('default 3024').and.to.contain('--lmtp-socket PATH');
  });

  it('--dsn offers DSN on SMTP and LMTP: both sections get dsn, and a postern process lists DSN after LHLO and EHLO', async () => {
    const parsed = parseCliArgs(['--dsn', '--lmtp-port', '2424']).config;
    expect(parsed.smtp).to.deep.include({ dsn: true });
    expect(parsed.lmtp).to.deep.equal({ dsn: true });
    expect(parseCliArgs([]).config.smtp).to.equal(undefined);
    expect(HELP).to.contain('--dsn');
    const [lmtp, smtp] = [await freePort(), await freePort()];
    const p = startPostern(['--only', 'lmtp,smtp', '--lmtp-port', String(lmtp), '--smtp-port', String(smtp), '--dsn', '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem')]);
    running.push(p);
    await p.ready(2);
    for (const [port, hello] of [[lmtp, 'LHLO'], [smtp, 'EHLO']] as const) {
      const c = await LineClient.connect(port);
      try {
        await c.readLine();
        expect(await c.command(`${hello} client.test`, /^250 /), hello).to.include('250-DSN');
      } finally {
        await c.close();
      }
    }
  });

  it('refuses a socket mode without a socket, and a mode that is not octal', () => {
    expect(() => parseCliArgs(['--lmtp-socket-mode', '660'])).to.throw(UsageError, '--lmtp-socket-mode needs --lmtp-socket');
    expect(() => parseCliArgs(['--lmtp-socket', '/x.sock', '--lmtp-socket-mode', 'rw'])).to.throw(UsageError, '--lmtp-socket-mode: expected an octal file mode such as 660, got "rw"');
    expect(() => parseCliArgs(['--only', 'lmtp,ftp'])).to.throw(UsageError, '--only: unknown listener "ftp"');
  });

  it('serves LMTP on 3024 + --port-offset and on --lmtp-socket, with ready lines for both', async () => {
    const port = await freePort();
    const socketPath = path.join(dir, 'lmtp.sock');
    const p = startPostern([
      '--only', 'lmtp', '--port-offset', String(port - 3024), '--lmtp-socket', socketPath, '--lmtp-socket-mode', '600',
      '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem'), '--user', 'alice:secret@example.com',
    ]);
    running.push(p);
    await p.ready(1);
    await new Promise<void>((resolve) => (p.stdout.some((l) => l.includes('lmtp-socket')) ? resolve() : p.child.stdout!.once('data', () => resolve())));
    expect(p.stdout).to.include(`postern: lmtp ready on 127.0.0.1:${port} (STARTTLS)`);
    expect(p.stdout).to.include(`postern: lmtp-socket ready on ${socketPath} (Unix socket, STARTTLS)`);
    expect((await stat(socketPath)).mode & 0o777).to.equal(0o600);
    const c = await LineClient.connect(port);
    try {
      expect(await c.readLine()).to.match(/^220 \S+ LMTP Postern ready$/);
      expect(await c.command('LHLO client.test', /^250 /)).to.include('250 HELP');
    } finally {
      await c.close();
    }
  });
});
