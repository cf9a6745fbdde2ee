import { expect } from 'chai';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import { parseSearch, parseSearchDate, SearchError, type SearchProgram } from '../../lib/imap/imap-search.js';
import { matchesSearch, type SearchCandidate, type SearchContext } from '../../lib/imap/imap-search-match.js';
import { ALTERNATIVE, crlf, FORWARD, NESTED, SIMPLE } from './imap-messages.js';

interface Fixture {
  raw: Buffer;
  flags: string[];
  recent?: boolean;
  date: string;
}

/** uid = seq * 10; internal dates in UTC. */
const MAILBOX: Fixture[] = [
  { raw: SIMPLE, flags: ['\\Seen', '\\Answered'], date: '2024-01-10T23:30:00Z' },
  { raw: ALTERNATIVE, flags: ['$Work'], recent: true, date: '2024-01-11T00:10:00Z' },
  { raw: NESTED, flags: ['\\Flagged', '\\Seen'], recent: true, date: '2024-02-01T12:00:00Z' },
  { raw: FORWARD, flags: ['\\Deleted', '\\Draft'], date: '2024-03-05T08:00:00Z' },
];

function candidates(loads: number[] = []): SearchCandidate[] {
  return MAILBOX.map((m, i) => ({
    seq: i + 1,
    uid: (i + 1) * 10,
    flags: new Set(m.flags),
    recent: m.recent === true,
    internalDate: new Date(m.date),
    size: m.raw.length,
    raw: () => {
      loads.push(i + 1);
      return Promise.resolve(m.raw);
    },
  }));
}

const CONTEXT: SearchContext = { messageCount: 4, maxUid: 40, savedUids: new Set([20, 40]) };

function program(keys: string): SearchProgram {
  return parseSearch(parseCommandText(`t SEARCH ${keys}`).args);
}

async function search(keys: string, loads?: number[]): Promise<number[]> {
  const p = program(keys);
  const out: number[] = [];
  for (const c of candidates(loads)) if (await matchesSearch(p.key, c, CONTEXT)) out.push(c.seq);
  return out;
}

function searchError(keys: string): SearchError {
  try {
    program(keys);
  } catch (err) {
    if (err instanceof SearchError) return err;
    throw err;
  }
  throw new Error(`expected a SearchError for ${keys}`);
}

