import { expect } from 'chai';
import { parseImaptest } from '../../../bench/refs/imaptest-output.js';

/** Output of imaptest (release-2.3.21) `clients=3 secs=2` against Postern, with two error lines added as it prints them. */
const SAMPLE = [
  'Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo ',
  '100%  50%  50% 100% 100% 100%  50% 100% 100% 100% 100% ',
  '                          30%                  5%      ',
  '   5    2    2    4    0    0    0    0    0    3    3   3/  3',
  'Error: alice[4]: Keyword used without being in FLAGS: $Label3: * 1 FETCH (UID 1 FLAGS (\\Seen $Label3))',
  '   7    3    6    8    9   12    2    4    9   10    9   3/  3',
  ' 315   35   36   39  101  102  154  167  101   84    0 ms/cmd avg',
  '',
  'Totals:',
  'Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo ',
  '100%  50%  50% 100% 100% 100%  50% 100% 100% 100% 100% ',
  '                          30%                  5%      ',
  '  15    5    8   12    9   12    2    4    9   13   15 ',
  'Error: alice[12]: Keyword used without being in FLAGS: $Label1: * 2 FETCH (UID 2 FLAGS ($Label1))',
  'Error: alice[9]: Message UID=5 has \\Recent flag in multiple sessions: 8 and 4: * 3 FETCH (UID 5 FLAGS (\\Recent))',
].join('\n');

describe('bench: reading imaptest stress output', () => {
  it('takes the counters from the Totals block, not from the per-second rows', () => {
    const { totals } = parseImaptest(SAMPLE);
    expect(totals).to.deep.equal({ Logi: 15, List: 5, Stat: 8, Sele: 12, Fetc: 9, Fet2: 12, Stor: 2, Dele: 4, Expu: 9, Appe: 13, Logo: 15 });
  });

  it('groups Error: lines by kind without the client prefix and keeps the first example', () => {
    const { errors } = parseImaptest(SAMPLE);
    expect(errors).to.deep.equal([
      { kind: 'Keyword used without being in FLAGS', count: 2, example: 'Keyword used without being in FLAGS: $Label3: * 1 FETCH (UID 1 FLAGS (\\Seen $Label3))' },
      { kind: 'Message UID=5 has \\Recent flag in multiple sessions', count: 1, example: 'Message UID=5 has \\Recent flag in multiple sessions: 8 and 4: * 3 FETCH (UID 5 FLAGS (\\Recent))' },
    ]);
  });

  it('reports no totals when imaptest never reached its Totals block', () => {
    expect(parseImaptest('Error: connect() failed: Connection refused\n')).to.deep.equal({
      totals: {},
      errors: [{ kind: 'connect() failed', count: 1, example: 'connect() failed: Connection refused' }],
    });
  });
});
