import { expect } from 'chai';
import net from 'node:net';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { startMailServer, type MailServerOptions, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { MessageCatalog } from '../../lib/test-double/received-message.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

describe('test double: startMailServer()', () => {
  const servers: RunningMailServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  async function start(options: MailServerOptions = {}): Promise<RunningMailServer> {
    const server = await startMailServer(options);
    servers.push(server);
    return server;
  }

  /** Sends over STARTTLS to the double's `smtp` port, trusting its CA. */
  async function send(server: RunningMailServer, message: Mail.Options, auth?: { user: string; pass: string }): Promise<void> {
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.ports.smtp,
      requireTLS: true,
      tls: { ca: server.ca, servername: 'localhost' },
      ...(auth ? { auth } : {}),
    });
    try {
      await transport.sendMail(message);
    } finally {
      transport.close();
    }
  }

  /** Logs in over POP3S; resolves the final reply line. */
  async function pop3Login(server: RunningMailServer, user: string, pass: string): Promise<string> {
    const c = await LineClient.connect(server.ports.pop3s!, { host: server.host, tls: { ca: server.ca, servername: 'localhost' } });
    try {
      await c.expect(/^\+OK/);
      await c.command(`USER ${user}`, /^[+-]/);
      const [reply] = await c.command(`PASS ${pass}`, /^[+-]/);
      return reply ?? '';
    } finally {
      await c.close();
    }
  }

  /** A port that was free a moment ago. */
  async function freePort(): Promise<number> {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return port;
  }

  it('starts all six listeners on free ports by default, with a CA that clients can trust', async () => {
    const server = await start();
    expect(Object.keys(server.ports)).to.deep.equal(['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps']);
    expect(new Set(Object.values(server.ports)).size).to.equal(6);
    expect(server.host).to.equal('127.0.0.1');
    expect(server.ca).to.match(/^-----BEGIN CERTIFICATE-----/);
    const c = await LineClient.connect(server.ports.imaps!, { tls: { ca: server.ca, servername: 'localhost' } });
    expect(await c.readLine()).to.match(/^\* OK /);
    await c.close();
  });

  it('starts only the listed protocols, on fixed ports when given', async () => {
    const fixed = await freePort();
    const server = await start({ protocols: ['smtp', 'pop3s'], ports: { smtp: fixed } });
    expect(server.ports).to.deep.equal({ smtp: fixed, pop3s: server.ports.pop3s });
    expect(server.ports.pop3s).to.be.above(0);
    const c = await LineClient.connect(fixed);
    expect(await c.readLine()).to.match(/^220 /);
    await c.close();
  });

  it('creates users from "login:password@domain" strings and addUser(); both logins work', async () => {
    const server = await start({ protocols: ['smtp', 'pop3s'], users: ['alice:s3cr:et@example.test'] });
    await server.addUser('bob:pw@example.test');
    await server.addUser({ username: 'carol', password: 'pw', addresses: ['carol@example.test', 'c@example.test'] });
    expect(await pop3Login(server, 'alice', 's3cr:et')).to.match(/^\+OK/);
    expect(await pop3Login(server, 'alice@example.test', 's3cr:et')).to.match(/^\+OK/);
    expect(await pop3Login(server, 'bob', 'pw')).to.match(/^\+OK/);
    expect(await pop3Login(server, 'alice', 'wrong')).to.match(/^-ERR/);
    await send(server, { from: 'x@example.test', to: 'c@example.test', subject: 'alias', text: 'to an alias' });
    const [message] = await server.waitForMessages(1);
    expect(message).to.include({ username: 'carol', mailbox: 'INBOX', subject: 'alias' });
  });

  it('refuses unknown recipients and logins unless authDisabled', async () => {
    const strict = await start({ protocols: ['smtp', 'pop3s'] });
    const refused = await send(strict, { from: 'x@example.test', to: 'nobody@example.test', subject: 's', text: 't' }).then(
      () => undefined,
      (err: unknown) => err as { responseCode?: number },
    );
    expect(refused?.responseCode).to.equal(550);
    expect(await pop3Login(strict, 'anyone', 'anything')).to.match(/^-ERR/);

    const open = await start({ protocols: ['smtp', 'pop3s'], authDisabled: true });
    await send(open, { from: 'x@example.test', to: 'nobody@example.test', subject: 'auto', text: 'created on delivery' }, { user: 'whoever', pass: 'whatever' });
    const [message] = await open.waitForMessages(1);
    expect(message?.to).to.deep.equal([{ name: '', address: 'nobody@example.test' }]);
    expect(message?.subject).to.equal('auto');
    expect(await pop3Login(open, 'anyone', 'anything')).to.match(/^\+OK/);
  });

  it('parses received messages: from, to, cc, subject, text, html, attachments, headers, raw, uid', async () => {
    const server = await start({ protocols: ['smtp'], users: ['alice:pw@example.test', 'bob:pw@example.test'] });
    await send(server, {
      from: '"Sender" <sender@example.test>',
      to: 'alice@example.test',
      cc: 'bob@example.test',
      subject: 'Grüße',
      text: 'plain body',
      html: '<p>html body</p>',
      attachments: [{ filename: 'data.bin', content: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' }],
    });
    const messages = await server.waitForMessages(2);
    expect(messages.map((m) => m.username).sort()).to.deep.equal(['alice', 'bob']);
    for (const m of messages) {
      expect(m).to.include({ mailbox: 'INBOX', subject: 'Grüße', uid: 1 });
      expect(m.from).to.deep.equal({ name: 'Sender', address: 'sender@example.test' });
      expect(m.to).to.deep.equal([{ name: '', address: 'alice@example.test' }]);
      expect(m.cc).to.deep.equal([{ name: '', address: 'bob@example.test' }]);
      expect(m.text?.trim()).to.equal('plain body');
      expect(m.html).to.equal('<p>html body</p>');
      expect(m.attachments).to.have.length(1);
      expect(m.attachments[0]).to.include({ filename: 'data.bin', contentType: 'application/octet-stream', size: 4 });
      expect([...m.attachments[0]!.content]).to.deep.equal([0, 1, 2, 255]);
      expect(m.headers.get('subject')).to.equal('Grüße');
      expect(Buffer.isBuffer(m.raw)).to.equal(true);
      expect(m.raw.toString('latin1')).to.match(/^Return-Path: <sender@example\.test>\r\nReceived: from /);
    }
  });

  it('receivedMessages keeps display names and adds messageId, date, flags, typed headers and header lines', async () => {
    const server = await start({ protocols: ['smtp'], users: ['alice:pw@example.test'] });
    await send(server, {
      from: '"Zoë Sender" <sender@example.test>',
      to: '"Alice A." <alice@example.test>',
      replyTo: 'replies@example.test',
      subject: 'typed',
      text: 'x',
      messageId: '<abc.123@example.test>',
      date: new Date('2026-01-02T03:04:05Z'),
    });
    const m = await server.waitForMessage((x) => x.subject === 'typed');
    expect(m.from).to.deep.equal({ name: 'Zoë Sender', address: 'sender@example.test' });
    expect(m.to).to.deep.equal([{ name: 'Alice A.', address: 'alice@example.test' }]);
    expect(m.replyTo).to.deep.equal([{ name: '', address: 'replies@example.test' }]);
    expect(m.messageId).to.equal('abc.123@example.test');
    expect(m.date?.toISOString()).to.equal('2026-01-02T03:04:05.000Z');
    expect(m.headers.get('date')).to.be.instanceOf(Date);
    expect(m.headerLines.find((h) => h.key === 'subject')?.line).to.equal('Subject: typed');
    expect(m.flags).to.deep.equal([]);
    expect(m.size).to.equal(m.raw.length);
    const alice = await server.store.openUser('alice');
    await alice.setFlags('INBOX', [m.uid], ['\\Seen'], 'add');
    await alice.release();
    const [again] = await server.receivedMessages();
    expect(again?.flags).to.deep.equal(['\\Seen']); // flags are read fresh …
    expect(again?.headers).to.equal(m.headers); // … the parse is cached (same object)
    expect(again?.id).to.equal(m.id);
  });

  it('keeps the SMTP envelope on every message: MAIL FROM, every RCPT TO (Bcc too), HELO, user, client, TLS, time', async () => {
    const server = await start({ protocols: ['smtp'], users: ['alice:pw@example.test', 'bob:pw@example.test'] });
    const before = Date.now();
    await send(server, { from: 'alice@example.test', to: 'alice@example.test', bcc: 'bob@example.test', subject: 'env', text: 'x' }, { user: 'alice', pass: 'pw' });
    const m = await server.waitForMessage((x) => x.username === 'bob');
    expect(m.to.map((t) => t.address)).to.deep.equal(['alice@example.test']); // no Bcc header …
    const env = m.envelope!;
    expect(env).to.include({ mailFrom: 'alice@example.test', authUser: 'alice', clientAddress: '127.0.0.1', protocol: 'smtp' });
    expect(env.rcptTo).to.deep.equal(['alice@example.test', 'bob@example.test']); // … but the envelope shows it
    expect(env.helo).to.be.a('string').and.not.equal('');
    expect(env.clientPort).to.be.a('number');
    expect(env.tls?.protocol).to.match(/^TLSv1\.[23]$/);
    expect(env.tls?.cipher).to.match(/^TLS_|^ECDHE/);
    expect(env.tls?.clientCertSubject).to.equal(undefined);
    expect(Date.parse(env.receivedAt)).to.be.at.least(before - 1000);
    await server.store.deliver('alice@example.test', Buffer.from('Subject: direct\r\n\r\n'));
    expect((await server.waitForMessage((x) => x.subject === 'direct')).envelope).to.equal(undefined);
  });

  it('waitForMessage resolves with the first match, later arrivals included, and rejects saying what it saw', async () => {
    const server = await start({ protocols: ['smtp'], users: ['alice:pw@example.test'] });
    await send(server, { from: 'x@example.test', to: 'alice@example.test', subject: 'first', text: '1' });
    const waiting = server.waitForMessage((m) => m.subject === 'second', 5000);
    await send(server, { from: 'x@example.test', to: 'alice@example.test', subject: 'second', text: '2' });
    expect((await waiting).subject).to.equal('second');
    expect((await server.waitForMessage((m) => m.subject === 'first', 10)).uid).to.equal(1);
    let error: Error | undefined;
    await server.waitForMessage((m) => m.subject === 'third', 50).catch((err: Error) => (error = err));
    expect(error?.message).to.equal(
      'waitForMessage: no message matched after 50 ms; saw 2 message(s): alice/INBOX uid 1 "first" from x@example.test to alice@example.test; ' +
        'alice/INBOX uid 2 "second" from x@example.test to alice@example.test',
    );
  });

  it('waitForMessage also works on a store without change notifications (it polls)', async () => {
    const server = await start({ protocols: [], users: ['alice:pw@example.test'] });
    const store = server.store;
    // Only the required store methods: no `watch` capability.
    const bare = { users: store.users, deliver: store.deliver.bind(store), openUser: store.openUser.bind(store) };
    const catalog = new MessageCatalog(bare);
    const waiting = catalog.waitFor((m) => m.subject === 'polled', 5000);
    await store.deliver('alice@example.test', Buffer.from('Subject: polled\r\n\r\nx\r\n'));
    expect((await waiting).subject).to.equal('polled');
  });

  it('waitForMessages resolves on delivery, counts messages stored any way, and rejects clearly on timeout', async () => {
    const server = await start({ protocols: ['smtp'], users: ['alice:pw@example.test'] });
    const waiting = server.waitForMessages(2, 5000);
    await send(server, { from: 'x@example.test', to: 'alice@example.test', subject: 'first', text: '1' });
    await server.store.deliver('alice@example.test', Buffer.from('Subject: second\r\n\r\n2\r\n'));
    expect((await waiting).map((m) => m.subject)).to.deep.equal(['first', 'second']);
    expect((await server.waitForMessages(1, 10)).length).to.equal(2); // already there: resolves at once

    // Rejects once its own 50 ms are over; a wait that never ended would run into the test's timeout instead.
    let error: Error | undefined;
    await server.waitForMessages(3, 50).catch((err: Error) => (error = err));
    expect(error?.message).to.equal('waitForMessages: 2 of 3 message(s) after 50 ms');
  });

  it('waitForMessages counts stored messages, not store events: a MOVE is not a new message', async () => {
    const server = await start({ protocols: ['smtp'], users: ['alice:pw@example.test'] });
    const { uid } = await server.store.deliver('alice@example.test', Buffer.from('Subject: one\r\n\r\n1\r\n'));
    const waiting = server.waitForMessages(2, 2000);
    const alice = await server.store.openUser('alice');
    await alice.create('Archive');
    await alice.move('INBOX', [uid], 'Archive'); // emits exists (Archive) + expunge (INBOX)
    await server.store.deliver('alice@example.test', Buffer.from('Subject: two\r\n\r\n2\r\n'));
    expect((await waiting).map((m) => [m.mailbox, m.subject])).to.deep.equal([
      ['Archive', 'one'],
      ['INBOX', 'two'],
    ]);
  });

  it('purge() removes messages but keeps users; UIDs are not reused', async () => {
    const server = await start({ protocols: ['smtp', 'pop3s'], users: ['alice:pw@example.test'] });
    await send(server, { from: 'x@example.test', to: 'alice@example.test', subject: 'before', text: '1' });
    await server.waitForMessages(1);
    await server.purge();
    expect(await server.receivedMessages()).to.deep.equal([]);
    expect(await pop3Login(server, 'alice', 'pw')).to.match(/^\+OK/);
    await send(server, { from: 'x@example.test', to: 'alice@example.test', subject: 'after', text: '2' });
    const [after] = await server.waitForMessages(1);
    expect(after).to.include({ subject: 'after', uid: 2 });
  });

  it('stop() closes every listener and may be called twice', async () => {
    const server = await start({ protocols: ['smtp', 'imaps'] });
    const { smtp } = server.ports;
    await server.stop();
    await server.stop();
    const refused = await LineClient.connect(smtp!).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).to.equal('ECONNREFUSED');
  });

  it('stop() ends live sessions (SMTP answers 421) instead of waiting for them', async () => {
    const server = await start({ protocols: ['smtp'] });
    const c = await LineClient.connect(server.ports.smtp!);
    await c.expect(/^220 /);
    await server.stop();
    expect(await c.readLine()).to.match(/^421 /);
    await c.closed();
  });

  it('runs two servers in parallel without sharing ports or mail', async () => {
    const [a, b] = await Promise.all([start({ users: ['alice:pw@example.test'] }), start({ users: ['alice:pw@example.test'] })]);
    const portsA = new Set(Object.values(a.ports));
    expect(Object.values(b.ports).filter((p) => portsA.has(p))).to.deep.equal([]);
    expect(a.ca).to.equal(b.ca); // one development CA per process
    await send(a, { from: 'x@example.test', to: 'alice@example.test', subject: 'only a', text: 'a' });
    expect((await a.waitForMessages(1)).map((m) => m.subject)).to.deep.equal(['only a']);
    expect(await b.receivedMessages()).to.deep.equal([]);
  });

  it('listens on ::1 when asked (certificate valid for it)', async function () {
    const v6 = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!v6) this.skip(); // no IPv6 loopback in this environment

    const server = await start({ host: '::1', protocols: ['smtp', 'imaps'], users: ['alice:pw@example.test'] });
    expect(server.host).to.equal('::1');
    await send(server, { from: 'x@example.test', to: 'alice@example.test', subject: 'over v6', text: 'hi' });
    expect((await server.waitForMessages(1))[0]?.raw.toString('latin1')).to.match(/^Received: from .*\[IPv6:::1\]/m);

    const client = new ImapFlow({ host: '::1', port: server.ports.imaps!, secure: true, tls: { ca: server.ca }, auth: { user: 'alice', pass: 'pw' }, logger: false });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      expect(box.exists).to.equal(1);
    } finally {
      await client.logout();
    }
  });

  it('reports the top of your own chain as ca, or the ca you name', async () => {
    const certs = await testCertificates();
    const chained = await start({ protocols: ['imaps'], tls: { certificate: { ...certs.server, chain: certs.ca.cert } } });
    expect(chained.ca).to.equal(certs.ca.cert.trim());
    const c = await LineClient.connect(chained.ports.imaps!, { tls: { ca: chained.ca, servername: 'localhost' } });
    expect(await c.readLine()).to.match(/^\* OK /);
    await c.close();
    const named = await start({ protocols: ['imaps'], tls: { certificate: certs.server }, ca: certs.ca.cert });
    expect(named.ca).to.equal(certs.ca.cert);
  });
});
