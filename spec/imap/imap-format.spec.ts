import { expect } from 'chai';
import {
  atom,
  formatInternalDate,
  literal,
  parseInternalDate,
  serializeImap,
  serializeImapItems,
} from '../../lib/imap/imap-format.js';
import { decodeMailboxName, encodeMailboxName, MailboxNameError } from '../../lib/imap/imap-utf7.js';

describe('imap-format', () => {
  describe('serializeImap', () => {
    it('writes NIL, numbers, atoms, quoted strings with escapes, and nested lists', () => {
      const wire = serializeImap([atom('UID'), 7, null, 'a"b\\c', [atom('\\Seen'), []]]);
      expect(wire.toString()).to.equal('(UID 7 NIL "a\\"b\\\\c" (\\Seen ()))');
    });

    it('sends strings with CR, LF or 8-bit octets as literals for IMAP4rev1 clients', () => {
      expect(serializeImap('x\r\ny').toString()).to.equal('{4}\r\nx\r\ny');
      expect(serializeImap('Grüße').toString()).to.equal('{7}\r\nGrüße');
    });

    it('keeps UTF-8 quoted when the client enabled UTF8=ACCEPT', () => {
      expect(serializeImap('Grüße', { utf8: true }).toString()).to.equal('"Grüße"');
      expect(serializeImap(Buffer.from([0xff]), { utf8: true }).toString('latin1')).to.equal('{1}\r\n\xff');
    });

    it('forces literals and literal8 on request', () => {
      expect(serializeImap(literal('hi')).toString()).to.equal('{2}\r\nhi');
      expect(serializeImap(literal(Buffer.from([0]), true)).toString()).to.equal('~{1}\r\n\0');
    });

    it('writes a bare run of items without parentheses', () => {
      expect(serializeImapItems([atom('SEARCH'), 1, 2]).toString()).to.equal('SEARCH 1 2');
    });

    it('refuses numbers that IMAP cannot carry', () => {
      expect(() => serializeImap(-1)).to.throw(RangeError);
    });
  });

  describe('internal dates', () => {
    it('formats date-time in UTC with a space-padded day', () => {
      expect(formatInternalDate(new Date(Date.UTC(1996, 6, 7, 9, 4, 5)))).to.equal(' 7-Jul-1996 09:04:05 +0000');
    });

    it('parses date-time with a zone offset (RFC 3501 §9)', () => {
      expect(parseInternalDate('17-Jul-1996 02:44:25 -0700')?.toISOString()).to.equal('1996-07-17T09:44:25.000Z');
      expect(parseInternalDate(' 7-Jul-1996 02:44:25 +0000')?.toISOString()).to.equal('1996-07-07T02:44:25.000Z');
      expect(parseInternalDate('17-Foo-1996 02:44:25 -0700')).to.equal(undefined);
      expect(parseInternalDate('17-Jul-1996 25:44:25 -0700')).to.equal(undefined);
    });
  });

  describe('modified UTF-7 mailbox names (RFC 3501 §5.1.3)', () => {
    const pairs: Array<[string, string]> = [
      ['INBOX', 'INBOX'],
      ['Entwürfe', 'Entw&APw-rfe'],
      ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
      ['Tom & Jerry', 'Tom &- Jerry'],
      ['😀', '&2D3eAA-'],
    ];
    for (const [name, encoded] of pairs) {
      it(`encodes ${JSON.stringify(name)} and decodes it back`, () => {
        expect(encodeMailboxName(name)).to.equal(encoded);
        expect(decodeMailboxName(encoded)).to.equal(name);
      });
    }

    it('refuses non-canonical or broken encodings', () => {
      for (const bad of ['&U,BTFw', '&AGE-', '&Jjo!-', '&U,BTFw-&ZeVnLIqe-', 'caf\u00e9', '&2D0-']) {
        expect(() => decodeMailboxName(bad), bad).to.throw(MailboxNameError);
      }
    });
  });
});
