import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { SmtpBackend, SmtpHooks, type Envelope, type RecipientStatus } from '../../lib/smtp/smtp-backend.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { testCertificates } from '../support/certs.js';
import { LineBuffer } from '../support/line-buffer.js';
import { connectUnix, startLmtp, storedByUser, type LmtpFixture } from './lmtp-harness.js';

const run = promisify(execFile);

/** MAIL, the RCPTs (each answered 250 or refused), DATA and the body; resolves the lines after the final dot. */
async function transaction(c: { send(t: string): void; readLine(): Promise<string> }, rcpts: string[], body: string, replies: number): Promise<string[]> {
  c.send(`MAIL FROM:<sender@remote.test>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
  const envelope: string[] = [];
  for (let i = 0; i < rcpts.length + 2; i++) envelope.push(await c.readLine());
  expect(envelope[envelope.length - 1]).to.match(/^354 /);
  c.send(body + '\r\n.\r\n');
  const out: string[] = [];
  for (let i = 0; i < replies; i++) out.push(await c.readLine());
  return out;
}

describe('lmtp: server (RFC 2033)', () => {
  let f: LmtpFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('greets as LMTP, answers LHLO with the ESMTP keywords and refuses HELO and EHLO with 500 5.5.1', async () => {
    f = await startLmtp();
    const c = await f.connect();
    expect(await c.command('EHLO client.test', /^\d{3} /)).to.deep.equal(['500 5.5.1 This is an LMTP server: use LHLO (RFC 2033 section 4.1)']);
    expect(await c.command('HELO client.test', /^\d{3} /)).to.deep.equal(['500 5.5.1 This is an LMTP server: use LHLO (RFC 2033 section 4.1)']);
    expect(await c.command('MAIL FROM:<a@b.test>', /^\d{3} /)).to.deep.equal(['503 5.5.1 Bad sequence of commands: Send LHLO first']);
    const lhlo = await c.command('LHLO client.test', /^250 /);
    expect(lhlo[0]).to.equal('250-lmtp.test greets client.test');
    expect(lhlo.map((l) => l.slice(4))).to.include.members(['PIPELINING', 'ENHANCEDSTATUSCODES', 'CHUNKING', 'STARTTLS', '8BITMIME']);
  });

  it('answers once per accepted recipient after the dot: a full mailbox gets 552 5.2.2, the others get the message', async () => {
    f = await startLmtp();
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    const replies = await transaction(c, ['alice@example.com', 'bob@example.com', 'nobody@example.com', 'carol@example.com'], 'Subject: hi\r\n\r\nhello', 3);
    expect(replies).to.deep.equal([
      '250 2.0.0 <alice@example.com> Message accepted (LENGTH octets)'.replace('LENGTH', replies[0].match(/\((\d+) octets/)![1]),
      '552 5.2.2 <bob@example.com> Mailbox full',
      '250 2.0.0 <carol@example.com> Message accepted (LENGTH octets)'.replace('LENGTH', replies[0].match(/\((\d+) octets/)![1]),
    ]);
    const stored = await storedByUser(f.store);
    expect(Object.keys(stored).sort()).to.deep.equal(['alice', 'carol']);
    expect(stored.alice[0]).to.match(/^Return-Path: <sender@remote\.test>\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby lmtp\.test with LMTP id /);
    // The session goes on: the next transaction has its own replies.
    expect(await transaction(c, ['carol@example.com'], 'Subject: again\r\n\r\nhi', 1)).to.have.length(1);
  });

  it('answers once per recipient after BDAT LAST, and once for a chunk before it', async () => {
    f = await startLmtp();
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    c.send('MAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\n');
    for (let i = 0; i < 3; i++) expect(await c.readLine()).to.match(/^250 /);
    const part1 = 'Subject: chunks\r\n\r\n';
    const part2 = 'second part\r\n';
    c.send(`BDAT ${part1.length}\r\n${part1}`);
    expect(await c.readLine()).to.equal(`250 2.0.0 ${part1.length} octets received`);
    c.send(`BDAT ${part2.length} LAST\r\n${part2}`);
    expect(await c.readLine()).to.equal('552 5.2.2 <bob@example.com> Mailbox full');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 <alice@example\.com> Message accepted \(\d+ octets\)$/);
    const stored = await storedByUser(f.store);
    expect(stored.alice[0]).to.contain('Subject: chunks\r\n\r\nsecond part\r\n');
  });

  it('repeats a refusal of the whole message for every recipient: an onData hook, and the size limit', async () => {
    const hooks = new ContainerModule(({ bind }) => {
      bind(SmtpHooks).toConstantValue({
        onData: async (body: Readable) => {
          let text = '';
          for await (const chunk of body) text += (chunk as Buffer).toString();
          if (text.includes('VIAGRA')) throw new SmtpReplyError(554, '5.7.1', 'Message looks like spam');
        },
      });
    });
    f = await startLmtp({ lmtp: { maxMessageSize: 2000 } }, [hooks]);
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    expect(await transaction(c, ['alice@example.com', 'carol@example.com'], 'Subject: buy\r\n\r\nVIAGRA', 2)).to.deep.equal([
      '554 5.7.1 <alice@example.com> Message looks like spam',
      '554 5.7.1 <carol@example.com> Message looks like spam',
    ]);
    expect(await transaction(c, ['alice@example.com', 'carol@example.com'], 'Subject: big\r\n\r\n' + 'x'.repeat(3000), 2)).to.deep.equal([
      '552 5.3.4 <alice@example.com> Message size exceeds fixed maximum message size (2000)',
      '552 5.3.4 <carol@example.com> Message size exceeds fixed maximum message size (2000)',
    ]);
    expect(await storedByUser(f.store)).to.deep.equal({});
  });

  it('maps the per-recipient statuses of a backend: unset ones take the outcome of lmtpData, a plain Error is 451 4.3.0', async () => {
    const backend = new ContainerModule(({ rebind }) => {
      rebind(SmtpBackend).toConstantValue({
        openSession: async () => ({
          mailFrom: async () => undefined,
          rcptTo: async () => undefined,
          data: async () => undefined,
          lmtpData: async (body: Readable, _env: Envelope, status: RecipientStatus) => {
            for await (const chunk of body) void chunk;
            status.set('ALICE@example.com'); // case-insensitive
            status.set('carol@example.com', new Error('disk on fire'));
            throw new SmtpReplyError(451, '4.2.0', 'Later'); // bob has no status: he gets this
          },
          reset: () => undefined,
          close: async () => undefined,
        }),
      });
    });
    f = await startLmtp({}, [backend]);
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    const replies = await transaction(c, ['alice@example.com', 'bob@example.com', 'carol@example.com'], 'Subject: s\r\n\r\nx', 3);
    expect(replies[0]).to.match(/^250 2\.0\.0 <alice@example\.com> Message accepted/);
    expect(replies.slice(1)).to.deep.equal(['451 4.2.0 <bob@example.com> Later', '451 4.3.0 Internal error, try again later']);
  });

  it('gives a backend without lmtpData one outcome for every recipient (its data() refusal)', async () => {
    const backend = new ContainerModule(({ rebind }) => {
      rebind(SmtpBackend).toConstantValue({
        openSession: async () => ({
          mailFrom: async () => undefined,
          rcptTo: async () => undefined,
          data: async (body: Readable) => {
            for await (const chunk of body) void chunk;
            throw new SmtpReplyError(554, '5.6.0', 'Refused');
          },
          reset: () => undefined,
          close: async () => undefined,
        }),
      });
    });
    f = await startLmtp({}, [backend]);
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    expect(await transaction(c, ['alice@example.com', 'carol@example.com'], 'Subject: s\r\n\r\nx', 2)).to.deep.equal([
      '554 5.6.0 <alice@example.com> Refused',
      '554 5.6.0 <carol@example.com> Refused',
    ]);
  });

  it('upgrades with STARTTLS; the mail then says with LMTPS', async () => {
    const certs = await testCertificates();
    f = await startLmtp();
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    expect(await c.command('STARTTLS', /^\d{3} /)).to.deep.equal(['220 2.0.0 Ready to start TLS']);
    await c.startTls({ ca: certs.ca.cert, servername: 'localhost' });
    const lhlo = await c.command('LHLO client.test', /^250 /);
    expect(lhlo.map((l) => l.slice(4))).to.not.include('STARTTLS');
    expect(await transaction(c, ['alice@example.com'], 'Subject: tls\r\n\r\nsecret', 1)).to.have.length(1);
    expect((await storedByUser(f.store)).alice[0]).to.match(/with LMTPS \(TLSv1\.3:/);
  });

  it('listens on a Unix socket too (lmtp-socket), replacing a stale socket file, and removes it at stop', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'postern-lmtp-sock-'));
    after(() => rm(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'lmtp.sock');
    // A socket file nobody listens on, as a crashed server leaves behind (python binds without listening).
    try {
      await run('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', socketPath]);
    } catch {
      this.skip(); // python3 missing: .ci/run installs it
    }
    expect((await stat(socketPath)).isSocket()).to.equal(true);
    f = await startLmtp({ only: [], lmtp: { socket: socketPath } });
    expect(f.ready.map((r) => [r.name, r.path])).to.deep.equal([['lmtp-socket', socketPath]]);
    const socket = await connectUnix(socketPath);
    const lines = new LineBuffer(5_000);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => lines.push(d));
    const c = { send: (t: string) => void socket.write(t), readLine: () => lines.readLine() };
    expect(await c.readLine()).to.match(/^220 lmtp\.test LMTP /);
    c.send('LHLO client.test\r\n');
    while (!(await c.readLine()).startsWith('250 '));
    expect(await transaction(c, ['alice@example.com'], 'Subject: unix\r\n\r\nvia socket', 1)).to.have.length(1);
    socket.destroy();
    // A Unix peer has no address: the from clause is the LHLO name alone.
    expect((await storedByUser(f.store)).alice[0]).to.match(/\r\nReceived: from client\.test\r\n\tby lmtp\.test with LMTP id /);
    await f.close();
    f = undefined;
    expect(await stat(socketPath).catch(() => 'gone')).to.equal('gone');
  });
});
