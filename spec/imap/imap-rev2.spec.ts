/** IMAP4rev2 (RFC 9051) for sessions that ENABLE it, and SEARCHRES (RFC 5182), over the wire. */
import { expect } from 'chai';
import type { LineClient } from '../support/line-client.js';
import { message, startImap, type ImapHarness } from './imap-harness.js';

describe('imap: IMAP4rev2 (RFC 9051)', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    await h.deliver(message('one'));
    await h.deliver(message('two'));
    c = await h.loginAlice();
  });
  afterEach(async () => {
    await c.close();
    await h.close();
  });

  /** Drops the response lines whose values vary from run to run (UIDVALIDITY, MAILBOXID). */
  const stable = (lines: string[]): string[] => lines.filter((l) => !/^\* OK \[(UIDVALIDITY|MAILBOXID) /.test(l));

  it('advertises IMAP4rev2 beside IMAP4rev1 and stays IMAP4rev1 until ENABLE IMAP4rev2', async () => {
    const caps = (await c.command('a CAPABILITY', /^a /))[0]!.split(' ');
    expect(caps.slice(2, 4)).to.deep.equal(['IMAP4rev1', 'IMAP4rev2']);
    const selected = stable(await c.command('b SELECT INBOX', /^b /));
    expect(selected).to.include('* 2 RECENT');
    expect(await c.command('c SEARCH ALL', /^c /)).to.deep.equal(['* SEARCH 1 2', 'c OK SEARCH completed']);
  });

  it('after ENABLE IMAP4rev2: SELECT sends LIST instead of RECENT and UNSEEN, FLAGS lack \\Recent, SEARCH answers ESEARCH', async () => {
    expect(await c.command('a ENABLE IMAP4rev2', /^a /)).to.deep.equal(['* ENABLED IMAP4rev2', 'a OK ENABLE completed']);
    expect(await c.command('a2 ENABLE IMAP4rev2', /^a2 /), 'enabled once').to.deep.equal(['* ENABLED', 'a2 OK ENABLE completed']);
    expect(stable(await c.command('b SELECT INBOX', /^b /))).to.deep.equal([
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted',
      '* 2 EXISTS',
      '* LIST () "/" "INBOX"',
      '* OK [UIDNEXT 3] Predicted next UID',
      'b OK [READ-WRITE] SELECT completed',
    ]);
    expect(await c.command('c FETCH 1 FLAGS', /^c /)).to.deep.equal(['* 1 FETCH (FLAGS ())', 'c OK FETCH completed']);
    expect(await c.command('d SEARCH ALL', /^d /)).to.deep.equal(['* ESEARCH (TAG "d") ALL 1:2', 'd OK SEARCH completed']);
    expect(await c.command('e UID SEARCH DELETED', /^e /)).to.deep.equal(['* ESEARCH (TAG "e") UID', 'e OK UID SEARCH completed']);
    await h.deliver(message('three'));
    expect(await c.command('f NOOP', /^f /)).to.deep.equal(['* 3 EXISTS', 'f OK NOOP completed']);
  });

  it('after ENABLE IMAP4rev2 takes and gives mailbox names as UTF-8, not modified UTF-7', async () => {
    await c.command('a ENABLE IMAP4rev2', /^a /);
    expect(await c.command('b CREATE "Entwürfe"', /^b /)).to.have.lengthOf(1);
    const listed = (await c.command('c LIST "" "Entw*"', /^c /)).map((l) => Buffer.from(l, 'latin1').toString('utf8'));
    expect(listed).to.deep.equal(['* LIST (\\HasNoChildren) "/" "Entwürfe"', 'c OK LIST completed']);
  });

  it('saves a SEARCH result with RETURN (SAVE) for $ in FETCH, STORE, UID SEARCH and COPY (SEARCHRES, RFC 5182)', async () => {
    await c.command('s SELECT INBOX', /^s /);
    expect(await c.command('a SEARCH RETURN (SAVE) 2', /^a /)).to.deep.equal(['a OK SEARCH completed']);
    expect(await c.command('b FETCH $ (UID)', /^b /)).to.deep.equal(['* 2 FETCH (UID 2)', 'b OK FETCH completed']);
    expect(await c.command('c STORE $ +FLAGS.SILENT (\\Flagged)', /^c /)).to.deep.equal(['c OK STORE completed']);
    expect(await c.command('d UID SEARCH $', /^d /)).to.deep.equal(['* SEARCH 2', 'd OK UID SEARCH completed']);
    expect(await c.command('e SEARCH RETURN (SAVE COUNT) ALL', /^e /)).to.deep.equal(['* ESEARCH (TAG "e") COUNT 2', 'e OK SEARCH completed']);
    expect(await c.command('f UID FETCH $ (UID)', /^f /)).to.deep.equal(['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)', 'f OK UID FETCH completed']);
    expect(await c.command('g SEARCH RETURN (SAVE) NOSUCHKEY', /^g /)).to.deep.equal(['g BAD Unknown search key']);
    expect(await c.command('h FETCH $ (UID)', /^h /), 'a failed SAVE leaves $ empty').to.deep.equal(['h OK FETCH completed']);
    expect(await c.command('i SEARCH RETURN (MIN SAVE) ALL', /^i /)).to.deep.equal(['* ESEARCH (TAG "i") MIN 1', 'i OK SEARCH completed']);
    expect(await c.command('j FETCH $ (UID)', /^j /), 'MIN with SAVE saves only the minimum').to.deep.equal(['* 1 FETCH (UID 1)', 'j OK FETCH completed']);
    await c.command('k SELECT INBOX', /^k /);
    expect(await c.command('l FETCH $ (UID)', /^l /), 'SELECT empties it').to.deep.equal(['l OK FETCH completed']);
  });
});
