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
