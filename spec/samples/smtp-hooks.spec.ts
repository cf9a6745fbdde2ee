import { expect } from 'chai';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { SslPolicyErrors } from '../../lib/core/policy-errors.js';
import { readEmlDirectory, startHookedSmtpServer } from '../../samples/smtp-hooks.js';
import { testCertificates } from '../support/certs.js';

describe('samples: smtp-hooks.ts (hooks and a custom store)', () => {
  let certs: DevCertificates;
  let dir: string;
  let running: Awaited<ReturnType<typeof startHookedSmtpServer>>;
  const port = (name: string): number => running.ready.find((l) => l.name === name)!.port;

  before(async () => {
    certs = await testCertificates();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-eml-'));
    running = await startHookedSmtpServer({
      dir,
      anyPort: true,
      tls: { certificate: certs.server, trustedCertificates: certs.ca.cert },
    });
  });
  afterEach(async () => {
    await running?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function send(options: SMTPTransport.Options, message: Mail.Options): Promise<SMTPTransport.SentMessageInfo> {
    const transport = nodemailer.createTransport(options);
    try {
      return await transport.sendMail(message);
    } finally {
      transport.close();
    }
  }

  it('records the client certificate subject after STARTTLS, refuses @blocked.test with 550 and stores an .eml with Received', async () => {
    const info = await send(
      { host: '127.0.0.1', port: port('smtp'), requireTLS: true, tls: { ca: certs.ca.cert, servername: 'localhost', cert: certs.client.cert, key: certs.client.key } },
      { from: 'app@example.test', to: ['bob@example.test', 'eve@blocked.test'], subject: 'hooked', text: 'into the directory' },
    );
    expect(info.accepted).to.deep.equal(['bob@example.test']);
    expect(info.rejected).to.deep.equal(['eve@blocked.test']);
    const refusal = info.rejectedErrors?.[0] as (Error & { responseCode?: number; response?: string }) | undefined;
    expect(refusal?.responseCode).to.equal(550);
    expect(refusal?.response).to.equal('550 5.7.1 Delivery to blocked.test is not allowed');

    expect(running.recorder.records).to.have.length(1);
    const [record] = running.recorder.records;
    expect(record).to.include({ listener: 'smtp', subject: 'CN=postern-client', policyErrors: SslPolicyErrors.None });
    expect(record?.tlsProtocol).to.match(/^TLSv1\.[23]$/);

    const [eml, ...rest] = await readEmlDirectory(dir);
    expect(rest).to.have.length(0);
    expect(eml).to.match(/^Return-Path: <app@example\.test>\r\nX-Envelope-To: bob@example\.test\r\nReceived: from /);
    expect(eml).to.match(/with ESMTPS \(TLSv1\.[23]:/);
    expect(eml).to.contain('Subject: hooked');
    expect(eml).to.contain('into the directory');
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).to.deep.equal([]); // no temporary files left
  });

  it('refuses a message whose only recipient is blocked, storing nothing', async () => {
    const err = await send(
      { host: '127.0.0.1', port: port('smtp'), requireTLS: true, tls: { ca: certs.ca.cert, servername: 'localhost' } },
      { from: 'app@example.test', to: 'eve@blocked.test', subject: 'nope', text: 'x' },
    ).then(
      () => undefined,
      (e: unknown) => e as Error & { responseCode?: number },
    );
    expect(err?.responseCode).to.equal(550);
    expect(await readEmlDirectory(dir)).to.deep.equal([]);
  });

  it('on the implicit-TLS port, records a missing certificate and an untrusted one with their policy errors', async () => {
    const tlsTo = (extra: object): SMTPTransport.Options => ({ host: '127.0.0.1', port: port('smtps'), secure: true, tls: { ca: certs.ca.cert, servername: 'localhost', ...extra } });
    await send(tlsTo({}), { from: 'a@example.test', to: 'b@example.test', subject: 'one', text: '1' });
    await send(tlsTo({ cert: certs.untrustedClient.cert, key: certs.untrustedClient.key }), { from: 'a@example.test', to: 'b@example.test', subject: 'two', text: '2' });
    expect(running.recorder.records.map((r) => [r.listener, r.subject, r.policyErrors])).to.deep.equal([
      ['smtps', undefined, SslPolicyErrors.RemoteCertificateNotAvailable],
      ['smtps', 'CN=postern-untrusted-client', SslPolicyErrors.RemoteCertificateChainErrors],
    ]);
    expect(await readEmlDirectory(dir)).to.have.length(2);
  });
});
