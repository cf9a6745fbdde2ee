import { expect } from 'chai';
import { generateClientCertificate, type DevCertificates, type PemPair } from '../../lib/core/dev-certificates.js';
import { startExternalLoginServer } from '../../samples/external-login.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

describe('samples: external-login.ts (SASL EXTERNAL with a client certificate)', () => {
  let certs: DevCertificates;
  let alice: PemPair;
  let ops: PemPair;
  let running: Awaited<ReturnType<typeof startExternalLoginServer>> | undefined;
  const clients: LineClient[] = [];

  before(async () => {
    certs = await testCertificates();
    alice = await generateClientCertificate(certs.ca, 'Alice Example', { emails: ['alice@example.test'] });
    ops = await generateClientCertificate(certs.ca, 'ops');
  });
  beforeEach(async () => {
    running = await startExternalLoginServer({
      certificate: certs.server,
      clientCa: certs.ca.cert,
      users: ['alice@example.test', 'bob@example.test', 'ops'],
      support: ['ops'],
      anyPort: true,
      log: { silent: true },
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await running?.close();
    running = undefined;
  });

  async function connect(name: 'smtps' | 'pop3s' | 'imaps', client: PemPair | undefined, greeting: RegExp): Promise<LineClient> {
    const port = running!.ready.find((l) => l.name === name)!.port;
    const c = await LineClient.connect(port, { tls: { ca: certs.ca.cert, servername: 'localhost', ...(client ? { cert: client.cert, key: client.key } : {}) } });
    clients.push(c);
    await c.expect(greeting);
    return c;
  }

  it('logs the certificate in as its SAN e-mail address over SMTP, POP3 and IMAP', async () => {
    const smtp = await connect('smtps', alice, /^220 /);
    expect(await smtp.command('EHLO client.test', /^250 /)).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 EXTERNAL');
    expect(await smtp.command('AUTH EXTERNAL =', /^\d{3} /)).to.deep.equal(['235 2.7.0 Authentication successful']);
    const pop3 = await connect('pop3s', alice, /^\+OK/);
    expect(await pop3.command('AUTH EXTERNAL', /^[+-]/)).to.deep.equal(['+ ']);
    expect(await pop3.command('', /^[+-]/)).to.deep.equal(['+OK maildrop locked and ready, 0 messages (0 octets)']);
    const imap = await connect('imaps', alice, /^\* OK/);
    expect((await imap.command('a CAPABILITY', /^a /))[0]).to.contain(' AUTH=EXTERNAL SASL-IR ');
    expect((await imap.command('b AUTHENTICATE EXTERNAL =', /^b /)).at(-1)).to.match(/^b OK \[CAPABILITY [^\]]+\] Logged in$/);
  });

  it('lets the support certificate act as a user, and refuses the same to anyone else', async () => {
    const imap = await connect('imaps', ops, /^\* OK/);
    expect((await imap.command(`a AUTHENTICATE EXTERNAL ${b64('bob@example.test')}`, /^a /)).at(-1)).to.match(/^a OK /);
    const other = await connect('imaps', alice, /^\* OK/);
    expect(await other.command(`a AUTHENTICATE EXTERNAL ${b64('bob@example.test')}`, /^a /)).to.deep.equal(['a NO [AUTHENTICATIONFAILED] Authentication failed']);
    // Allowed by the mapper, but the store knows no such user: refused the same way.
    const stranger = await connect('imaps', ops, /^\* OK/);
    expect(await stranger.command(`a AUTHENTICATE EXTERNAL ${b64('carol@example.test')}`, /^a /)).to.deep.equal(['a NO [AUTHENTICATIONFAILED] Authentication failed']);
  });

  it('offers no EXTERNAL to a client without a certificate', async () => {
    const smtp = await connect('smtps', undefined, /^220 /);
    expect(await smtp.command('EHLO client.test', /^250 /)).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
    expect(await smtp.command('AUTH EXTERNAL =', /^\d{3} /)).to.deep.equal(['504 5.5.4 Unrecognized authentication type']);
  });
});
