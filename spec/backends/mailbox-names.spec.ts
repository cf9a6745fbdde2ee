import { expect } from 'chai';
import { MailStoreError } from '../../lib/contracts/mail-store.js';
import { compareMailboxNames, normalizeMailboxName, renamePlan } from '../../lib/backends/shared/mailbox-names.js';

/** [code, message] of the MailStoreError `run` throws. */
function refusal(run: () => unknown): [string, string] {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(MailStoreError);
    return [(err as MailStoreError).code, (err as MailStoreError).message];
  }
  expect.fail('expected a MailStoreError');
}

// Written against the mutants StrykerJS left alive in mailbox-names.ts (README, "Scores (Stryker").
describe('shared mailbox names: the rules every store applies', () => {
  it('refuses an empty name and empty levels with CANNOT', () => {
    for (const name of ['', 'a//b', '/a', 'a/', '/']) {
      expect(refusal(() => normalizeMailboxName(name)), name).to.deep.equal(['CANNOT', 'invalid mailbox name']);
    }
  });

  it('refuses control characters and the LIST wildcards with CANNOT, and keeps other text as given', () => {
    for (const name of ['a\u0000b', 'tab\there', 'new\nline', 'del\u007f', 'star*', 'per%cent', 'x/\u001f']) {
      expect(refusal(() => normalizeMailboxName(name)), JSON.stringify(name)).to.deep.equal(['CANNOT', 'invalid character in mailbox name']);
    }
    expect(normalizeMailboxName('inbox/Sub')).to.equal('INBOX/Sub');
    expect(normalizeMailboxName('Ünïcödé & co.')).to.equal('Ünïcödé & co.');
  });

  it('orders LIST names INBOX first, then by code point, and an equal pair as equal', () => {
    expect(compareMailboxNames('x', 'x')).to.equal(0);
    expect(compareMailboxNames('INBOX', 'INBOX')).to.equal(0);
    expect(compareMailboxNames('INBOX', 'A')).to.equal(-1);
    expect(compareMailboxNames('A', 'INBOX')).to.equal(1);
    expect(compareMailboxNames('a', 'b')).to.equal(-1);
    expect(compareMailboxNames('b', 'a')).to.equal(1);
    expect(['b', 'INBOX', 'B', 'a'].sort(compareMailboxNames)).to.deep.equal(['INBOX', 'B', 'a', 'b']);
  });

  it('plans a RENAME parents first, and refuses the same name, a name below itself and a taken name', () => {
    expect(renamePlan(['a/b/c', 'z9', 'a', 'a/b', 'ab'], 'a', 'z')).to.deep.equal([
      ['a', 'z'],
      ['a/b', 'z/b'],
      ['a/b/c', 'z/b/c'],
    ]);
    expect(refusal(() => renamePlan([], 'a', 'a'))).to.deep.equal(['ALREADY_EXISTS', 'target mailbox exists']);
    expect(refusal(() => renamePlan(['a'], 'a', 'a/b'))).to.deep.equal(['CANNOT', 'cannot rename a mailbox below itself']);
    expect(refusal(() => renamePlan(['a', 'a/b', 'z/b'], 'a', 'z'))).to.deep.equal(['ALREADY_EXISTS', 'target mailbox exists']);
    // INBOX's inferiors stay (RFC 3501 §6.3.5).
    expect(renamePlan(['INBOX', 'INBOX/x'], 'INBOX', 'Old')).to.deep.equal([['INBOX', 'Old']]);
  });
});
