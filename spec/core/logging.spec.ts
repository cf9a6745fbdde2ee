import { expect } from 'chai';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { ServerSecurity } from '../../lib/core/server-security.js';
import { TcpServer } from '../../lib/core/tcp-server.js';
import { debugEnabled, type Logger } from '../../lib/log/logger.js';
import { NoteHandler } from '../../samples/custom-protocol.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

/** dist/lib/log/logger.js as a file URL, for child processes. */
const LOGGER_URL = new URL('../../lib/log/logger.js', import.meta.url).href;

/**
 * Runs `body` in a fresh Node process after `const log = createLogger(<options>)` and returns its stderr
 * lines (the root logger writes every level to stderr) and stdout.
 */
function runLogger(options: Record<string, unknown>, body: string, env: Record<string, string> = {}): Promise<{ lines: string[]; stdout: string }> {
  const script = `import { createLogger } from ${JSON.stringify(LOGGER_URL)};\nconst log = createLogger(${JSON.stringify(options)});\n${body}`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve({ lines: stderr.split('\n').filter((l) => l !== ''), stdout });
    });
  });
}

const SECRETS_BODY = `
log.info('auth probe', { user: 'bob', password: 'hunter2', key: '-----BEGIN PRIVATE KEY-----', passphrase: 'pfx-secret', size: 12 });
log.child({ cid: 'c9', token: 'tok-secret' }).warn('child probe', { body: 'message body text' });
log.debug('debug probe');
log.info('nested probe', { tls: { certificate: 'public', key: 'nested-key-secret' }, users: [{ name: 'x', password: 'nested-pw-secret' }], skipped: undefined });
`;

