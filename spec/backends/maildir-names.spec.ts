import { expect } from 'chai';
import { hostname } from 'node:os';
import {
  flagsOfLetters,
  folderDirName,
  INFO_SEPARATOR,
  lettersOfFlags,
  mailboxOfDirName,
  parseFileName,
  saveDateOfBaseName,
  uniqueBaseName,
  userDirName,
} from '../../lib/backends/maildir/maildir-names.js';

// Written against the mutants StrykerJS left alive in maildir-names.ts (README, "Scores (Stryker").
describe('Maildir names: folders, user directories, info letters, unique names', () => {
  it('maps mailbox names to Maildir++ folder directories and back, dots and non-ASCII encoded', () => {
    expect(folderDirName('INBOX')).to.equal('');
    expect(folderDirName('Work/2024')).to.equal('.Work.2024');
    expect(folderDirName('a.b')).to.equal('.a&AC4-b');
    expect(folderDirName('Entwürfe')).to.equal('.Entw&APw-rfe');
    expect(mailboxOfDirName('.Work.2024')).to.equal('Work/2024');
    expect(mailboxOfDirName('.a&AC4-b')).to.equal('a.b');
    expect(mailboxOfDirName('.Entw&APw-rfe')).to.equal('Entwürfe');
    for (const notFolder of ['cur', '.', '..', '.a..b', '.a.', '..a']) expect(mailboxOfDirName(notFolder), notFolder).to.equal(undefined);
  });

  it('escapes a username into one safe directory name', () => {
    expect(userDirName('alice@example.org')).to.equal('alice@example.org');
    expect(userDirName('A_b+c-d.e')).to.equal('A_b+c-d.e');
    expect(userDirName('../etc/passwd')).to.equal('%2E.%2Fetc%2Fpasswd');
    expect(userDirName('.hidden')).to.equal('%2Ehidden');
    expect(userDirName('a b\n')).to.equal('a%20b%0A');
    expect(userDirName('jörg')).to.equal('j%C3%B6rg');
  });

  it('splits file names at :2, and maps info letters to flags and back, keeping letters it does not interpret', () => {
    expect(INFO_SEPARATOR).to.equal(':2,');
    expect(parseFileName('123.M4P5.host,S=9:2,FS')).to.deep.equal({ base: '123.M4P5.host,S=9', letters: 'FS' });
    expect(parseFileName('123.M4P5.host,S=9:2,')).to.deep.equal({ base: '123.M4P5.host,S=9', letters: '' });
    expect(parseFileName('123.M4P5.host')).to.deep.equal({ base: '123.M4P5.host', letters: '' });
    expect(parseFileName(':2,S')).to.deep.equal({ base: '', letters: 'S' });
    expect(flagsOfLetters('DFPRSTa')).to.deep.equal(['\\Draft', '\\Flagged', '\\Answered', '\\Seen', '\\Deleted']);
    expect(lettersOfFlags(['\\Seen', '\\Deleted', '\\Answered', '\\Flagged', '\\Draft', 'keyword'])).to.equal('DFRST');
    expect(lettersOfFlags(['\\Seen'], 'PaFS')).to.equal('PSa');
    expect(lettersOfFlags([])).to.equal('');
  });

  it('makes unique base names <sec>.M<usec>P<pid>Q<n>R<rand>.<host>,S=<size> whose time is the save date', () => {
    const now = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
    const first = uniqueBaseName(42, now);
    const second = uniqueBaseName(42, now);
    const pattern = new RegExp(`^${now / 1000 - 0.678}\\.M678000P${process.pid}Q(\\d+)R[0-9a-f]{8}\\.${host.replace(/[\\.]/g, '\\$&')},S=42$`);
    expect(first).to.match(pattern);
    expect(Number(pattern.exec(second)![1])).to.equal(Number(pattern.exec(first)![1]) + 1);
    expect(saveDateOfBaseName(first)!.getTime()).to.equal(now);
    expect(saveDateOfBaseName('1700000000.other.host')!.getTime()).to.equal(1_700_000_000_000);
    expect(saveDateOfBaseName('1700000000.M999999P1.host')!.getTime()).to.equal(1_700_000_000_999);
    expect(saveDateOfBaseName('no-time.host')).to.equal(undefined);
    // Only a time at the start of the name counts.
    expect(saveDateOfBaseName('x1700000000.M999999P1.host')).to.equal(undefined);
  });
});
