import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import type { Container } from 'inversify';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { SslPolicyErrors, X509ChainStatusFlags } from '../../lib/core/policy-errors.js';
import { SmtpBackend, SmtpHooks, type SmtpContext, type SmtpSession } from '../../lib/smtp/smtp-backend.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { testCertificates } from '../support/certs.js';
import { plainAuth, startSmtp, storedTexts, upgrade, type SmtpFixture } from './smtp-harness.js';

describe('smtp: STARTTLS, implicit TLS, AUTH and client certificates', () => {
  let f: SmtpFixture;
  afterEach(async () => {
    await f?.close();
  });

  it('drops STARTTLS from EHLO after the upgrade and offers AUTH only then', async () => {
    f = await startSmtp();
    const c = await f.connect();
    const before = await c.command('EHLO client.test', /^250 /);
    expect(before).to.include('250-STARTTLS');
    expect(before.some((l) => l.includes('AUTH'))).to.equal(false);
    const after = await upgrade(c, f);
    expect(after.some((l) => l.includes('STARTTLS'))).to.equal(false);
    expect(after).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
  });

  it('resets to the pre-EHLO state after STARTTLS (RFC 3207 §4.2)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await c.command('STARTTLS', /^220 2\.0\.0 /);
    await c.startTls(f.trust());
    expect(await c.command('MAIL FROM:<bob@remote.test>', /^5/)).to.match(/^503 5\.5\.1 /);
  });

  it('forgets the EHLO name at STARTTLS: the session reopened over TLS sees none until the next EHLO (RFC 3207 §4.2)', async () => {
    const opened: Array<{ helo?: string; tls: boolean }> = [];
    const seenAtMail: Array<string | undefined> = [];
    f = await startSmtp({
      setup: (ct) =>
        ct.rebind(SmtpBackend).toConstantValue({
          openSession: async (context: SmtpContext): Promise<SmtpSession> => {
            opened.push({ helo: context.helo, tls: context.peer.security.tls });
            return {
              mailFrom: async () => void seenAtMail.push(context.helo),
              rcptTo: async () => undefined,
              data: async () => undefined,
              reset: () => undefined,
              close: async () => undefined,
            };
          },
        }),
    });
    const c = await f.connect();
    await c.command('EHLO plaintext.test', /^250 /);
    await c.command('STARTTLS', /^220 /);
    await c.startTls(f.trust());
    await c.command('EHLO secure.test', /^250 /);
    expect(await c.command('MAIL FROM:<bob@remote.test>', /^\d{3} /)).to.deep.equal(['250 2.1.0 Sender <bob@remote.test> OK']);
    expect(opened).to.deep.equal([
      { helo: undefined, tls: false },
      { helo: undefined, tls: true }, // not 'plaintext.test': nothing said before TLS carries over
    ]);
    expect(seenAtMail).to.deep.equal(['secure.test']);
  });

  for (const injected of ['RSET', 'MAIL FROM:<x@y.test>']) {
    it(`never runs "${injected}" pipelined in plaintext after STARTTLS`, async () => {
      const seen: string[] = [];
      f = await startSmtp({
        setup: (ct) => ct.bind(SmtpHooks).toConstantValue({ onMailFrom: async (from) => void seen.push(from) }),
      });
      const c = await f.ehlo();
      c.send(`STARTTLS\r\n${injected}\r\n`);
      expect(await c.readLine()).to.equal('220 2.0.0 Ready to start TLS');
      await c.startTls(f.trust());
      expect(c.pending).to.equal('');
      c.line('NOOP');
      expect(await c.readLine()).to.equal('250 2.0.0 OK'); // the first reply over TLS is NOOP's, not the injected command's
      expect(await c.command('RCPT TO:<alice@example.com>', /^5/)).to.match(/^503 /);
      expect(seen).to.deep.equal([]);
    });
  }

  it('refuses STARTTLS before EHLO, with arguments, and on a secure session', async () => {
    f = await startSmtp();
    const c = await f.connect();
    expect(await c.command('STARTTLS', /^5/)).to.match(/^503 5\.5\.1 /);
    await c.command('EHLO client.test', /^250 /);
    expect(await c.command('STARTTLS now', /^5/)).to.match(/^501 /);
    const s = await f.ehlo({ implicit: true });
    expect(await s.command('STARTTLS', /^5/)).to.deep.equal(['503 5.5.1 TLS already active']);
  });

  it('sends nothing in plaintext when the STARTTLS handshake fails', async () => {
    f = await startSmtp();
    const socket = net.connect(f.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    socket.write('EHLO x.test\r\nSTARTTLS\r\n');
    while (!received.includes('220 2.0.0')) await new Promise((r) => socket.once('data', r));
    const upTo = received.length;
    socket.write('this is not a TLS ClientHello\r\n\r\n');
    await new Promise((r) => socket.once('close', r));
    expect(received.slice(upTo)).to.equal('');
  });

  it('refuses AUTH before TLS with 538 5.7.11 (RFC 4954 §6)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^5/)).to.deep.equal([
      '538 5.7.11 Encryption required for requested authentication mechanism',
    ]);
  });

  it('accepts AUTH PLAIN with an initial response after STARTTLS and refuses bad credentials with 535 5.7.8', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await upgrade(c, f);
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'wrong')}`, /^5/)).to.deep.equal(['535 5.7.8 Authentication credentials invalid']);
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^2/)).to.deep.equal(['235 2.7.0 Authentication successful']);
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^5/)).to.deep.equal(['503 5.5.1 Already authenticated']);
  });

  it('delays each failed AUTH and closes with 421 4.7.0 after maxLoginFailures', async () => {
    f = await startSmtp({ config: { allowInsecureAuth: true }, smtp: { failedLoginDelayMs: 60, maxLoginFailures: 3 } });
    const c = await f.ehlo();
    const started = Date.now();
    c.send(`AUTH PLAIN ${plainAuth('alice', 'guess')}\r\n`.repeat(5));
    const lines = await c.expect(/^421 /);
    expect(Date.now() - started).to.be.at.least(3 * 60 - 10); // three delays, one after another
    expect(lines).to.deep.equal([
      '535 5.7.8 Authentication credentials invalid',
      '535 5.7.8 Authentication credentials invalid',
      '535 5.7.8 Authentication credentials invalid',
      '421 4.7.0 Too many failed authentication attempts, closing connection',
    ]);
    await c.closed();
  });

  it('counts failed AUTH attempts against the error budget too (421 after ten errors in a row)', async () => {
    f = await startSmtp({ config: { allowInsecureAuth: true, authThrottle: { maxDelayMs: 0 } }, smtp: { maxLoginFailures: 100 } });
    const c = await f.ehlo();
    c.send(`AUTH PLAIN ${plainAuth('alice', 'guess')}\r\n`.repeat(10));
    const lines = await c.expect(/^421 /);
    expect(lines.filter((l) => l.startsWith('535 5.7.8'))).to.have.length(10);
    expect(lines[lines.length - 1]).to.equal('421 4.7.0 Too many errors, closing connection');
    await c.closed();
  });

  it('runs AUTH PLAIN and LOGIN through 334 challenges', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await upgrade(c, f);
    expect(await c.command('AUTH PLAIN', /^334/)).to.deep.equal(['334 ']);
    expect(await c.command(plainAuth('alice', 'nope'), /^5/)).to.deep.equal(['535 5.7.8 Authentication credentials invalid']);
    expect(await c.command('AUTH LOGIN', /^334/)).to.deep.equal(['334 VXNlcm5hbWU6']);
    expect(await c.command(Buffer.from('alice').toString('base64'), /^334/)).to.deep.equal(['334 UGFzc3dvcmQ6']);
    expect(await c.command(Buffer.from('secret').toString('base64'), /^2/)).to.deep.equal(['235 2.7.0 Authentication successful']);
  });

  it('accepts AUTH LOGIN with the username as initial response, and CRAM-MD5', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await upgrade(c, f);
    expect(await c.command(`AUTH LOGIN ${Buffer.from('alice').toString('base64')}`, /^334/)).to.deep.equal(['334 UGFzc3dvcmQ6']);
    expect(await c.command(Buffer.from('secret').toString('base64'), /^2/)).to.have.length(1);
    const d = await f.ehlo();
    await upgrade(d, f);
    const [challengeLine] = await d.command('AUTH CRAM-MD5', /^334 /);
    const challenge = Buffer.from(challengeLine.slice(4), 'base64').toString();
    const digest = createHmac('md5', 'secret').update(challenge).digest('hex');
    expect(await d.command(Buffer.from(`alice ${digest}`).toString('base64'), /^\d/)).to.deep.equal(['235 2.7.0 Authentication successful']);
  });

  it('refuses undecodable base64 with 501 5.5.2 (RFC 4954 §4), a cancelled exchange (501 5.7.0, RFC 4954 §6), an unknown mechanism (504) and AUTH in a transaction (503)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await upgrade(c, f);
    expect(await c.command('AUTH PLAIN !!!notbase64', /^5/)).to.deep.equal(['501 5.5.2 Cannot decode response']);
    await c.command('AUTH LOGIN', /^334/);
    expect(await c.command('a b', /^5/)).to.deep.equal(['501 5.5.2 Cannot decode response']);
    await c.command('AUTH PLAIN', /^334/);
    expect(await c.command('Zm9v=', /^5/)).to.deep.equal(['501 5.5.2 Cannot decode response']);
    await c.command('AUTH PLAIN', /^334/);
    expect(await c.command('*', /^5/)).to.deep.equal(['501 5.7.0 Authentication cancelled']);
    expect(await c.command('AUTH XOAUTH2 abc', /^5/)).to.deep.equal(['504 5.5.4 Unrecognized authentication type']);
    await c.command('MAIL FROM:<bob@remote.test>', /^250 /);
    expect(await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^5/)).to.match(/^503 5\.5\.1 /);
  });

  it('writes ESMTPSA with the TLS version and cipher into the Received header', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await upgrade(c, f, { minVersion: 'TLSv1.3' });
    await c.command(`AUTH PLAIN ${plainAuth('alice', 'secret')}`, /^235 /);
    await c.command('MAIL FROM:<alice@example.com>', /^250 /);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('DATA', /^354 /);
    c.send('Subject: tls\r\n\r\nx\r\n.\r\n');
    await c.expect(/^250 /);
    const [raw] = await storedTexts(f.store);
    expect(raw).to.match(/\r\n\tby mx\.test with ESMTPSA \(TLSv1\.3:TLS_AES_\w+\) id /);
  });

  it('serves the implicit-TLS listener (RFC 8314) with the same session code', async () => {
    f = await startSmtp();
    const c = await f.connect({ implicit: true, tls: { minVersion: 'TLSv1.3' } });
    const keys = await c.command('EHLO client.test', /^250 /);
    expect(keys).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
    expect(keys.some((l) => l.includes('STARTTLS'))).to.equal(false);
    await c.command('MAIL FROM:<bob@remote.test>', /^250 /);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('DATA', /^354 /);
    c.send('Subject: implicit\r\n\r\nx\r\n.\r\n');
    await c.expect(/^250 /);
    const [raw] = await storedTexts(f.store);
    expect(raw).to.match(/with ESMTPS \(TLSv1\.3:TLS_AES_256_GCM_SHA384\) id /);
  });

  describe('client certificates in the onSecure hook', () => {
    const seen: PeerInfo[] = [];
    beforeEach(() => void seen.splice(0));
    const hooks = (refuse = false) => ({
      setup: (ct: Container) =>
        ct.bind(SmtpHooks).toConstantValue({
          onSecure: async (peer: PeerInfo) => {
            seen.push(peer);
            if (refuse && peer.security.policyErrors !== SslPolicyErrors.None) throw new SmtpReplyError(554, '5.7.1', 'Client certificate not acceptable');
          },
        }),
    });

    it('shows a valid client certificate with no policy errors (implicit TLS)', async () => {
      const { client, ca } = await testCertificates();
      f = await startSmtp({ tls: { requestClientCertificate: true, trustedCertificates: ca.cert }, ...hooks() });
      const c = await f.connect({ implicit: true, tls: client });
      await c.command('NOOP', /^250 /);
      expect(seen).to.have.length(1);
      expect(seen[0].security.policyErrors).to.equal(SslPolicyErrors.None);
      expect(seen[0].security.peerCertificate?.subject).to.contain('CN=postern-client');
      expect(seen[0].protocol).to.equal('smtps');
    });

    it('shows an untrusted certificate with chain errors after STARTTLS, and a hook may refuse it with its own code', async () => {
      const { untrustedClient, ca } = await testCertificates();
      f = await startSmtp({
        tls: { requestClientCertificate: true, trustedCertificates: ca.cert, validationCallback: () => true },
        ...hooks(true),
      });
      const c = await f.ehlo();
      await c.command('STARTTLS', /^220 /);
      await c.startTls({ ...f.trust(), ...untrustedClient });
      expect(await c.readLine()).to.equal('554 5.7.1 Client certificate not acceptable');
      await c.closed();
      expect(seen[0].security.policyErrors).to.equal(SslPolicyErrors.RemoteCertificateChainErrors);
      expect(seen[0].security.chain?.chainStatus[0]).to.include({ status: X509ChainStatusFlags.PartialChain, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
      expect(seen[0].security.peerCertificate?.subject).to.contain('postern-untrusted-client');
    });

    it('reports RemoteCertificateNotAvailable when the client sends none', async () => {
      const { ca } = await testCertificates();
      f = await startSmtp({ tls: { requestClientCertificate: true, trustedCertificates: ca.cert }, ...hooks() });
      const c = await f.connect({ implicit: true });
      await c.command('NOOP', /^250 /);
      expect(seen[0].security.policyErrors).to.equal(SslPolicyErrors.RemoteCertificateNotAvailable);
    });
  });
});
