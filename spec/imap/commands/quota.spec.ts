import { expect } from 'chai';
import { createMailServerContainer, MailServer } from '../../../lib/di/mail-server.js';
import { LineClient } from '../../support/line-client.js';
import { testCertificates } from '../../support/certs.js';

/** A message of exactly `kib` KiB: a header, then 1 KiB lines, the first one shortened by the header. */
function message(subject: string, kib: number): string {
  const header = `Subject: ${subject}\r\n\r\n`;
  return header + `${'x'.repeat(1022 - header.length)}\r\n` + `${'y'.repeat(1022)}\r\n`.repeat(kib - 1);
}

describe('QUOTA (RFC 9208) with SMTP delivery refused at the limit', () => {
  let server: MailServer;
  let ports: Record<string, number>;
  const clients: LineClient[] = [];

  beforeEach(async () => {
    const certs = await testCertificates();
    server = new MailServer(
      createMailServerContainer({
        only: ['smtp', 'imaps'],
        anyPort: true,
        log: { silent: true },
        tls: { certificate: certs.server },
        users: [{ username: 'alice', password: 'pw', addresses: ['alice@example.test'] }, { username: 'bob', password: 'pw', addresses: ['bob@example.test'] }],
        quota: { storage: 3 * 1024, users: { bob: 100 * 1024 } },
      }),
    );
    ports = Object.fromEntries((await server.start()).map((l) => [l.name, l.port]));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.stop();
    await server.container.unbindAllAsync();
  });

  async function connect(port: number, tls: boolean): Promise<LineClient> {
    const certs = await testCertificates();
    const c = await LineClient.connect(port, tls ? { tls: { ca: certs.ca.cert, servername: 'localhost' } } : {});
    clients.push(c);
    return c;
  }

  it('reports usage with GETQUOTAROOT/GETQUOTA, refuses APPEND past the limit with [OVERQUOTA] and SMTP with 552 5.2.2', async () => {
    await server.store.deliver('alice@example.test', Buffer.from(message('first', 2)));
    const imap = await connect(ports.imaps, true);
    await imap.expect(/^\* OK /);
    const login = await imap.command('a LOGIN alice pw', /^a /);
    expect(login[0]).to.contain('QUOTA=RES-STORAGE');
    expect(await imap.command('b GETQUOTAROOT INBOX', /^b /)).to.deep.equal(['* QUOTAROOT "INBOX" ""', '* QUOTA "" (STORAGE 2 3)', 'b OK GETQUOTAROOT completed']);
    expect(await imap.command('c GETQUOTA ""', /^c /)).to.deep.equal(['* QUOTA "" (STORAGE 2 3)', 'c OK GETQUOTA completed']);
    expect(await imap.command('d GETQUOTA "other"', /^d /)).to.deep.equal(['d NO [NONEXISTENT] No such quota root']);
    const big = message('big', 2);
    expect(await imap.command(`e APPEND INBOX {${big.length}+}\r\n${big}`, /^e /)).to.deep.equal(['e NO [OVERQUOTA] Quota exceeded']);
    expect(await imap.command('f STATUS INBOX (MESSAGES SIZE)', /^f /)).to.deep.equal([`* STATUS "INBOX" (MESSAGES 1 SIZE ${message('first', 2).length})`, 'f OK STATUS completed']);

    const smtp = await connect(ports.smtp, false);
    await smtp.expect(/^220 /);
    await smtp.command('EHLO client.test', /^250 /);
    await smtp.command('MAIL FROM:<x@example.org>', /^250 /);
    await smtp.command('RCPT TO:<alice@example.test>', /^250 /);
    await smtp.command('DATA', /^354 /);
    expect(await smtp.command(`${big}.`, /^\d{3} /)).to.deep.equal(['552 5.2.2 Mailbox full']);
    // bob's own limit is larger: the same message is accepted.
    await smtp.command('MAIL FROM:<x@example.org>', /^250 /);
    await smtp.command('RCPT TO:<bob@example.test>', /^250 /);
    await smtp.command('DATA', /^354 /);
    expect((await smtp.command(`${big}.`, /^\d{3} /))[0]).to.match(/^250 /);
  });
});