describe('imap-search', () => {
  describe('flags, sizes, sets and logic', () => {
    const cases: Array<[string, number[]]> = [
      ['ALL', [1, 2, 3, 4]],
      ['SEEN', [1, 3]],
      ['UNSEEN', [2, 4]],
      ['ANSWERED', [1]],
      ['UNANSWERED', [2, 3, 4]],
      ['DELETED', [4]],
      ['UNDELETED', [1, 2, 3]],
      ['DRAFT', [4]],
      ['UNDRAFT', [1, 2, 3]],
      ['FLAGGED', [3]],
      ['UNFLAGGED', [1, 2, 4]],
      ['KEYWORD $work', [2]],
      ['UNKEYWORD $Work', [1, 3, 4]],
      ['RECENT', [2, 3]],
      ['NEW', [2]],
      ['OLD', [1, 4]],
      [`LARGER ${SIMPLE.length}`, [2, 3, 4]],
      [`SMALLER ${SIMPLE.length + 1}`, [1]],
      ['2:3', [2, 3]],
      ['3:*', [3, 4]],
      ['*', [4]],
      ['UID 20,35:100', [2, 4]],
      ['UID 100:*', [4]],
      ['$', [2, 4]],
      ['NOT SEEN', [2, 4]],
      ['OR FLAGGED DELETED', [3, 4]],
      ['(SEEN FLAGGED)', [3]],
      ['SEEN NOT (FLAGGED) 1:3', [1]],
      ['OR (SEEN ANSWERED) NOT OR RECENT DELETED', [1]],
    ];
    for (const [keys, expected] of cases) {
      it(`${keys} → ${expected.join(',')}`, async () => {
        expect(await search(keys)).to.deep.equal(expected);
      });
    }

    it('does not load message content for flag, size and set keys', async () => {
      const loads: number[] = [];
      await search('OR SEEN LARGER 10 UID 1:* NOT RECENT', loads);
      expect(loads).to.deep.equal([]);
    });
  });

  describe('dates', () => {
    it('compares internal dates by UTC day (BEFORE, ON, SINCE)', async () => {
      expect(await search('ON 11-Jan-2024')).to.deep.equal([2]);
      expect(await search('BEFORE 11-Jan-2024')).to.deep.equal([1]);
      expect(await search('SINCE 1-Feb-2024')).to.deep.equal([3, 4]);
      expect(await search('SINCE "1-Feb-2024" BEFORE 2-Feb-2024')).to.deep.equal([3]);
    });

    it('compares the Date: header day as written, ignoring its zone (SENTON/SENTBEFORE/SENTSINCE)', async () => {
      expect(await search('SENTON 7-Feb-1994')).to.deep.equal([1]);
      expect(await search('SENTBEFORE 8-Feb-1994')).to.deep.equal([1]);
      expect(await search('SENTSINCE 8-Feb-1994')).to.deep.equal([]);
    });

    it('parses RFC 3501 dates', () => {
      expect(parseSearchDate('1-Feb-1994')).to.equal('1994-02-01');
      expect(parseSearchDate('31-dec-2023')).to.equal('2023-12-31');
      expect(parseSearchDate('1994-02-01')).to.equal(undefined);
    });
  });

  describe('strings', () => {
    it('matches decoded RFC 2047 headers case-insensitively', async () => {
      expect(await search('SUBJECT "grüsse"')).to.deep.equal([]);
      expect(await search('SUBJECT "GRÜßE"')).to.deep.equal([2]);
      expect(await search('FROM "jürgen"')).to.deep.equal([2]);
      expect(await search('FROM example.com')).to.deep.equal([1, 3, 4]);
      expect(await search('TO jane')).to.deep.equal([2]);
      expect(await search('CC anyone')).to.deep.equal([]);
    });

    it('matches HEADER by field name, and an empty string matches any message with that field', async () => {
      expect(await search('HEADER Message-ID "<1@"')).to.deep.equal([1]);
      expect(await search('HEADER MIME-Version ""')).to.deep.equal([2, 3, 4]);
    });

    it('matches BODY on decoded text parts (quoted-printable UTF-8) but not on headers', async () => {
      expect(await search('BODY "köln"')).to.deep.equal([2]);
      expect(await search('BODY bob')).to.deep.equal([1]);
      expect(await search('BODY Subject')).to.deep.equal([4]);
      expect(await search('BODY {5}\r\nINNER')).to.deep.equal([4]);
    });

    it('matches TEXT on headers and body', async () => {
      expect(await search('TEXT nested')).to.deep.equal([3]);
      expect(await search('TEXT HTML')).to.deep.equal([3]);
      expect(await search('TEXT hello')).to.deep.equal([1]);
    });

    it('decodes base64 bodies in other charsets', async () => {
      const raw = crlf(
        'Content-Type: text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('Caf\xe9 cr\xe8me', 'latin1').toString('base64'),
      );
      const c: SearchCandidate = {
        seq: 1, uid: 1, flags: new Set(), recent: false, internalDate: new Date(), size: raw.length,
        raw: () => Promise.resolve(raw),
      };
      expect(await matchesSearch(program('BODY "CAFÉ CRÈME"').key, c, CONTEXT)).to.equal(true);
    });
  });

  describe('parsing', () => {
    it('accepts CHARSET UTF-8 and US-ASCII', () => {
      expect(program('CHARSET utf-8 ALL').charset).to.equal('UTF-8');
      expect(program('CHARSET "US-ASCII" ALL').charset).to.equal('US-ASCII');
    });

    it('refuses other charsets with BADCHARSET', () => {
      expect(searchError('CHARSET ISO-2022-JP ALL').code).to.equal('BADCHARSET');
    });

    it('refuses malformed programs with BAD', () => {
      for (const bad of ['', 'FOO', 'FROM', 'LARGER x', 'BEFORE 2024-01-01', 'OR SEEN', 'NOT', '()', 'UID x', '0:3']) {
        const err = searchError(bad === '' ? 'CHARSET UTF-8' : bad);
        expect(err.code, bad).to.equal(undefined);
      }
    });
  });
});
