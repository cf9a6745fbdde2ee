import { expect } from 'chai';
import {
  ImapCommandAssembler,
  ImapParseError,
  parseCommandText,
  valueText,
  type AssemblerResult,
  type ImapCommand,
} from '../../lib/imap/imap-parser.js';

function parseError(wire: string): ImapParseError {
  try {
    parseCommandText(wire);
  } catch (err) {
    if (err instanceof ImapParseError) return err;
    throw err;
  }
  throw new Error(`expected a parse error for ${JSON.stringify(wire)}`);
}

function line(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

function complete(result: AssemblerResult): ImapCommand {
  if (result.kind !== 'complete') throw new Error(`expected complete, got ${result.kind}`);
  return result.command;
}

describe('imap-parser', () => {
  describe('tags and command names', () => {
    it('reads the tag, upper-cases the command and keeps no args', () => {
      expect(parseCommandText('a001 noop')).to.deep.equal({ tag: 'a001', command: 'NOOP', args: [] });
    });

    it('joins UID with its subcommand', () => {
      const cmd = parseCommandText('A2 uid fetch 1:* FLAGS');
      expect(cmd.command).to.equal('UID FETCH');
      expect(cmd.args).to.deep.equal([
        { type: 'sequence', value: '1:*' },
        { type: 'atom', value: 'FLAGS' },
      ]);
    });

    it('refuses a tag containing + or * with an untagged error', () => {
      expect(parseError('a+1 NOOP').tag).to.equal(undefined);
      expect(parseError('* NOOP').tag).to.equal(undefined);
    });

    it('refuses an empty line without a tag', () => {
      const err = parseError('');
      expect(err.tag).to.equal(undefined);
      expect(err.reason).to.equal('syntax');
    });

    it('reports the tag when only the command is missing', () => {
      expect(parseError('a1').tag).to.equal('a1');
    });
  });

  describe('values', () => {
    it('classifies atoms, numbers, NIL, sequence sets and flags', () => {
      const cmd = parseCommandText('t STORE 2,4:6 +FLAGS.SILENT (\\Seen $Junk) NIL 42 *');
      expect(cmd.args).to.deep.equal([
        { type: 'sequence', value: '2,4:6' },
        { type: 'atom', value: '+FLAGS.SILENT' },
        { type: 'list', items: [{ type: 'atom', value: '\\Seen' }, { type: 'atom', value: '$Junk' }] },
        { type: 'nil' },
        { type: 'number', value: 42 },
        { type: 'sequence', value: '*' },
      ]);
    });

    it('unescapes quoted strings and accepts UTF-8 in them', () => {
      const cmd = parseCommandText('t LOGIN "a\\"b\\\\c" "pässword"');
      expect(cmd.args).to.deep.equal([
        { type: 'quoted', value: 'a"b\\c' },
        { type: 'quoted', value: 'pässword' },
      ]);
    });

    it('parses nested and empty lists', () => {
      const cmd = parseCommandText('t X (a (b ()) "c") ()');
      expect(cmd.args).to.deep.equal([
        {
          type: 'list',
          items: [
            { type: 'atom', value: 'a' },
            { type: 'list', items: [{ type: 'atom', value: 'b' }, { type: 'list', items: [] }] },
            { type: 'quoted', value: 'c' },
          ],
        },
        { type: 'list', items: [] },
      ]);
    });

    it('allows ] in astrings and list wildcards in atoms', () => {
      const cmd = parseCommandText('t LIST "" foo]%/*');
      expect(valueText(cmd.args[1])).to.equal('foo]%/*');
    });

    it('parses BODY[HEADER.FIELDS (FROM TO)]<0.100> as one section attribute in FETCH', () => {
      const cmd = parseCommandText('t FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> BODY[])');
      expect(cmd.args[1]).to.deep.equal({
        type: 'list',
        items: [
          { type: 'atom', value: 'UID' },
          {
            type: 'section',
            name: 'BODY.PEEK',
            section: [
              { type: 'atom', value: 'HEADER.FIELDS' },
              { type: 'list', items: [{ type: 'atom', value: 'FROM' }, { type: 'atom', value: 'TO' }] },
            ],
            partial: { offset: 0, length: 100 },
          },
          { type: 'section', name: 'BODY', section: [] },
        ],
      });
    });

    it('parses a bare section attribute (UID FETCH x BODY[1.2.MIME])', () => {
      const cmd = parseCommandText('t UID FETCH 5 body[1.2.MIME]');
      expect(cmd.args[1]).to.deep.equal({ type: 'section', name: 'BODY', section: [{ type: 'atom', value: '1.2.MIME' }] });
    });

    it('does not treat [ as a section outside FETCH', () => {
      const cmd = parseCommandText('t SELECT BODY[x');
      expect(cmd.args).to.deep.equal([{ type: 'atom', value: 'BODY[x' }]);
    });
  });

  describe('literals', () => {
    it('asks for a synchronizing literal, then continues on the next line', () => {
      const p = new ImapCommandAssembler();
      const first = p.pushLine(line('a1 LOGIN {3}'));
      expect(first).to.deep.include({ kind: 'literal', size: 3, sync: true, binary: false, tag: 'a1', command: 'LOGIN' });
      expect(p.isInCommand).to.equal(true);
      expect(p.pushLiteral(Buffer.from('bob'))).to.deep.equal({ kind: 'more' });
      const cmd = complete(p.pushLine(line(' "pw"')));
      expect(cmd.args.map(valueText)).to.deep.equal(['bob', 'pw']);
    });

    it('assembles a command from sync and non-sync literals', () => {
      const p = new ImapCommandAssembler();
      const first = p.pushLine(line('a1 LOGIN {3}'));
      expect(first.kind).to.equal('literal');
      p.pushLiteral(Buffer.from('bob'));
      const second = p.pushLine(line(' {2+}'));
      expect(second).to.deep.include({ kind: 'literal', size: 2, sync: false });
      p.pushLiteral(Buffer.from('p\r'));
      const cmd = complete(p.pushLine(line('')));
      expect(cmd.tag).to.equal('a1');
      expect(cmd.args).to.deep.equal([
        { type: 'literal', value: Buffer.from('bob'), sync: true, binary: false },
        { type: 'literal', value: Buffer.from('p\r'), sync: false, binary: false },
      ]);
      expect(p.isInCommand).to.equal(false);
    });

    it('accepts a literal inside a list (APPEND flags then message)', () => {
      const cmd = parseCommandText('a APPEND INBOX (\\Seen) {5}\r\nhello');
      expect(cmd.args[2]).to.deep.equal({ type: 'literal', value: Buffer.from('hello'), sync: true, binary: false });
    });

    it('passes the args read so far with the literal request', () => {
      const p = new ImapCommandAssembler();
      const r = p.pushLine(line('a APPEND "Sent" {10}'));
      if (r.kind !== 'literal') throw new Error(r.kind);
      expect(valueText(r.args[0])).to.equal('Sent');
    });

    it('refuses a literal above the limit before it is read, with its size and mode', () => {
      const p = new ImapCommandAssembler({ maxLiteralSize: 10 });
      const r = p.pushLine(line('a APPEND INBOX {11}'));
      if (r.kind !== 'error') throw new Error(r.kind);
      expect(r.error.reason).to.equal('too-big');
      expect(r.error.tag).to.equal('a');
      expect(r.error.nonSyncLiteral).to.equal(undefined);
      expect(p.isInCommand).to.equal(false);
    });

    it('reports the octets a refused non-sync literal will still send', () => {
      const p = new ImapCommandAssembler();
      const r = p.pushLine(line('a APPEND INBOX {5000+}'));
      if (r.kind !== 'error') throw new Error(r.kind);
      expect(r.error.reason).to.equal('too-big');
      expect(r.error.nonSyncLiteral).to.equal(5000);
    });

    it('reads literal8 ~{n}', () => {
      const cmd = parseCommandText('a APPEND INBOX ~{3}\r\na\0b');
      expect(cmd.args[1]).to.deep.include({ type: 'literal', binary: true });
    });

    it('refuses a literal announcement that is not at the end of the line', () => {
      expect(parseError('a LOGIN {3} x').message).to.equal('Invalid literal');
    });
  });

  describe('errors', () => {
    const cases: Array<[string, string]> = [
      ['a X (a b', 'Unbalanced parentheses'],
      ['a X a)', 'Unbalanced parentheses'],
      ['a X "abc', 'Unterminated quoted string'],
      ['a X "a\\b"', 'Invalid escape in quoted string'],
      ['a X  a', 'Unexpected character'],
      ['a X a ', 'Trailing space'],
      ['a X (a )', 'Unexpected character'],
      ['a X ab\u00e9', '8-bit character in atom'],
      ['a X a"b', 'Unexpected character'],
      ['a FETCH 1 BODY[1]<5>', 'Invalid partial range'],
      ['a FETCH 1 BODY[1]<0.0>', 'Invalid partial range'],
    ];
    for (const [wire, message] of cases) {
      it(`refuses ${JSON.stringify(wire)} with "${message}" and the tag`, () => {
        const err = parseError(wire);
        expect(err.message).to.equal(message);
        expect(err.tag).to.equal('a');
      });
    }

    it('refuses control characters in atoms', () => {
      expect(parseError('a X a\u0001b').message).to.equal('Unexpected character');
    });

    it('bounds nesting depth', () => {
      expect(() => parseCommandText(`a X ${'('.repeat(5)}${')'.repeat(5)}`, { maxDepth: 4 })).to.throw(ImapParseError, /deeply/);
      expect(parseCommandText(`a X ${'('.repeat(4)}${')'.repeat(4)}`, { maxDepth: 4 }).args).to.have.length(1);
    });

    it('bounds the number of values', () => {
      expect(() => parseCommandText('a X 1 2 3 4', { maxArgs: 3 })).to.throw(ImapParseError, /Too many/);
    });

    it('is ready for the next command after an error', () => {
      const p = new ImapCommandAssembler();
      expect(p.pushLine(line('a X (')).kind).to.equal('error');
      expect(complete(p.pushLine(line('b NOOP'))).tag).to.equal('b');
    });
  });
});

describe('imap-parser robustness', () => {
  it('turns arbitrary input into commands or ImapParseErrors, never other exceptions', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = Buffer.from('a1 *:,$()[]<>.{}+~"\\\x00\x01\xc3\xa9%]BODY[HEADER.FIELDS FETCH UID NIL 12');
    for (let i = 0; i < 3000; i++) {
      const p = new ImapCommandAssembler({ maxLiteralSize: 8 });
      const bytes = Buffer.from(Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]));
      const prefix = Buffer.from(rand(2) === 0 ? 't FETCH 1 ' : 't ');
      let result = p.pushLine(Buffer.concat([prefix, bytes]));
      for (let guard = 0; result.kind === 'literal' && guard < 5; guard++) {
        p.pushLiteral(Buffer.alloc(result.size, 0x41));
        result = p.pushLine(Buffer.from(Array.from({ length: rand(10) }, () => alphabet[rand(alphabet.length)])));
      }
      if (result.kind === 'error') expect(result.error).to.be.instanceOf(ImapParseError);
    }
  });
});
