/** Behaviour imaptest's scripted tests (nil, atoms, fetch-envelope, search-addresses) check, over real sockets. */
import { expect } from 'chai';
import type { LineClient } from '../support/line-client.js';
import { startImap, type ImapHarness } from './imap-harness.js';

describe('imap compliance (imaptest scripts)', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
  });
  afterEach(async () => {
    await c?.close();
    await h.close();
  });

  async function selectInbox(): Promise<void> {
    c = await h.loginAlice();
    await c.command('S SELECT INBOX', /^S OK/);
  }

  it('takes NIL as an astring in SEARCH, LIST and as a keyword in STORE (imaptest nil)', async () => {
    await h.deliver('Subject: NIL\r\n\r\nnil\r\n');
    await selectInbox();
    expect(await c.command('a SEARCH SUBJECT NIL', /^a /)).to.deep.equal(['* SEARCH 1', 'a OK SEARCH completed']);
    expect(await c.command('b SEARCH BODY nil', /^b /)).to.deep.equal(['* SEARCH 1', 'b OK SEARCH completed']);
    expect((await c.command('c LIST "" NIL', /^c /)).pop()).to.match(/^c OK/);
    await c.command('d STORE 1 +FLAGS.SILENT NIL', /^d OK/);
    expect(await c.command('e FETCH 1 FLAGS', /^e /)).to.include('* 1 FETCH (FLAGS (NIL \\Recent))');
  });

  it('answers NO [CANNOT], not BAD, for a mailbox name that is not modified UTF-7, and LIST OK (imaptest atoms)', async () => {
    c = await h.loginAlice();
    expect(await c.command('a SELECT &-x&Jjo', /^a /)).to.deep.equal(['a NO [CANNOT] Invalid mailbox name encoding']);
    expect(await c.command('b CREATE "bad&name"', /^b /)).to.deep.equal(['b NO [CANNOT] Invalid mailbox name encoding']);
    expect(await c.command(`c LIST "" !#$&'+,-.0123456789:;<=>?@^_\`|[}%*`, /^c /)).to.deep.equal(['c OK LIST completed']);
    expect(await c.command('d SELECT ~foo', /^d /)).to.deep.equal(['d NO [NONEXISTENT] Mailbox does not exist']);
  });

  it('keeps the source route of an address in ENVELOPE (imaptest fetch-envelope)', async () => {
    await h.deliver('From: <@route:user@domain>\r\nTo: <@a,@b:x@y>\r\n\r\nbody\r\n');
    await selectInbox();
    const lines = await c.command('f FETCH 1 ENVELOPE', /^f /);
    expect(lines[0]).to.equal(
      '* 1 FETCH (ENVELOPE (NIL NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@a,@b" "x" "y")) NIL NIL NIL NIL))',
    );
  });

  it('finds an address with comments inside its angle brackets by SEARCH FROM (imaptest search-addresses)', async () => {
    await h.deliver('From: <user-from (comment)@ (comment) domain.org>\r\n\r\nbody\r\n');
    await h.deliver('From: other@domain.org\r\n\r\nbody\r\n');
    await selectInbox();
    expect(await c.command('s SEARCH FROM user-from@domain.org', /^s /)).to.deep.equal(['* SEARCH 1', 's OK SEARCH completed']);
    const env = await c.command('f FETCH 1 ENVELOPE', /^f /);
    expect(env[0]).to.contain('((NIL NIL "user-from" "domain.org"))');
  });
});
