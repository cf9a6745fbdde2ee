import { expect } from 'chai';
import type { LineClient } from '../../support/line-client.js';
import { startImap, type ImapHarness } from '../imap-harness.js';

describe('IMAP LIST and LSUB', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    c = await h.loginAlice();
  });
  afterEach(async () => {
    await h.close();
  });

  it('answers LSUB % with the unsubscribed parent of a subscribed child, flagged \\Noselect (RFC 3501 §6.3.9)', async () => {
    await c.command('a CREATE Work/Done', /^a OK/);
    await c.command('b SUBSCRIBE Work/Done', /^b OK/);
    expect(await c.command('c LSUB "" "%"', /^c /)).to.deep.equal(['* LSUB (\\Noselect) "/" "Work"', 'c OK LSUB completed']);
    expect(await c.command('d LSUB "" "Work/%"', /^d /)).to.deep.equal(['* LSUB () "/" "Work/Done"', 'd OK LSUB completed']);
    await c.command('e SUBSCRIBE Work', /^e OK/);
    expect(await c.command('f LSUB "" "%"', /^f /)).to.deep.equal(['* LSUB () "/" "Work"', 'f OK LSUB completed']);
  });

  it('matches INBOX in any case also when the pattern has a wildcard (inbox%, In*), other names case-sensitively', async () => {
    await c.command('a CREATE INBOX/Sub', /^a OK/);
    await c.command('b CREATE inboxes', /^b OK/);
    expect(await c.command('c LIST "" "inbox%"', /^c /)).to.deep.equal([
      '* LIST (\\HasChildren) "/" "INBOX"',
      '* LIST (\\HasNoChildren) "/" "inboxes"',
      'c OK LIST completed',
    ]);
    expect(await c.command('d LIST "" "In*"', /^d /)).to.deep.equal([
      '* LIST (\\HasChildren) "/" "INBOX"',
      '* LIST (\\HasNoChildren) "/" "INBOX/Sub"',
      'd OK LIST completed',
    ]);
    expect(await c.command('e LIST "" "Inbox/%"', /^e /)).to.deep.equal(['* LIST (\\HasNoChildren) "/" "INBOX/Sub"', 'e OK LIST completed']);
  });
});

describe('IMAP LIST-EXTENDED, LIST-STATUS and SPECIAL-USE', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    c = await h.loginAlice();
    for (const box of ['Work', 'Work/A', 'Work/B', 'Sent', 'Trash']) await c.command(`m CREATE ${box}`, /^m OK/);
    await c.command('s SUBSCRIBE Work/A', /^s OK/);
    await c.command('t SUBSCRIBE Gone', /^t /);
  });
  afterEach(async () => {
    await h.close();
  });

  it('lists subscriptions with \\NonExistent and, with RECURSIVEMATCH, parents with CHILDINFO (RFC 5258 §3.5)', async () => {
    await c.command('u SUBSCRIBE Trash', /^u OK/);
    await c.command('v DELETE Trash', /^v OK/);
    expect(await c.command('a LIST (SUBSCRIBED) "" "*"', /^a /)).to.deep.equal([
      '* LIST (\\NonExistent \\Subscribed) "/" "Trash"',
      '* LIST (\\Subscribed) "/" "Work/A"',
      'a OK LIST completed',
    ]);
    expect(await c.command('b LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)', /^b /)).to.deep.equal([
      '* LIST (\\NonExistent \\Subscribed) "/" "Trash"',
      '* LIST (\\HasChildren) "/" "Work" (CHILDINFO ("SUBSCRIBED"))',
      'b OK LIST completed',
    ]);
    expect((await c.command('c LIST (RECURSIVEMATCH) "" "*"', /^c /))[0]).to.equal('c BAD RECURSIVEMATCH needs a selection option');
    expect((await c.command('d LIST "" "*" RETURN (FOO)', /^d /))[0]).to.equal('d BAD Unsupported LIST option');
  });

  it('answers RETURN (STATUS (…)) with a STATUS after each selectable mailbox (RFC 5819)', async () => {
    await h.deliver('Subject: x\r\n\r\nx\r\n');
    expect(await c.command('a LIST "" (INBOX Work) RETURN (STATUS (MESSAGES UNSEEN))', /^a /)).to.deep.equal([
      '* LIST () "/" "INBOX"',
      '* STATUS "INBOX" (MESSAGES 1 UNSEEN 1)',
      '* LIST () "/" "Work"',
      '* STATUS "Work" (MESSAGES 0 UNSEEN 0)',
      'a OK LIST completed',
    ]);
  });

  it('marks the conventional folders with RFC 6154 attributes and selects them with (SPECIAL-USE)', async () => {
    expect(await c.command('a LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)', /^a /)).to.deep.equal([
      '* LIST (\\Sent) "/" "Sent"',
      '* LIST (\\Trash) "/" "Trash"',
      'a OK LIST completed',
    ]);
    expect(await c.command('b LIST "" Sent', /^b /)).to.deep.equal(['* LIST (\\HasNoChildren \\Sent) "/" "Sent"', 'b OK LIST completed']);
  });

  it('creates a mailbox with the special use its name carries, and refuses any other use with [USEATTR] (RFC 6154 §3)', async () => {
    const created = await c.command('a CREATE Junk (USE (\\Junk))', /^a /);
    expect(created).to.have.lengthOf(1);
    expect(created[0]).to.match(/^a OK \[MAILBOXID \(F[0-9a-f]+\)\] CREATE completed$/);
    expect(await c.command('b CREATE Spam (USE (\\Junk))', /^b /)).to.deep.equal(['b NO [USEATTR] This name cannot have that special use']);
    expect(await c.command('c LIST "" Spam', /^c /)).to.deep.equal(['c OK LIST completed']);
    expect((await c.command('d CREATE X (USE Junk)', /^d /))[0]).to.equal('d BAD CREATE name [(USE (attributes))]');
  });
});
