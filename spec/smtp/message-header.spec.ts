import { expect } from 'chai';
import { findHeaderEnd, MessageHeader } from '../../lib/smtp/message-header.js';

const parse = (text: string): MessageHeader => {
  const data = Buffer.from(text, 'latin1');
  const split = findHeaderEnd(data, true)!;
  return MessageHeader.parse(data.subarray(0, split.bodyStart), split);
};

describe('smtp: MessageHeader', () => {
  describe('findHeaderEnd', () => {
    const find = (text: string, final = false) => findHeaderEnd(Buffer.from(text, 'latin1'), final);

    it('ends at the empty line, CRLF or bare LF', () => {
      expect(find('A: 1\r\nB: 2\r\n\r\nbody')).to.deep.equal({ fieldsEnd: 12, bodyStart: 14 });
      expect(find('A: 1\n\nbody')).to.deep.equal({ fieldsEnd: 5, bodyStart: 6 });
    });

    it('waits for more data until a line decides, unless the message is complete', () => {
      expect(find('A: 1\r\nB: 2')).to.equal(undefined);
      expect(find('A: 1\r\n')).to.equal(undefined);
      expect(find('A: 1\r\nB: 2', true)).to.deep.equal({ fieldsEnd: 10, bodyStart: 10 });
    });

    it('a line that is neither a field nor a continuation starts the body, with no separator', () => {
      expect(find('A: 1\r\nnot a field\r\n')).to.deep.equal({ fieldsEnd: 6, bodyStart: 6 });
      expect(find(' leading blank\r\n')).to.deep.equal({ fieldsEnd: 0, bodyStart: 0 });
    });

    it('folded lines belong to their field; blanks before the colon are read (RFC 5322 §4.5)', () => {
      expect(find('A: 1\r\n  more\r\nB : 2\r\n\r\n')).to.deep.equal({ fieldsEnd: 21, bodyStart: 23 });
    });
  });

  it('reads unfolded values case-insensitively, all occurrences in order', () => {
    const h = parse('Received: from a\r\n\tby b\r\nSUBJECT:  hi there \r\nsubject: two\r\n\r\n');
    expect(h.get('received')).to.equal('from a\tby b');
    expect(h.get('Subject')).to.equal('hi there');
    expect(h.getAll('subject')).to.deep.equal(['hi there', 'two']);
    expect(h.has('X-None')).to.equal(false);
    expect(h.fields.map((f) => f.name)).to.deep.equal(['Received', 'SUBJECT', 'subject']);
  });

  it('writes untouched fields byte for byte, edits where asked, keeps the separator', () => {
    const text = 'A:x\r\nB:  y \r\n c\r\nA: z\r\n\r\n';
    expect(parse(text).toBuffer().toString('latin1')).to.equal(text);
    const h = parse(text);
    h.set('a', 'new').prepend('T', 'top').add('E', 'end');
    expect(h.remove('b')).to.equal(1);
    expect(h.toBuffer().toString('latin1')).to.equal('T: top\r\na: new\r\nE: end\r\n\r\n');
  });

  it('a message without a separator stays without one; UTF-8 values are written as UTF-8', () => {
    const h = parse('A: 1');
    expect(h.hasSeparator).to.equal(false);
    h.add('X-Note', 'café');
    // The last line had no line break: a field added after it gets one in between.
    expect(h.toBuffer().toString('utf8')).to.equal('A: 1\r\nX-Note: café\r\n');
  });

  it('refuses names and values that would inject fields or break the line limit', () => {
    const h = parse('A: 1\r\n\r\n');
    expect(() => h.add('Bad Name', 'x')).to.throw(TypeError, /invalid header field name/);
    expect(() => h.add('X', 'a\r\nInjected: yes')).to.throw(TypeError, /NUL, CR or LF/);
    expect(() => h.add('X', 'a\nb')).to.throw(TypeError);
    expect(() => h.add('X', 'a\rb')).to.throw(TypeError);
    expect(() => h.add('X', 'a\0b')).to.throw(TypeError);
    expect(() => h.add('X', 'v'.repeat(996))).to.throw(RangeError, /998/);
    h.add('X', 'v'.repeat(995)).add('F', 'folded\r\n\tok');
    expect(h.getAll('F')).to.deep.equal(['folded\tok']);
  });

  it('is final once written: edits then throw', () => {
    const h = parse('A: 1\r\n\r\n');
    h.freeze();
    expect(h.isFinal).to.equal(true);
    expect(() => h.set('A', '2')).to.throw(TypeError, /already written/);
  });
});
