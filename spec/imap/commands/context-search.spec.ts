import { expect } from 'chai';
import type { LineClient } from '../../support/line-client.js';
import { message, startImap, type ImapHarness } from '../imap-harness.js';

describe('IMAP CONTEXT=SEARCH and PARTIAL (RFC 5267, RFC 9394)', () => {
  let h: ImapHarness;
  let a: LineClient;
  let b: LineClient;

  beforeEach(async () => {
    h = await startImap();
    for (const n of [1, 2, 3, 4, 5]) await h.deliver(message(`m${n}`));
    a = await h.loginAlice();
    b = await h.loginAlice();
    await a.command('s SELECT INBOX', /^s OK/);
    await b.command('s SELECT INBOX', /^s OK/);
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await h.close();
  });

  it('keeps a SEARCH RETURN (UPDATE) result current with ADDTO and REMOVEFROM until CANCELUPDATE', async () => {
    expect(await a.command('u1 UID SEARCH RETURN (UPDATE ALL) FLAGGED', /^u1 /)).to.deep.equal(['* ESEARCH (TAG "u1") UID', 'u1 OK UID SEARCH completed']);
    expect(await a.command('f STORE 2,4 +FLAGS.SILENT (\\Flagged)', /^f /)).to.deep.equal(['* ESEARCH (TAG "u1") UID ADDTO (0 2,4)', 'f OK STORE completed']);
    // Another session's change arrives with the next command, and so does an expunge.
    await b.command('g STORE 4 +FLAGS.SILENT (\\Deleted)', /^g OK/);
    await b.command('x EXPUNGE', /^x OK/);
    const noop = await a.command('n NOOP', /^n /);
    expect(noop).to.include('* ESEARCH (TAG "u1") UID REMOVEFROM (0 4)');
    expect(noop).to.include('* 4 EXPUNGE');
    expect(await a.command('c CANCELUPDATE "u1"', /^c /)).to.deep.equal(['c OK CANCELUPDATE completed']);
    expect(await a.command('h STORE 1 +FLAGS.SILENT (\\Flagged)', /^h /)).to.deep.equal(['h OK STORE completed']);
    expect((await a.command('d CANCELUPDATE "u1"', /^d /))[0]).to.equal('d BAD No search with that tag');
  });

  it('returns a window of the result with PARTIAL, counting from the end for negative ranges', async () => {
    expect(await a.command('p SEARCH RETURN (PARTIAL 2:3) ALL', /^p /)).to.deep.equal(['* ESEARCH (TAG "p") PARTIAL (2:3 2:3)', 'p OK SEARCH completed']);
    expect(await a.command('q SEARCH RETURN (PARTIAL -1:-2) ALL', /^q /)).to.deep.equal(['* ESEARCH (TAG "q") PARTIAL (-1:-2 4:5)', 'q OK SEARCH completed']);
    expect(await a.command('r SEARCH RETURN (PARTIAL 9:10) ALL', /^r /)).to.deep.equal(['* ESEARCH (TAG "r") PARTIAL (9:10 NIL)', 'r OK SEARCH completed']);
    expect((await a.command('t SEARCH RETURN (PARTIAL 1:-2) ALL', /^t /))[0]).to.equal('t BAD PARTIAL range expected');
  });
});
