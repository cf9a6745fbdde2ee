import { expect } from 'chai';
import nodemailer from 'nodemailer';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { ALICE, startPop3, type Pop3Harness } from './pop3-harness.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

describe('pop3: a message delivered by SMTP', () => {
  let h: Pop3Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('shows up in POP3 byte for byte (nodemailer over SMTPS, RETR over POP3S)', async () => {
    h = await startPop3({}, { smtp: { smtp: { port: 0 }, smtps: { port: 0 } } }, [memoryModule, smtpModule, pop3Module]);
    const smtps = h.listeners.find((l) => l.name === 'smtps');
    if (!smtps) throw new Error('no smtps listener');
    const sent =
      'From: bob@example.com\r\nTo: alice@example.com\r\nSubject: via SMTP\r\n\r\n' + 'plain line\r\n.a dot-led line\r\n..two dots\r\n\r\nend\r\n';
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtps.address().port,
      secure: true,
      tls: h.trust(),
      auth: { user: ALICE.username, pass: ALICE.password },
    });
    try {
      await transport.sendMail({ envelope: { from: 'bob@example.com', to: ['alice@example.com'] }, raw: sent });
    } finally {
      transport.close();
    }
    const [stored] = await allMessages(h.store);
    const raw = await stored.message.raw();
    // The SMTP layer prepends trace headers (RFC 5321 §4.4); the rest is the client's message unchanged.
    expect(raw.toString('latin1').endsWith(sent)).to.equal(true);

    const c = await h.loginAlice();
    const lines = await c.command('RETR 1', /^\.$/);
    expect(lines[0]).to.equal(`+OK ${raw.length} octets`);
    const unstuffed = lines.slice(1, -1).map((l) => (l.startsWith('.') ? l.slice(1) : l));
    expect(Buffer.from(unstuffed.join('\r\n') + '\r\n', 'latin1').equals(raw)).to.equal(true);
  });
});
