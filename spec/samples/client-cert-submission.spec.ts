import { expect } from 'chai';
import nodemailer from 'nodemailer';
import { generate } from 'selfsigned';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { DevCertificates, PemPair } from '../../lib/core/dev-certificates.js';
import { startSubmissionServer, type CertificateUsers } from '../../samples/client-cert-submission.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

type SmtpFailure = Error & { responseCode?: number; response?: string; code?: string };

describe('samples: client-cert-submission.ts (the client certificate is the login)', () => {
  let certs: DevCertificates;
  let running: Awaited<ReturnType<typeof startSubmissionServer>> | undefined;
  const port = (name: string): number => running!.ready.find((l) => l.name === name)!.port;

  before(async () => {
    certs = await testCertificates();
  });
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  async function start(users: CertificateUsers = { 'postern-client': 'alice@example.test' }): Promise<void> {
    running = await startSubmissionServer({ certificate: certs.server, clientCa: certs.ca.cert, users, recipients: ['bob@example.test'], anyPort: true, log: { silent: true } });
  }

  /** Sends one message; resolves the info or the error. */
  async function submit(listener: 'smtp' | 'smtps', client: PemPair | undefined, from: string): Promise<SMTPTransport.SentMessageInfo | SmtpFailure> {
    const options: SMTPTransport.Options = {
      host: '127.0.0.1',
      port: port(listener),
      secure: listener === 'smtps',
      requireTLS: listener === 'smtp',
      tls: { ca: certs.ca.cert, servername: 'localhost', ...(client ? { cert: client.cert, key: client.key } : {}) },
      connectionTimeout: 5000,
      greetingTimeout: 5000,
    };
    const transport = nodemailer.createTransport(options);
    try {
      return await transport.sendMail({ from, to: 'bob@example.test', subject: 'submitted', text: `from ${from}` });
    } catch (err) {
      return err as SmtpFailure;
    } finally {
      transport.close();
    }
  }

  async function delivered(): Promise<string[]> {
    const all = await allMessages(running!.store);
    return Promise.all(all.map(async (m) => `${m.username}: ${(await m.message.raw()).toString('latin1')}`));
  }

  for (const listener of ['smtps', 'smtp'] as const) {
    describe(`on the ${listener === 'smtps' ? 'implicit-TLS' : 'STARTTLS'} port`, () => {
      it('accepts a trusted certificate whose CN is mapped, sending as the mapped user', async () => {
        await start();
        const info = (await submit(listener, certs.client, 'alice@example.test')) as SMTPTransport.SentMessageInfo;
        expect(info.accepted, String(info)).to.deep.equal(['bob@example.test']);
        const [message, ...rest] = await delivered();
        expect(rest).to.deep.equal([]);
        expect(message).to.match(/^bob@example\.test: Return-Path: <alice@example\.test>\r\nReceived: from /);
        expect(message).to.contain('from alice@example.test');
      });

      it('refuses another sender with 553 5.7.1', async () => {
        await start();
        const err = (await submit(listener, certs.client, 'mallory@example.test')) as SmtpFailure;
        expect(err.responseCode).to.equal(553);
        expect(err.response).to.equal('553 5.7.1 Sender address must be <alice@example.test>');
        expect(await delivered()).to.deep.equal([]);
      });

      it('refuses a trusted certificate that maps to nobody with 554 5.7.1 after the handshake', async () => {
        await start({ 'someone-else': 'alice@example.test' });
        const err = (await submit(listener, certs.client, 'alice@example.test')) as SmtpFailure;
        expect(err.responseCode).to.equal(554);
        expect(err.response).to.equal('554 5.7.1 Certificate not authorized for submission');
      });

      it('fails the handshake for an untrusted, an expired or a missing certificate: no SMTP reply at all', async () => {
        await start();
        for (const client of [certs.untrustedClient, certs.expiredClient]) {
          const err = (await submit(listener, client, 'alice@example.test')) as SmtpFailure;
          // The policy refuses after the handshake, before any SMTP reply (after STARTTLS: before a new EHLO reply):
          // nodemailer sees the connection end (or, if the close met unread bytes, a reset) with no response.
          const what = `bad certificate: ${err.code} ${err.message}`;
          expect(err.responseCode, what).to.equal(undefined);
          expect(err.response, what).to.equal(undefined);
          if (err.code === 'ESOCKET') expect(err.message, what).to.match(/ECONNRESET/);
          else expect({ code: err.code, message: err.message }, what).to.deep.equal({ code: 'ECONNECTION', message: 'Connection closed unexpectedly' });
        }
        // None at all: refused inside the handshake, with TLS 1.3's certificate_required alert.
        const err = (await submit(listener, undefined, 'alice@example.test')) as SmtpFailure;
        expect([err.code, err.responseCode, err.response]).to.deep.equal(['ESOCKET', undefined, undefined]);
        expect(err.message).to.match(/alert certificate required.*SSL alert number 116/);
        expect(await delivered()).to.deep.equal([]);
      });
    });
  }

  it('matches the CN case-insensitively and maps an email subjectAltName', async () => {
    const now = Date.now();
    const carol = await generate([{ name: 'commonName', value: 'Carol Example' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 3_600_000),
      notAfterDate: new Date(now + 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 1, value: 'carol@example.test' }] },
      ],
      ca: { cert: certs.ca.cert, key: certs.ca.key },
    });
    await start({ 'POSTERN-CLIENT': 'alice@example.test', 'Carol@Example.test': 'carol@example.test' });
    const alice = (await submit('smtps', certs.client, 'Alice@Example.test')) as SMTPTransport.SentMessageInfo;
    expect(alice.accepted).to.deep.equal(['bob@example.test']);
    const viaSan = (await submit('smtps', { cert: carol.cert, key: carol.private }, 'carol@example.test')) as SMTPTransport.SentMessageInfo;
    expect(viaSan.accepted, String(viaSan)).to.deep.equal(['bob@example.test']);
    expect(await delivered()).to.have.length(2);
  });

  it('refuses MAIL in plaintext on the STARTTLS port with 530', async () => {
    await start();
    const c = await LineClient.connect(port('smtp'));
    try {
      await c.expect(/^220 /);
      await c.command('EHLO client.test', /^250 /);
      expect(await c.command('MAIL FROM:<alice@example.test>', /^\d{3} /)).to.deep.equal(['530 5.7.0 Must issue a STARTTLS command first']);
    } finally {
      await c.close();
    }
  });
});
