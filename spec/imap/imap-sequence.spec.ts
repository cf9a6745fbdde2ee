import { expect } from 'chai';
import {
  exceedsMessageCount,
  formatSequenceSet,
  parseSequenceSet,
  resolveSequenceNumbers,
  resolveUidSet,
  sequenceSetContains,
  SequenceSetError,
} from '../../lib/imap/imap-sequence.js';

describe('imap-sequence', () => {
  it('parses numbers, ranges, * and lists', () => {
    expect(parseSequenceSet('2,4:6,*:4,*').ranges).to.deep.equal([
      { start: 2, end: 2 },
      { start: 4, end: 6 },
      { start: '*', end: 4 },
      { start: '*', end: '*' },
    ]);
  });

  it('accepts $ only where SEARCHRES allows it', () => {
    expect(parseSequenceSet('$', { allowSearchResult: true })).to.deep.equal({ ranges: [], searchResult: true });
    expect(() => parseSequenceSet('$')).to.throw(SequenceSetError);
    expect(() => parseSequenceSet('1,$', { allowSearchResult: true })).to.throw(SequenceSetError);
  });

  it('refuses zero, empty elements, triple ranges and numbers beyond 32 bits', () => {
    for (const bad of ['0', '1:0', '', '1,', ',1', '1:2:3', '4294967296', '01', 'a']) {
      expect(() => parseSequenceSet(bad), bad).to.throw(SequenceSetError);
    }
    expect(parseSequenceSet('4294967295').ranges[0].start).to.equal(4294967295);
  });

  describe('sequence numbers', () => {
    it('resolves 1:* and unordered ranges (4:2 = 2:4), de-duplicated and sorted', () => {
      expect(resolveSequenceNumbers(parseSequenceSet('1:*'), 3)).to.deep.equal([1, 2, 3]);
      expect(resolveSequenceNumbers(parseSequenceSet('4:2,3,*'), 5)).to.deep.equal([2, 3, 4, 5]);
      expect(resolveSequenceNumbers(parseSequenceSet('*:4'), 5)).to.deep.equal([4, 5]);
    });

    it('flags numbers beyond the mailbox, and * in an empty mailbox, for a BAD reply (RFC 9051 §9)', () => {
      expect(exceedsMessageCount(parseSequenceSet('1:5'), 4)).to.equal(true);
      expect(exceedsMessageCount(parseSequenceSet('1:4'), 4)).to.equal(false);
      expect(exceedsMessageCount(parseSequenceSet('*'), 0)).to.equal(true);
      expect(exceedsMessageCount(parseSequenceSet('1:*'), 2)).to.equal(false);
      expect(resolveSequenceNumbers(parseSequenceSet('*'), 0)).to.deep.equal([]);
    });
  });

  describe('UIDs', () => {
    const uids = [3, 10, 11, 12, 50];

    it('matches the highest UID for n:* when n is above it (RFC 3501 §6.4.8)', () => {
      expect(resolveUidSet(parseSequenceSet('100:*'), uids)).to.deep.equal([5]);
      expect(resolveUidSet(parseSequenceSet('51:*'), uids)).to.deep.equal([5]);
    });

    it('returns sequence numbers of existing UIDs only', () => {
      expect(resolveUidSet(parseSequenceSet('1:11'), uids)).to.deep.equal([1, 2, 3]);
      expect(resolveUidSet(parseSequenceSet('12:10,4:9'), uids)).to.deep.equal([2, 3, 4]);
      expect(resolveUidSet(parseSequenceSet('60'), uids)).to.deep.equal([]);
      expect(resolveUidSet(parseSequenceSet('*'), [])).to.deep.equal([]);
    });

    it('tests membership with * standing for the largest value', () => {
      const set = parseSequenceSet('5:*');
      expect(sequenceSetContains(set, 50, 50)).to.equal(true);
      expect(sequenceSetContains(set, 4, 50)).to.equal(false);
      expect(sequenceSetContains(parseSequenceSet('100:*'), 50, 50)).to.equal(true);
    });
  });

  describe('formatSequenceSet', () => {
    it('compresses sorted, unique numbers', () => {
      expect(formatSequenceSet([5, 1, 2, 3, 3, 9, 8])).to.equal('1:3,5,8:9');
      expect(formatSequenceSet([])).to.equal('');
    });

    it('keeps the given order for COPYUID pairs', () => {
      expect(formatSequenceSet([7, 8, 9, 2, 3], { keepOrder: true })).to.equal('7:9,2:3');
    });
  });
});
