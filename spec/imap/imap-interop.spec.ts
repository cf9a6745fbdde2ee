import { expect } from 'chai';
import { ImapFlow, type FetchMessageObject } from 'imapflow';
import nodemailer from 'nodemailer';
import { imapModule } from '../../lib/di/imap.module.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { ALICE, message, startImap, type ImapHarness } from './imap-harness.js';
import { waitUntil } from '../support/wait-until.js';

describe('IMAP interop: imapflow', () => {
  let h: ImapHarness;
  const clients: ImapFlow[] = [];

  function flow(secure: boolean): ImapFlow {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: secure ? h.securePort : h.port,
      secure,
      auth: { user: ALICE.username, pass: ALICE.password },
      tls: { ca: [h.certs.ca.cert] },
      logger: false,
    });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    h = await startImap();
    await h.deliver(message('first', 'one\r\n'));
    await h.deliver(message('second', 'two\r\n'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) if (c.usable) await c.logout().catch(() => undefined);
    await h.close();
  });

  it('upgrades with STARTTLS, logs in, selects INBOX and fetches envelope, bodystructure and source', async () => {
    const c = flow(false);
    await c.connect();
    expect(c.secureConnection).to.equal(true);
    const box = await c.mailboxOpen('INBOX');
    expect(box.exists).to.equal(2);
    const got: FetchMessageObject[] = [];
    for await (const m of c.fetch('1:*', { envelope: true, bodyStructure: true, source: true, uid: true, flags: true })) got.push(m);
    expect(got.map((m) => m.envelope?.subject)).to.deep.equal(['first', 'second']);
    expect(got[0].bodyStructure?.type).to.equal('text/plain');
    expect(got[1].source?.toString()).to.contain('two\r\n');
    expect(got[0].uid).to.equal(1);
  });

  it('lists mailboxes, searches, adds and removes flags, and moves a message over implicit TLS', async () => {
    const c = flow(true);
    await c.connect();
    await c.mailboxCreate('Archive');
    const names = (await c.list()).map((m) => m.path);
    expect(names).to.include.members(['INBOX', 'Archive']);
    await c.mailboxOpen('INBOX');
    expect(await c.search({ seen: false })).to.deep.equal([1, 2]);
    await c.messageFlagsAdd('1', ['\\Seen', '\\Flagged']);
    expect(await c.search({ seen: true })).to.deep.equal([1]);
    await c.messageFlagsRemove('1', ['\\Flagged']);
    const [first] = await Promise.all([c.fetchOne('1', { flags: true })]);
    // imapflow sends ENABLE IMAP4rev2 when offered; RFC 9051 has no \Recent flag.
    expect(c.enabled.has('IMAP4REV2')).to.equal(true);
    expect(first && [...(first.flags ?? [])].sort()).to.deep.equal(['\\Seen']);
    const moved = await c.messageMove('2', 'Archive');
    expect(moved && moved.uidMap?.get(2)).to.equal(1);
    const status = await c.status('Archive', { messages: true });
    expect(status && status.messages).to.equal(1);
    expect((c.mailbox && typeof c.mailbox !== 'boolean' ? c.mailbox.exists : -1)).to.equal(1);
  });

  it('is woken from IDLE by a delivery', async () => {
    const c = flow(true);
    await c.connect();
    await c.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) => c.on('exists', (e: { count: number }) => resolve(e.count)));
    const idling = c.idle();
    // imapflow sets `idling` once IDLE is under way; deliver only then, so the delivery wakes the IDLE.
    await waitUntil(() => c.idling, 'imapflow to enter IDLE');
    expect(c.idling).to.equal(true);
    await h.deliver(message('third'));
    expect(await exists).to.equal(3);
    await c.noop();
    await idling;
  });

  it('is woken from IDLE by a message nodemailer sends through real SMTP', async () => {
    await h.close();
    h = await startImap({}, { smtp: { smtp: { port: 0 }, smtps: { port: 0 } } }, [memoryModule, smtpModule, imapModule]);
    const smtp = h.listeners.find((l) => l.name === 'smtp');
    if (!smtp) throw new Error('no smtp listener');
    const c = flow(true);
    await c.connect();
    await c.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) => c.on('exists', (e: { count: number }) => resolve(e.count)));
    const idling = c.idle();
    await waitUntil(() => c.idling, 'imapflow to enter IDLE');
    expect(c.idling).to.equal(true);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp.address().port,
      secure: false,
      requireTLS: true,
      tls: { ca: [h.certs.ca.cert], servername: 'localhost' },
    });
    try {
      await transport.sendMail({ from: 'bob@example.com', to: ALICE.addresses[0], subject: 'via smtp', text: 'hello over SMTP' });
    } finally {
      transport.close();
    }
    expect(await exists).to.equal(1);
    await c.noop();
    await idling;
    const got = await c.fetchOne('1', { envelope: true });
    expect(got && got.envelope?.subject).to.equal('via smtp');
  });

  it('gets EMAILID from OBJECTID (RFC 8474) on every fetch and finds a message by it', async () => {
    const c = flow(true);
    await c.connect();
    expect(c.capabilities.has('OBJECTID')).to.equal(true);
    await c.mailboxOpen('INBOX');
    const got = await c.fetchOne('2', { uid: true, threadId: true });
    expect(got && got.emailId).to.match(/^M[0-9a-f]{24}$/);
    expect(got && got.threadId).to.equal(undefined);
    expect(await c.search({ emailId: got ? got.emailId : 'none' })).to.deep.equal([2]);
  });
});
