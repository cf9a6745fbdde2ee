import { expect } from 'chai';
import type { MailboxEvent } from '../../../lib/contracts/mail-store.js';
import { wants, type NotifyEvent } from '../../../lib/imap/imap-notify.js';
import type { LineClient } from '../../support/line-client.js';
import { startImap, type ImapHarness } from '../imap-harness.js';

describe('IMAP NOTIFY (RFC 5465)', () => {
  let h: ImapHarness;
  let a: LineClient;
  let b: LineClient;

  beforeEach(async () => {
    h = await startImap();
    a = await h.loginAlice();
    b = await h.loginAlice();
    await b.command('c CREATE Other', /^c OK/);
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await h.close();
  });

  it('sends STATUS for other mailboxes and LIST for new names, unsolicited, without a command running', async () => {
    const first = await a.command('n NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge)) (MAILBOXES Other (MessageNew MessageExpunge)) (PERSONAL (MailboxName))', /^n /);
    expect(first).to.deep.equal([first[0], 'n OK NOTIFY completed']);
    expect(first[0]).to.match(/^\* STATUS "Other" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+\)$/);
    await a.command('s SELECT INBOX', /^s OK/);
    await b.command(`p APPEND Other {10+}\r\nSubject:\r\n`, /^p OK/);
    expect(await a.expect(/^\* STATUS /)).to.match(/^\* STATUS "Other" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)$/);
    await b.command('q CREATE Fresh', /^q OK/);
    expect(await a.expect(/^\* LIST /)).to.deep.equal(['* LIST () "/" "Fresh"']);
    await a.command('z NOTIFY NONE', /^z OK/);
    await b.command('r CREATE Quiet', /^r OK/);
    expect(await a.command('y NOOP', /^y /)).to.deep.equal(['y OK NOOP completed']);
    expect((await a.command('x NOTIFY SET (BOGUS (MessageNew))', /^x /))[0]).to.equal('x BAD Unknown NOTIFY filter');
  });
});

describe('NOTIFY event selection (wants)', () => {
  const resync: MailboxEvent = { type: 'flags', username: 'alice', mailbox: 'INBOX', uids: [] };
  it('reports a store resync hint (flags without UIDs) to any message-event subscription, a flag change only to FLAGCHANGE', () => {
    expect(wants(new Set(['MESSAGENEW'] as NotifyEvent[]), resync)).to.equal(true);
    expect(wants(new Set(['MESSAGEEXPUNGE'] as NotifyEvent[]), resync)).to.equal(true);
    expect(wants(new Set(['FLAGCHANGE'] as NotifyEvent[]), resync)).to.equal(true);
    expect(wants(new Set(['MAILBOXNAME'] as NotifyEvent[]), resync)).to.equal(false);
    expect(wants(new Set(['MESSAGENEW'] as NotifyEvent[]), { ...resync, uids: [3] })).to.equal(false);
    expect(wants(new Set(['FLAGCHANGE'] as NotifyEvent[]), { ...resync, uids: [3] })).to.equal(true);
  });
});
