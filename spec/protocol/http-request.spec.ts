/**
 * Cross-protocol requests (ALPACA): an HTTP request sent to a mail port ends the session at its first line, so that
 * nothing it carries after that line (headers, a body of SMTP commands) is run or echoed. The attack a browser makes
 * with a form posted to the SMTP port is played by curl, a real HTTP client, and without this rule it delivers mail
 * (the control case below sends the same commands without the HTTP lines).
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { runTool, type ToolRun } from '../support/tool.js';

/** An SMTP transaction as a form body would carry it. */
const SMUGGLED = 'EHLO attacker\r\nMAIL FROM:<evil@attacker.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nvia HTTP\r\n.\r\nQUIT\r\n';

describe('protocol: an HTTP request on a mail port ends the session', function () {
  this.timeout(60_000);
  let server: RunningMailServer;
  let dir: string;
  const clients: LineClient[] = [];

  before(async () => {
    server = await startMailServer({ users: ['alice:secret@example.com'] });
    dir = await mkdtemp(path.join(os.tmpdir(), 'postern-http-'));
  });
  after(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  /** curl speaking HTTP/1.1 to a mail port; `--http0.9` lets it print what the mail server answered. */
  async function curl(args: readonly string[]): Promise<ToolRun> {
    const run = await runTool('curl', ['-sS', '--max-time', '10', '--http1.1', '--http0.9', ...args]);
    if (run === undefined) throw new Error('curl is not installed (.ci/run installs it)');
    return run;
  }

  it('SMTP: curl POSTing an SMTP transaction gets 421 4.7.0 at the request line, and nothing is delivered', async function () {
    const body = path.join(dir, 'smuggled.txt');
    await writeFile(body, SMUGGLED);
    const run = await curl(['-X', 'POST', '--data-binary', `@${body}`, `http://127.0.0.1:${server.ports.smtp}/`]);
    expect(run.stdout).to.match(/^220 \S+ ESMTP Postern ready\r\n421 4\.7\.0 HTTP request refused, closing connection\r\n$/);
    expect(run.code).to.equal(0);
    expect(await server.receivedMessages()).to.have.length(0);
  });

  it('SMTP control: the same commands without the HTTP lines deliver a message (what the rule above prevents)', async () => {
    const c = await LineClient.connect(server.ports.smtp!);
    clients.push(c);
    await c.expect(/^220 /);
    c.send(SMUGGLED);
    await c.expect(/^221 /);
    const [message] = await server.waitForMessages(1);
    expect(message!.subject).to.equal('smuggled');
    await server.purge();
  });

  it('SMTP: the rule holds after STARTTLS and for a lower-case method, and a known verb is unaffected', async () => {
    const c = await LineClient.connect(server.ports.smtp!);
    clients.push(c);
    await c.expect(/^220 /);
    await c.command('EHLO client.test', /^250 /);
    await c.command('STARTTLS', /^220 /);
    await c.startTls({ ca: server.ca, servername: 'localhost' });
    await c.command('EHLO client.test', /^250 /);
    await c.command('NOOP', /^250 2\.0\.0 OK$/);
    c.send('post /form HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await c.readLine()).to.equal('421 4.7.0 HTTP request refused, closing connection');
    await c.closed();
  });

  it('SMTPS (implicit TLS): a GET line gets the same 421 and the connection closes before its headers are read', async () => {
    const c = await LineClient.connect(server.ports.smtps!, { tls: { ca: server.ca, servername: 'localhost' } });
    clients.push(c);
    await c.expect(/^220 /);
    c.send('GET / HTTP/1.1\r\nHost: localhost\r\nX-Probe: <script>alert(1)</script>\r\n\r\n');
    expect(await c.readLine()).to.equal('421 4.7.0 HTTP request refused, closing connection');
    await c.closed();
    expect(c.pending).to.equal('');
  });

  it('POP3: curl GET gets -ERR and the connection closes', async () => {
    const run = await curl([`http://127.0.0.1:${server.ports.pop3}/`]);
    expect(run.stdout).to.match(/^\+OK Postern POP3 server ready <[^>]+>\r\n-ERR HTTP request refused, closing\r\n$/);
  });

  it('IMAP: curl GET gets an untagged BYE (its method is never echoed as a tag) and the connection closes', async () => {
    const run = await curl(['-H', 'X-Probe: <script>alert(1)</script>', `http://127.0.0.1:${server.ports.imap}/`]);
    const lines = run.stdout.split('\r\n');
    expect(lines[0]).to.match(/^\* OK \[CAPABILITY .*\] Postern IMAP ready$/);
    expect(lines.slice(1)).to.deep.equal(['* BYE HTTP request refused', '']);
  });

  it('IMAP: request lines that do not parse as IMAP (parentheses, a quote, `*`, an authority) get the same BYE', async () => {
    for (const line of ['GET /a(b) HTTP/1.1', 'GET /"x HTTP/1.1', 'OPTIONS * HTTP/1.1', 'CONNECT example.com:443 HTTP/1.1', 'DELETE /x{3} HTTP/1.1']) {
      const c = await LineClient.connect(server.ports.imap!);
      clients.push(c);
      await c.expect(/^\* OK /);
      c.send(`${line}\r\nHost: x\r\n\r\n`);
      expect(await c.readLine(), line).to.equal('* BYE HTTP request refused');
      await c.closed();
      expect(c.pending, line).to.equal('');
    }
  });

  it('IMAP: a tag that is an HTTP method on a known command still works', async () => {
    const c = await LineClient.connect(server.ports.imap!);
    clients.push(c);
    await c.expect(/^\* OK /);
    expect(await c.command('GET NOOP', /^GET /)).to.deep.equal(['GET OK NOOP completed']);
  });
});
