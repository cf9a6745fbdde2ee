import { expect } from 'chai';
import { Connection } from '../../lib/core/connection.js';
import { startSmtp, storedTexts, type SmtpFixture } from './smtp-harness.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

describe('smtp: commands, replies and bad input (raw socket)', () => {
  let f: SmtpFixture;
  afterEach(async () => {
    await f?.close();
  });

  it('greets at once with 220 and the configured hostname', async () => {
    f = await startSmtp();
    const c = await f.connect();
    c.line('QUIT');
    expect(await c.readLine()).to.match(/^221 2\.0\.0 /);
    await c.closed();
  });

  it('answers EHLO with the ESMTP keywords and no AUTH before TLS', async () => {
    f = await startSmtp();
    const c = await f.connect();
    const lines = await c.command('EHLO client.test', /^250 /);
    expect(lines[0]).to.equal('250-mx.test greets client.test');
    const keys = lines.slice(1).map((l) => l.slice(4));
    expect(keys).to.include.members(['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'CHUNKING', 'STARTTLS']);
    expect(keys.find((k) => k.startsWith('SIZE '))).to.equal(`SIZE ${35 * 1024 * 1024}`);
    expect(keys.some((k) => k.startsWith('AUTH'))).to.equal(false);
  });

  it('lists AUTH before TLS when allowInsecureAuth is set', async () => {
    f = await startSmtp({ config: { allowInsecureAuth: true } });
    const c = await f.connect();
    const lines = await c.command('EHLO client.test', /^250 /);
    expect(lines).to.include('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256');
  });

  it('answers HELO without keywords', async () => {
    f = await startSmtp();
    const c = await f.connect();
    expect(await c.command('HELO client.test', /^250 /)).to.deep.equal(['250 mx.test greets client.test']);
  });

  it('runs a full transaction and stores the message in the recipient INBOX with a Received header', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@remote.test>', /^250 /)).to.deep.equal(['250 2.1.0 Sender <bob@remote.test> OK']);
    expect(await c.command('RCPT TO:<alice@example.com>', /^250 /)).to.deep.equal(['250 2.1.5 Recipient <alice@example.com> OK']);
    expect(await c.command('DATA', /^354 /)).to.have.length(1);
    c.send('Subject: hi\r\n\r\n..dot line\r\nbody\r\n.\r\n');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 Message accepted/);
    const all = await allMessages(f.store);
    expect(all).to.have.length(1);
    expect(all[0].username).to.equal('alice');
    expect(all[0].mailbox).to.equal('INBOX');
    const raw = (await all[0].message.raw()).toString();
    expect(raw).to.match(/^Return-Path: <bob@remote\.test>\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test with ESMTP id c\w+\r\n\tfor <alice@example\.com>; \w{3}, \d\d \w{3} \d{4} [\d:]{8} \+0000\r\n/);
    expect(raw.endsWith('Subject: hi\r\n\r\n.dot line\r\nbody\r\n')).to.equal(true);
  });

  it('answers a pipelined transaction in order and in one write', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    // Count the server's writes, not the client's reads: TCP may split or join segments on a loaded machine.
    const writes: string[] = [];
    const write = Connection.prototype.write;
    Connection.prototype.write = function (this: Connection, data: string | Buffer): boolean {
      writes.push(data.toString());
      return write.call(this, data);
    };
    try {
      c.send('MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n');
      const lines = await c.expect(/^354 /);
      expect(lines.map((l) => l.slice(0, 9))).to.deep.equal(['250 2.1.0', '250 2.1.5', '550 5.1.1', '354 End d']);
    } finally {
      Connection.prototype.write = write;
    }
    expect(writes).to.have.length(1);
    expect(writes[0].split('\r\n').map((l) => l.slice(0, 3))).to.deep.equal(['250', '250', '550', '354', '']);
    c.send('x\r\n.\r\nNOOP\r\nQUIT\r\n');
    expect(await c.expect(/^221 /)).to.have.length(3);
  });

  it('refuses an unknown verb with 500, bad arguments with 501, wrong order with 503', async () => {
    f = await startSmtp();
    const c = await f.connect();
    expect(await c.command('FOO bar', /^5/)).to.deep.equal(['500 5.5.1 Command not recognized']);
    expect(await c.command('MAIL FROM:<a@b.c>', /^5/)).to.deep.equal(['503 5.5.1 Bad sequence of commands: Send EHLO or HELO first']);
    expect(await c.command('EHLO', /^5/)).to.deep.equal(['501 5.5.4 Syntax error: argument required']);
    await c.command('EHLO client.test', /^250 /);
    expect(await c.command('RCPT TO:<alice@example.com>', /^5/)).to.deep.equal(['503 5.5.1 Bad sequence of commands: Need MAIL before RCPT']);
    expect(await c.command('DATA', /^5/)).to.deep.equal(['503 5.5.1 Bad sequence of commands: Need RCPT before DATA']);
    await c.command('MAIL FROM:<a@b.c>', /^250 /);
    expect(await c.command('MAIL FROM:<a@b.c>', /^5/)).to.deep.equal(['503 5.5.1 Bad sequence of commands: Nested MAIL command']);
    expect(await c.command('STARTTLS', /^5/)).to.deep.equal(['503 5.5.1 Bad sequence of commands: STARTTLS is not allowed during a mail transaction']);
    await c.command('RSET', /^250 /);
    expect(await c.command('MAIL FROM:bob@remote.test', /^5/)).to.deep.equal(['501 5.1.7 Address must be enclosed in <>']);
    expect(await c.command('MAIL FROM:<bob@>', /^5/)).to.deep.equal(['501 5.1.7 Bad domain syntax']);
    expect(await c.command('MAIL TO:<bob@x.test>', /^5/)).to.match(/^501 5\.5\.4 /);
    expect(await c.command('MAIL FROM:<bob@x.test> FOO=1', /^5/)).to.deep.equal(['555 5.5.4 MAIL parameter FOO not recognized']);
    expect(await c.command('MAIL FROM:<bob@x.test> BODY=BINARYMIME', /^5/)).to.match(/^501 5\.5\.4 /);
    expect(await c.command('RSET now', /^5/)).to.deep.equal(['501 5.5.4 Syntax error: no arguments allowed']);
    await c.command('MAIL FROM:<>', /^250 /);
    expect(await c.command('RCPT TO:<>', /^5/)).to.deep.equal(['501 5.1.3 Empty address not allowed here']);
    expect(await c.command('RCPT TO:<nobody@example.com>', /^\d/)).to.deep.equal(['550 5.1.1 No such user here']);
    expect(await c.command('MAIL FROM:<x@y.test>', /^5/)).to.match(/^503 5\.5\.1 /);
  });

  it('accepts <Postmaster> and postmaster@ (RFC 5321 §4.5.1) for the first user, or the configured one', async () => {
    f = await startSmtp({ users: [{ username: 'zoe', password: 'pw', addresses: ['zoe@example.com'] }, { username: 'alice', password: 'pw' }] });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<>', /^250 /);
    expect(await c.command('RCPT TO:<Postmaster>', /^\d/)).to.deep.equal(['250 2.1.5 Recipient <Postmaster> OK']);
    expect(await c.command('RCPT TO:<POSTMASTER@example.com>', /^\d/)).to.deep.equal(['250 2.1.5 Recipient <POSTMASTER@example.com> OK']);
    await c.command('DATA', /^354 /);
    c.send('Subject: bounce\r\n\r\nfor the postmaster\r\n.\r\n');
    await c.expect(/^250 /);
    const view = await f.store.openUser('alice'); // first in name order, though it has no address
    const [bounce] = await view.messages('INBOX');
    expect(await view.messages('INBOX')).to.have.length(1);
    // The alias copy keeps the transaction's envelope like any other delivery.
    expect(bounce!.envelope).to.include({ mailFrom: '', helo: 'client.test' });
    expect(bounce!.envelope!.rcptTo).to.deep.equal(['Postmaster', 'POSTMASTER@example.com']);
    await view.release();
    await f.close();
    f = await startSmtp({ smtp: { postmaster: 'zoe@example.com' }, users: [{ username: 'zoe', password: 'pw', addresses: ['zoe@example.com'] }, { username: 'alice', password: 'pw' }] });
    const d = await f.ehlo();
    await d.command('MAIL FROM:<>', /^250 /);
    await d.command('RCPT TO:<postmaster>', /^250 /);
    await d.command('DATA', /^354 /);
    d.send('Subject: bounce\r\n\r\nagain\r\n.\r\n');
    await d.expect(/^250 /);
    const zoe = await f.store.openUser('zoe');
    expect(await zoe.messages('INBOX')).to.have.length(1);
    await zoe.release();
  });

  it('answers RSET, NOOP, VRFY, EXPN and HELP', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await c.command('MAIL FROM:<bob@remote.test>', /^250 /);
    expect(await c.command('RSET', /^2/)).to.deep.equal(['250 2.0.0 OK']);
    expect(await c.command('RCPT TO:<alice@example.com>', /^5/)).to.match(/^503 /);
    expect(await c.command('NOOP', /^2/)).to.deep.equal(['250 2.0.0 OK']);
    expect(await c.command('NOOP anything', /^2/)).to.deep.equal(['250 2.0.0 OK']);
    expect(await c.command('VRFY alice', /^2/)).to.deep.equal(['252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery']);
    expect(await c.command('EXPN list', /^5/)).to.deep.equal(['502 5.5.1 EXPN not implemented']);
    const help = await c.command('HELP', /^214 /);
    expect(help[0]).to.match(/^214-2\.0\.0 /);
  });

  it('refuses unknown local users with 550 5.1.1 and honours the recipient limit with 452 4.5.3', async () => {
    f = await startSmtp({ smtp: { maxRecipients: 2 } });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<bob@remote.test>', /^250 /);
    expect(await c.command('RCPT TO:<ghost@example.com>', /^5/)).to.deep.equal(['550 5.1.1 No such user here']);
    await c.command('RCPT TO:<alice@example.com>', /^250 /);
    await c.command('RCPT TO:<ALICE@example.com>', /^250 /);
    expect(await c.command('RCPT TO:<alice@example.com>', /^4/)).to.deep.equal(['452 4.5.3 Too many recipients']);
    await c.command('DATA', /^354 /);
    c.send('x\r\n.\r\n');
    await c.expect(/^250 /);
    expect(await allMessages(f.store)).to.have.length(1); // duplicates delivered once
  });

  it('refuses relaying outside acceptedDomains with 550 5.7.1', async () => {
    f = await startSmtp({ smtp: { acceptedDomains: ['Example.com'] } });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<bob@remote.test>', /^250 /);
    expect(await c.command('RCPT TO:<someone@elsewhere.test>', /^5/)).to.deep.equal(['550 5.7.1 Relaying denied']);
    await c.command('RCPT TO:<alice@EXAMPLE.com>', /^250 /);
  });

  it('auto-creates recipients with authDisabled', async () => {
    f = await startSmtp({ config: { authDisabled: true } });
    const c = await f.ehlo();
    await c.command('MAIL FROM:<bob@remote.test>', /^250 /);
    await c.command('RCPT TO:<new@anywhere.test>', /^250 /);
    await c.command('DATA', /^354 /);
    c.send('Subject: auto\r\n\r\nx\r\n.\r\n');
    await c.expect(/^250 /);
    const all = await allMessages(f.store);
    expect(all.map((m) => m.username)).to.deep.equal(['new@anywhere.test']);
  });

  it('requires TLS before MAIL with requireTls (530 5.7.0) and auth with requireAuth', async () => {
    f = await startSmtp({ smtp: { requireTls: true } });
    let c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@remote.test>', /^5/)).to.deep.equal(['530 5.7.0 Must issue a STARTTLS command first']);
    await f.close();
    f = await startSmtp({ smtp: { requireAuth: true } });
    c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@remote.test>', /^5/)).to.deep.equal(['530 5.7.0 Authentication required']);
  });

  it('accepts SMTPUTF8 addresses only with the SMTPUTF8 parameter, and BODY=8BITMIME content', async () => {
    f = await startSmtp({ users: [{ username: 'jose', password: 'pw', addresses: ['josé@exämple.test'] }] });
    const c = await f.ehlo();
    c.send(Buffer.from('MAIL FROM:<δοκιμή@παράδειγμα.test>\r\n', 'utf8'));
    expect(await c.readLine()).to.equal('553 5.6.7 Non-ASCII address requires SMTPUTF8');
    c.send(Buffer.from('MAIL FROM:<δοκιμή@παράδειγμα.test> SMTPUTF8 BODY=8BITMIME\r\n', 'utf8'));
    expect(await c.readLine()).to.match(/^250 2\.1\.0 /);
    c.send(Buffer.from('RCPT TO:<josé@exämple.test>\r\n', 'utf8'));
    expect(await c.readLine()).to.match(/^250 2\.1\.5 /);
    await c.command('DATA', /^354 /);
    c.send(Buffer.from('Subject: café\r\n\r\nnaïve ünïcödé\r\n.\r\n', 'utf8'));
    await c.expect(/^250 /);
    const [raw] = await allMessages(f.store);
    expect((await raw.message.raw()).toString('utf8')).to.contain('naïve ünïcödé\r\n');
  });

  it('names UTF8SMTP in the Received header of an SMTPUTF8 transaction (RFC 6531 §3.7.3), ESMTP otherwise', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    for (const param of [' SMTPUTF8', '']) {
      await c.command(`MAIL FROM:<bob@remote.test>${param}`, /^250 /);
      await c.command('RCPT TO:<alice@example.com>', /^250 /);
      await c.command('DATA', /^354 /);
      c.send('Subject: x\r\n\r\nx\r\n.\r\n');
      await c.expect(/^250 /);
    }
    const [utf8, ascii] = await storedTexts(f.store);
    expect(utf8).to.match(/\r\n\tby mx\.test with UTF8SMTP id /);
    expect(ascii).to.match(/\r\n\tby mx\.test with ESMTP id /);
  });

  it('refuses NUL, bare LF and 8-bit bytes in commands with 500 5.5.2', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    c.send(Buffer.from('NOOP\0\r\n', 'latin1'));
    expect(await c.readLine()).to.equal('500 5.5.2 NUL, bare CR or bare LF not allowed in commands');
    c.send('NOOP a\nRSET\r\n');
    expect(await c.readLine()).to.equal('500 5.5.2 NUL, bare CR or bare LF not allowed in commands');
    c.send(Buffer.from('NOOP caf\xe9\r\n', 'latin1'));
    expect(await c.readLine()).to.equal('500 5.5.2 8-bit characters allowed only in SMTPUTF8 addresses');
    c.send(Buffer.from('MAIL FROM:<caf\xe9@x.test> SMTPUTF8\r\n', 'latin1')); // not UTF-8
    expect(await c.readLine()).to.match(/^500 5\.5\.2 /);
    expect(await c.command('NOOP', /^250 /)).to.have.length(1);
  });

  it('refuses an over-long command line with 500 5.5.2 (5.5.6 is only for AUTH exchange lines, RFC 4954 §6) and keeps going', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    c.line('NOOP ' + 'x'.repeat(2000));
    expect(await c.readLine()).to.equal('500 5.5.2 Line too long');
    c.line('MAIL FROM:<bob@remote.test> SIZE=1000 BODY=8BITMIME AUTH=<> ' + ' '.repeat(400));
    expect(await c.readLine()).to.match(/^250 /);
  });

  it('ends the session with 421 4.7.0 after ten errors in a row', async () => {
    f = await startSmtp();
    const c = await f.connect();
    c.send('BAD\r\n'.repeat(12));
    const lines = await c.expect(/^421 /);
    expect(lines.slice(0, 9)).to.deep.equal(Array(9).fill('500 5.5.1 Command not recognized'));
    expect(lines[10]).to.equal('421 4.7.0 Too many errors, closing connection');
    await c.closed();
  });

  it('resets the error count after a good command', async () => {
    f = await startSmtp();
    const c = await f.connect();
    c.send('BAD\r\n'.repeat(9) + 'NOOP\r\n' + 'BAD\r\n'.repeat(9) + 'NOOP\r\n');
    const lines = await c.expect(/^250 /);
    expect(lines).to.have.length(10);
    expect(await c.expect(/^250 /)).to.have.length(10);
  });

  it('closes an idle session with 421 4.4.2', async () => {
    f = await startSmtp({ smtp: { idleTimeoutMs: 100 } });
    const c = await f.connect();
    expect(await c.readLine()).to.equal('421 4.4.2 Idle timeout, closing connection');
    await c.closed();
  });

  it('closes with 421 4.4.2 a client trickling a command line that never ends (slowloris)', async () => {
    f = await startSmtp({ smtp: { idleTimeoutMs: 200 } });
    const c = await f.connect();
    // One byte every 20 ms keeps the socket busy, so only a deadline on the whole line can end this.
    const drip = setInterval(() => c.isClosed || c.send('N'), 20);
    try {
      expect(await c.readLine()).to.equal('421 4.4.2 Idle timeout, closing connection');
      await c.closed();
    } finally {
      clearInterval(drip);
    }
  });

  it('closes with 421 4.4.2 a client trickling a DATA body, and stores nothing', async () => {
    f = await startSmtp({ smtp: { bodyTimeoutMs: 200 } });
    const c = await f.ehlo();
    c.send('MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
    await c.expect(/^354 /);
    const drip = setInterval(() => c.isClosed || c.send('x'), 20); // every byte restarts the idle timer
    try {
      expect(await c.readLine()).to.equal('421 4.4.2 Idle timeout, closing connection');
      await c.closed();
    } finally {
      clearInterval(drip);
    }
    expect(await allMessages(f.store)).to.deep.equal([]);
  });

  it('says 421 4.3.2 to connected clients on shutdown', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    const d = await f.connect({ implicit: true });
    const closing = Promise.all(f.listeners.map((l) => l.close()));
    expect(await c.readLine()).to.equal('421 4.3.2 Service shutting down, closing connection');
    expect(await d.readLine()).to.equal('421 4.3.2 Service shutting down, closing connection');
    await Promise.all([c.closed(), d.closed(), closing]);
  });
});
