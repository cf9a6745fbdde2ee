import { expect } from 'chai';
import type { LineClient } from '../support/line-client.js';
import { message, startImap, type ImapHarness } from './imap-harness.js';

/** Reads the sequence numbers and UIDs of `* n FETCH (UID u …)` lines. */
function fetched(lines: string[]): Array<[number, number]> {
  return lines.flatMap((l) => {
    const m = /^\* (\d+) FETCH \(.*?UID (\d+)/.exec(l);
    return m ? [[Number(m[1]), Number(m[2])] as [number, number]] : [];
  });
}

describe('IMAP mailboxes and messages', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    for (let i = 1; i <= 6; i++) await h.deliver(message(`message ${i}`, `body ${i}\r\n`));
    c = await h.loginAlice();
  });
  afterEach(async () => {
    await h.close();
  });

  async function selectInbox(client = c): Promise<string[]> {
    return client.command('s SELECT INBOX', /^s /);
  }

  it('SELECT reports FLAGS, EXISTS, RECENT, UIDVALIDITY, UIDNEXT and READ-WRITE; EXAMINE is READ-ONLY', async () => {
    const lines = await selectInbox();
    expect(lines[0]).to.equal('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)');
    expect(lines).to.include.members(['* 6 EXISTS', '* 6 RECENT', '* OK [UNSEEN 1] First unseen message', '* OK [UIDNEXT 7] Predicted next UID']);
    expect(lines.some((l) => /^\* OK \[UIDVALIDITY \d+\]/.test(l))).to.equal(true);
    expect(lines[lines.length - 1]).to.equal('s OK [READ-WRITE] SELECT completed');
    const ex = await c.command('e EXAMINE INBOX', /^e /);
    expect(ex[0]).to.equal('* OK [CLOSED] Previous mailbox closed');
    expect(ex).to.include('* OK [PERMANENTFLAGS ()] Flags permitted');
    expect(ex[ex.length - 1]).to.equal('e OK [READ-ONLY] EXAMINE completed');
    expect(await c.command('f STORE 1 +FLAGS (\\Seen)', /^f /)).to.deep.equal(['f NO [CANNOT] Mailbox is read-only']);
  });

  it('resolves sequence sets 1:*, *:4 and 2,4:6, and refuses numbers beyond the mailbox', async () => {
    await selectInbox();
    expect(fetched(await c.command('a FETCH 1:* UID', /^a /)).map((p) => p[0])).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(fetched(await c.command('b FETCH *:4 UID', /^b /)).map((p) => p[0])).to.deep.equal([4, 5, 6]);
    expect(fetched(await c.command('c FETCH 2,4:6 UID', /^c /)).map((p) => p[0])).to.deep.equal([2, 4, 5, 6]);
    expect(await c.command('d FETCH 7 UID', /^d /)).to.deep.equal(['d BAD Invalid message sequence number']);
  });

  it('resolves UID ranges beyond the highest UID as RFC 3501 §6.4.8 says', async () => {
    await selectInbox();
    expect(fetched(await c.command('a UID FETCH 4:100 FLAGS', /^a /)).map((p) => p[1])).to.deep.equal([4, 5, 6]);
    // `100:*` is `6:100` here: the highest UID still matches.
    expect(fetched(await c.command('b UID FETCH 100:* FLAGS', /^b /)).map((p) => p[1])).to.deep.equal([6]);
    expect(await c.command('c UID FETCH 100 FLAGS', /^c /)).to.deep.equal(['c OK UID FETCH completed']);
  });

  it('gives \\Recent to the first session only', async () => {
    const first = await selectInbox();
    expect(first).to.include('* 6 RECENT');
    expect((await c.command('a FETCH 1 FLAGS', /^a /))[0]).to.equal('* 1 FETCH (FLAGS (\\Recent))');
    const other = await h.loginAlice();
    expect(await selectInbox(other)).to.include('* 0 RECENT');
    expect((await other.command('a FETCH 1 FLAGS', /^a /))[0]).to.equal('* 1 FETCH (FLAGS ())');
    expect(await other.command('b SEARCH RECENT', /^b /)).to.deep.equal(['* SEARCH', 'b OK SEARCH completed']);
  });

  it('leaves \\Recent in place after EXAMINE (RFC 3501 §6.3.2), so a later SELECT still gets it', async () => {
    const examined = await c.command('e EXAMINE INBOX', /^e /);
    expect(examined).to.include('* 6 RECENT');
    const other = await h.loginAlice();
    expect(await selectInbox(other)).to.include('* 6 RECENT');
  });

  it('sets \\Seen on a non-PEEK body fetch and reports FLAGS, but not with BODY.PEEK', async () => {
    await selectInbox();
    const peek = await c.command('a FETCH 1 BODY.PEEK[TEXT]', /^a /);
    expect(peek).to.deep.equal(['* 1 FETCH (BODY[TEXT] {8}', 'body 1', ')', 'a OK FETCH completed']);
    const body = await c.command('b FETCH 1 BODY[TEXT]<0.4>', /^b /);
    expect(body).to.deep.equal(['* 1 FETCH (BODY[TEXT]<0> {4}', 'body FLAGS (\\Seen \\Recent))', 'b OK FETCH completed']);
    expect(await c.command('c FETCH 1 FLAGS', /^c /)).to.deep.equal(['* 1 FETCH (FLAGS (\\Seen \\Recent))', 'c OK FETCH completed']);
    expect(await c.command('d UID SEARCH SEEN', /^d /)).to.deep.equal(['* SEARCH 1', 'd OK UID SEARCH completed']);
  });

  it('stores flags with +FLAGS, -FLAGS, FLAGS and .SILENT', async () => {
    await selectInbox();
    expect(await c.command('a STORE 1:2 +FLAGS (\\Flagged $Work)', /^a /)).to.deep.equal([
      // RFC 3501 §7.2.6: the new keyword is announced before a FETCH shows it.
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted',
      '* 1 FETCH (UID 1 FLAGS (\\Flagged $Work \\Recent))',
      '* 2 FETCH (UID 2 FLAGS (\\Flagged $Work \\Recent))',
      'a OK STORE completed',
    ]);
    expect(await c.command('b UID STORE 2 -FLAGS.SILENT (\\Flagged)', /^b /)).to.deep.equal(['b OK UID STORE completed']);
    expect(await c.command('c STORE 3 FLAGS \\Answered', /^c /)).to.deep.equal(['* 3 FETCH (UID 3 FLAGS (\\Answered \\Recent))', 'c OK STORE completed']);
    expect((await c.command('d STORE 1 +FLAGS (\\Recent)', /^d /))[0]).to.equal('d BAD Invalid system flag');
    expect(await c.command('e SEARCH FLAGGED', /^e /)).to.deep.equal(['* SEARCH 1', 'e OK SEARCH completed']);
  });

  it('searches with CHARSET UTF-8 and refuses an unknown charset', async () => {
    await selectInbox();
    expect(await c.command('a SEARCH CHARSET UTF-8 SUBJECT "message 3"', /^a /)).to.deep.equal(['* SEARCH 3', 'a OK SEARCH completed']);
    expect(await c.command('b UID SEARCH OR BODY "body 2" UID 5:*', /^b /)).to.deep.equal(['* SEARCH 2 5 6', 'b OK UID SEARCH completed']);
    expect(await c.command('c SEARCH CHARSET KOI8-R ALL', /^c /)).to.deep.equal(['c NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset']);
    expect((await c.command('d SEARCH FROBNICATE', /^d /))[0]).to.match(/^d BAD /);
  });

  it('reports EXISTS, flag changes and EXPUNGE from other sessions, holding EXPUNGE back during FETCH', async () => {
    await selectInbox();
    const other = await h.loginAlice();
    await selectInbox(other);
    await other.command('a STORE 1 +FLAGS (\\Deleted)', /^a OK/);
    expect(await other.command('b EXPUNGE', /^b /)).to.deep.equal(['* 1 EXPUNGE', 'b OK EXPUNGE completed']);
    await h.deliver(message('seven'));
    // FETCH uses sequence numbers: no EXPUNGE now, message 1 still answers as UID 1.
    const during = await c.command('c FETCH 1 UID', /^c /);
    expect(during).to.deep.equal(['* 1 FETCH (UID 1)', '* 7 EXISTS', '* 7 RECENT', 'c OK FETCH completed']);
    expect(await c.command('d NOOP', /^d /)).to.deep.equal(['* 1 EXPUNGE', 'd OK NOOP completed']);
    await other.command('e STORE 1 +FLAGS (\\Answered)', /^e OK/);
    expect(await c.command('f NOOP', /^f /)).to.deep.equal(['* 1 FETCH (UID 2 FLAGS (\\Answered \\Recent))', 'f OK NOOP completed']);
  });

  it('is woken from IDLE by a delivery', async () => {
    await selectInbox();
    c.line('a IDLE');
    expect(await c.readLine()).to.equal('+ idling');
    await h.store.deliver('alice@example.com', Buffer.from(message('late')));
    expect(await c.expect(/RECENT$/)).to.deep.equal(['* 7 EXISTS', '* 7 RECENT']);
    expect(await c.command('DONE', /^a /)).to.deep.equal(['a OK IDLE terminated']);
  });

  it('copies with COPYUID, moves with an untagged COPYUID and EXPUNGEs, and asks to TRYCREATE', async () => {
    await c.command('a CREATE Archive', /^a OK/);
    await selectInbox();
    const copy = await c.command('b COPY 2:3 Archive', /^b /);
    expect(copy[0]).to.match(/^b OK \[COPYUID \d+ 2:3 1:2\] COPY completed$/);
    const move = await c.command('c UID MOVE 5,1 Archive', /^c /);
    expect(move[0]).to.match(/^\* OK \[COPYUID \d+ 1,5 3:4\] Moved$/);
    expect(move.slice(1)).to.deep.equal(['* 5 EXPUNGE', '* 1 EXPUNGE', 'c OK UID MOVE completed']);
    expect(await c.command('d COPY 1 Nowhere', /^d /)).to.deep.equal(['d NO [TRYCREATE] Mailbox does not exist']);
    expect(await c.command('e STATUS Archive (MESSAGES UIDNEXT UNSEEN)', /^e /)).to.deep.equal([
      '* STATUS "Archive" (MESSAGES 4 UIDNEXT 5 UNSEEN 4)',
      'e OK STATUS completed',
    ]);
  });

  it('expunges only \\Deleted messages within the set with UID EXPUNGE; CLOSE expunges silently', async () => {
    await selectInbox();
    await c.command('a STORE 1:3 +FLAGS.SILENT (\\Deleted)', /^a OK/);
    expect(await c.command('b UID EXPUNGE 2:4', /^b /)).to.deep.equal(['* 3 EXPUNGE', '* 2 EXPUNGE', 'b OK UID EXPUNGE completed']);
    expect(await c.command('c CLOSE', /^c /)).to.deep.equal(['c OK CLOSE completed']);
    expect(await c.command('d STATUS INBOX (MESSAGES)', /^d /)).to.deep.equal(['* STATUS "INBOX" (MESSAGES 3)', 'd OK STATUS completed']);
    expect(await c.command('e FETCH 1 FLAGS', /^e /)).to.deep.equal(['e BAD No mailbox selected']);
  });

  it('lists, creates, renames, deletes and subscribes mailboxes with RFC 5258 basics', async () => {
    expect(await c.command('a LIST "" ""', /^a /)).to.deep.equal(['* LIST (\\Noselect) "/" ""', 'a OK LIST completed']);
    await c.command('b CREATE Work/Projects/', /^b OK/);
    await c.command('c CREATE "K&AOQ-ln"', /^c OK/);
    expect(await c.command('d LIST "" "*"', /^d /)).to.deep.equal([
      '* LIST (\\HasNoChildren) "/" "INBOX"',
      '* LIST (\\HasNoChildren) "/" "K&AOQ-ln"',
      '* LIST (\\HasChildren) "/" "Work"',
      '* LIST (\\HasNoChildren) "/" "Work/Projects"',
      'd OK LIST completed',
    ]);
    expect(await c.command('e LIST "" "%"', /^e /)).to.have.length(4);
    expect(await c.command('f CREATE Work/Projects', /^f /)).to.deep.equal(['f NO [ALREADYEXISTS] Mailbox already exists']);
    await c.command('g RENAME Work/Projects Work/Done', /^g OK/);
    await c.command('h SUBSCRIBE Work/Done', /^h OK/);
    expect(await c.command('i LSUB "" "*"', /^i /)).to.deep.equal(['* LSUB () "/" "Work/Done"', 'i OK LSUB completed']);
    expect(await c.command('j LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)', /^j /)).to.deep.equal([
      '* LIST (\\HasNoChildren \\Subscribed) "/" "Work/Done"',
      'j OK LIST completed',
    ]);
    await c.command('k DELETE Work/Done', /^k OK/);
    expect(await c.command('l DELETE Work/Done', /^l /)).to.deep.equal(['l NO [NONEXISTENT] Mailbox does not exist']);
    expect(await c.command('m LIST "" Work/*', /^m /)).to.deep.equal(['m OK LIST completed']);
  });
});
