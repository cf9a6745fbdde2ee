import { expect } from 'chai';
import { MailStoreError } from '../../lib/contracts/mail-store.js';
import { MaildropLocks, nextUidValidity } from '../../lib/backends/shared/store-events.js';

// Written against the mutants StrykerJS left alive in store-events.ts (README, "Scores (Stryker").
describe('shared store events: maildrop locks and UIDVALIDITY', () => {
  it('names the user in IN_USE, and a stale release never frees the next holder\'s lock', () => {
    const locks = new MaildropLocks();
    const first = locks.acquire('alice', 'pop3 #1');
    let refused: unknown;
    try {
      locks.acquire('alice', 'pop3 #2');
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(MailStoreError);
    expect([(refused as MailStoreError).code, (refused as MailStoreError).message]).to.deep.equal(['IN_USE', 'maildrop of alice is locked']);
    first();
    const second = locks.acquire('alice', 'pop3 #3');
    first();
    expect(() => locks.acquire('alice', 'pop3 #4')).to.throw(MailStoreError, 'maildrop of alice is locked');
    second();
    locks.acquire('alice', 'pop3 #5')();
  });

  it('hands out a UIDVALIDITY above a floor from disk, and strictly increasing ones after it', () => {
    const floor = nextUidValidity() + 1000; // above anything handed out so far, and above the clock
    const first = nextUidValidity(floor);
    expect(first).to.equal(floor + 1);
    expect(nextUidValidity()).to.equal(floor + 2);
    expect(nextUidValidity(5)).to.equal(floor + 3);
  });
});
