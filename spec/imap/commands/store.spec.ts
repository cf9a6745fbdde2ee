import { expect } from 'chai';
import type { LineClient } from '../../support/line-client.js';
import { message, startImap, type ImapHarness } from '../imap-harness.js';

describe('IMAP STORE', () => {
  let h: ImapHarness;
  let a: LineClient;
  let b: LineClient;

  beforeEach(async () => {
    h = await startImap();
    for (let i = 1; i <= 2; i++) await h.deliver(message(`message ${i}`));
    a = await h.loginAlice();
    b = await h.loginAlice();
    await a.command('s SELECT INBOX', /^s OK/);
    await b.command('s SELECT INBOX', /^s OK/);
  });
  afterEach(async () => {
    await h.close();
  });

  it('still reports a flag another session set when .SILENT hides our own change (RFC 3501 §6.4.6, §7.4.2)', async () => {
    await b.command('b STORE 1 +FLAGS.SILENT (\\Answered)', /^b OK/);
    const lines = await a.command('a STORE 1 +FLAGS.SILENT (\\Seen)', /^a /);
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^\* 1 FETCH \(UID 1 FLAGS \(.*\)\)$/);
    expect(lines[0]).to.contain('\\Answered').and.to.contain('\\Seen');
    expect(lines[1]).to.equal('a OK STORE completed');
  });

  it('sends nothing for a .SILENT change nobody else touched', async () => {
    expect(await a.command('a STORE 1:2 +FLAGS.SILENT (\\Seen)', /^a /)).to.deep.equal(['a OK STORE completed']);
    expect(await a.command('c UID STORE 1 -FLAGS.SILENT (\\Seen)', /^c /)).to.deep.equal(['c OK UID STORE completed']);
  });
});