describe('core: logging', () => {
  it('writes one JSON object per line with format json, redacting secret metadata', async () => {
    const { lines, stdout } = await runLogger({ format: 'json', level: 'info' }, SECRETS_BODY);
    expect(stdout).to.equal('');
    expect(lines).to.have.length(3); // debug is below the level
    const [auth, child, nested] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(nested).to.deep.include({ tls: { certificate: 'public', key: '[redacted]' }, users: [{ name: 'x', password: '[redacted]' }] });
    expect(auth).to.include({ level: 'info', message: 'auth probe', user: 'bob', password: '[redacted]', key: '[redacted]', passphrase: '[redacted]', size: 12 });
    expect(auth.timestamp).to.be.a('string');
    expect(child).to.include({ level: 'warn', message: 'child probe', cid: 'c9', token: '[redacted]', body: '[redacted]' });
    const all = lines.join('\n');
    for (const secret of ['hunter2', 'PRIVATE KEY', 'pfx-secret', 'tok-secret', 'message body text', 'nested-key-secret', 'nested-pw-secret']) expect(all).to.not.contain(secret);
  });

  it("formats a child's fields once, yet shows an object's current value and lets a line's own value win", async () => {
    const body = `
const state = { n: 1 };
const child = log.child({ cid: 'c7', state, flag: true, gone: undefined });
child.info('first', { size: 1 });
state.n = 2;
child.info('second', { cid: 'override', size: 2 });
const plain = log.child({ cid: 'c8', port: 25 });
plain.info('third', { size: 3 });
plain.info('fourth', { cid: 'mine', extra: 'x' });
plain.info('fifth');
`;
    const { lines } = await runLogger({}, body);
    expect(lines.map((l) => l.replace(/^\S+ /, ''))).to.deep.equal([
      'info first cid=c7 state={"n":1} flag=true size=1',
      'info second cid=override state={"n":2} flag=true size=2',
      'info third cid=c8 port=25 size=3',
      'info fourth cid=mine port=25 extra=x',
      'info fifth cid=c8 port=25',
    ]);
  });

  it('writes readable text by default, also redacted', async () => {
    const { lines } = await runLogger({}, SECRETS_BODY);
    expect(lines).to.have.length(3);
    expect(lines[2]).to.not.contain('skipped='); // undefined values are left out
    expect(lines[0]).to.match(/^\d{4}-\d\d-\d\dT\S+ info auth probe .*user=bob password=\[redacted\] key=\[redacted\]/);
    expect(() => JSON.parse(lines[0]) as unknown).to.throw();
    expect(lines[1]).to.match(/ warn child probe .*cid=c9/);
    expect(lines.join('\n')).to.not.match(/hunter2|PRIVATE KEY|pfx-secret|tok-secret|message body text|nested-key-secret|nested-pw-secret/);
  });

  it('honours the level option and POSTERN_LOG_LEVEL', async () => {
    expect((await runLogger({ level: 'debug' }, SECRETS_BODY)).lines).to.have.length(4);
    expect((await runLogger({ level: 'warn' }, SECRETS_BODY)).lines).to.have.length(1);
    expect((await runLogger({}, SECRETS_BODY, { POSTERN_LOG_LEVEL: 'error' })).lines).to.have.length(0);
  });

  it("reads isDebugEnabled as a flag on Postern's loggers and as a method on winston's", () => {
    const quiet: Logger = winston.createLogger({ level: 'info', transports: [new winston.transports.Console({ silent: true })] });
    const chatty: Logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Console({ silent: true })] });
    expect(debugEnabled(quiet)).to.equal(false);
    expect(debugEnabled(chatty)).to.equal(true);
    const flagged: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined, child: () => flagged, isDebugEnabled: false };
    expect(debugEnabled(flagged)).to.equal(false);
    expect(debugEnabled({ ...flagged, isDebugEnabled: undefined }), 'absent means enabled').to.equal(true);
  });

  it('does not modify the metadata object the caller passed', async () => {
    const { stdout } = await runLogger({ silent: true }, `const meta = { password: 'p' }; log.info('x', meta); process.stdout.write(meta.password);`);
    expect(stdout).to.equal('p');
  });

  describe('connection lines', () => {
    let certs: DevCertificates;
    const servers: TcpServer[] = [];
    const clients: LineClient[] = [];
    let records: Array<Record<string, unknown>>;
    let log: Logger;

    before(async () => {
      certs = await testCertificates();
    });

    beforeEach(() => {
      records = [];
      const sink = new Writable({
        objectMode: true,
        write(info: Record<string, unknown>, _enc, done) {
          records.push({ ...info });
          done();
        },
      });
      // A winston Logger is a Logger as it is: no cast, no adapter (issue 12).
      log = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream: sink })] });
    });

    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(servers.splice(0).map((s) => s.close()));
    });

    async function start(implicit: boolean, maxConnections?: number): Promise<number> {
      const security = new ServerSecurity({ certificate: certs.server, requestClientCertificate: true, trustedCertificates: certs.ca.cert, validationCallback: (_s, c) => c !== undefined });
      const server = new TcpServer(new NoteHandler(security), { name: implicit ? 'notes' : 'note', port: 0, security: implicit ? security : undefined, maxConnections }, log);
      servers.push(server);
      return (await server.start()).port;
    }

    it('carries cid on every line about a connection (wire, TLS, refusals, failures, close)', async () => {
      const plain = await start(false, 2);
      const implicit = await start(true);
      const tlsOptions = { ca: certs.ca.cert, servername: 'localhost', ...certs.client };

      const a = await LineClient.connect(plain);
      clients.push(a);
      await a.command('UPGRADE', /go ahead/);
      await a.startTls(tlsOptions);
      await a.command('WHO', /tls=true/);
      const b = await LineClient.connect(plain);
      clients.push(b);
      await b.readLine();
      const full = await LineClient.connect(plain); // over maxConnections: refused
      clients.push(full);
      expect(await full.readLine()).to.equal('- busy');
      await full.closed();

      const refused = await LineClient.connect(implicit, { tls: { ca: certs.ca.cert, servername: 'localhost' } }); // no certificate: callback says no
      clients.push(refused);
      await refused.closed();
      const garbage = net.connect(implicit, '127.0.0.1');
      garbage.on('error', () => undefined);
      garbage.end('not a ClientHello\r\n');
      await new Promise((r) => garbage.once('close', r));

      await a.command('QUIT', /bye/);
      await a.closed();
      await Promise.all(servers.splice(0).map((s) => s.close()));

      const listenerLevel = new Set(['listening', 'closed']);
      const about = records.filter((r) => !listenerLevel.has(String(r.message)));
      expect(about.length).to.be.greaterThan(10);
      for (const r of about) expect(r.cid, `cid on "${String(r.message)}"`).to.be.a('string').and.match(/^c[0-9a-z]+$/);
      const messages = about.map((r) => String(r.message));
      expect(messages).to.include.members(['connection accepted', 'tls established', 'connection refused', 'tls handshake failed', 'connection closed']);
      expect(messages.some((m) => m.startsWith('S: '))).to.equal(true);
      const failedCloses = about.filter((r) => r.message === 'connection closed' && r.listener === 'notes').map((r) => r.reason);
      expect(failedCloses).to.deep.equal(['tls-failed', 'tls-failed']);
    });
  });
});
