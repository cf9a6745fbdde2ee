import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { allMessages } from '../../lib/test-double/store-queries.js';
import { startLmtpServer } from '../../samples/lmtp-server.js';
import { LineClient } from '../support/line-client.js';

describe('samples: lmtp-server.ts (LMTP embedded in code)', () => {
  let running: Awaited<ReturnType<typeof startLmtpServer>> | undefined;
  let dir: string;
  const write = process.stdout.write;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-lmtp-sample-'));
    process.stdout.write = () => true; // the sample's ready lines
  });
  afterEach(async () => {
    process.stdout.write = write;
    await running?.close();
    running = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('answers per recipient: the mailbox on hold gets 450 4.2.1, the other gets the message (nodemailer lmtp: true)', async () => {
    running = await startLmtpServer({ port: 0 });
    process.stdout.write = write;
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: running.port, lmtp: true, ignoreTLS: true });
    try {
      const info = await transport.sendMail({ from: 'mta@relay.test', to: ['alice@example.test', 'bob@example.test'], subject: 'per recipient', text: 'hi' });
      expect(info.accepted).to.deep.equal(['alice@example.test']);
      expect(info.rejected).to.deep.equal(['bob@example.test']);
      expect((info.rejectedErrors?.[0] as { response?: string } | undefined)?.response).to.equal('450 4.2.1 <bob@example.test> Mailbox on hold, try again later');
    } finally {
      transport.close();
    }
    const stored = await allMessages(running.store);
    expect(stored.map((m) => m.username)).to.deep.equal(['alice']);
  });

  it('refuses other domains at RCPT through the hook, and serves the Unix socket too', async () => {
    const socket = join(dir, 'lmtp.sock');
    running = await startLmtpServer({ port: 0, socket });
    process.stdout.write = write;
    const c = await LineClient.connect(running.port);
    try {
      await c.expect(/^220 lmtp\.example\.test LMTP /);
      await c.command('LHLO relay.test', /^250 /);
      await c.command('MAIL FROM:<mta@relay.test>', /^250 /);
      expect(await c.command('RCPT TO:<x@elsewhere.test>', /^\d{3} /)).to.deep.equal(['550 5.1.2 Only example.test is delivered here']);
    } finally {
      await c.close();
    }
    // The Unix socket speaks the same LMTP (Postfix: lmtp:unix:PATH).
    const greeting = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ path: socket });
      s.once('data', (d) => {
        resolve(d.toString('latin1'));
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(greeting).to.match(/^220 lmtp\.example\.test LMTP Postern ready\r\n$/);
  });
});
