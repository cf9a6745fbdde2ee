import { expect } from 'chai';
import {
  buildFetchItems,
  FetchAttributeError,
  parseFetchAttributes,
  type FetchRequest,
} from '../../lib/imap/imap-fetch.js';
import { serializeImap } from '../../lib/imap/imap-format.js';
import { parseCommandText } from '../../lib/imap/imap-parser.js';
import type { StoredMessage } from '../../lib/contracts/mail-store.js';
import { ALTERNATIVE, crlf, FORWARD, NESTED, SIMPLE, stored } from './imap-messages.js';

/** Parses the attribute part of `FETCH 1 <atts>` the way the session will. */
function request(atts: string, uid = false): FetchRequest {
  const cmd = parseCommandText(`t ${uid ? 'UID ' : ''}FETCH 1 ${atts}`);
  return parseFetchAttributes(cmd.args[1], { uid });
}

async function fetch(raw: Buffer, atts: string, options: { uid?: number; flags?: string[] } = {}): Promise<string> {
  const items = await buildFetchItems(stored(raw, options.uid ?? 1, options.flags ?? []), request(atts));
  return serializeImap(items).toString('utf8');
}

const CAROL = '(("Carol" NIL "carol" "example.org"))';
const TEXT_7BIT = '"text" "plain" ("charset" "us-ascii") NIL NIL "7bit"';

describe('imap-fetch', () => {
  describe('parseFetchAttributes', () => {
    it('expands the ALL, FAST and FULL macros', () => {
      expect(request('ALL').attributes.map((a) => a.kind === 'simple' && a.name)).to.deep.equal([
        'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE',
      ]);
      expect(request('FAST').attributes).to.have.length(3);
      expect(request('full').attributes).to.have.length(5);
    });

    it('adds UID first for UID FETCH', () => {
      const req = request('FLAGS', true);
      expect(req.attributes[0]).to.deep.equal({ kind: 'simple', name: 'UID' });
      expect(req.needsContent).to.equal(false);
    });

    it('knows which attributes set \\Seen (RFC 3501 §6.4.5)', () => {
      expect(request('BODY.PEEK[]').setsSeen).to.equal(false);
      expect(request('(BODY[TEXT])').setsSeen).to.equal(true);
      expect(request('RFC822').setsSeen).to.equal(true);
      expect(request('RFC822.HEADER').setsSeen).to.equal(false);
      expect(request('BINARY[1]').setsSeen).to.equal(true);
      expect(request('BINARY.SIZE[1]').setsSeen).to.equal(false);
    });

    it('normalizes sections with part paths and header lists', () => {
      expect(request('BODY.PEEK[1.2.header.fields (from "To")]<5.10>').attributes[0]).to.deep.equal({
        kind: 'section',
        name: 'BODY',
        peek: true,
        path: [1, 2],
        specifier: 'HEADER.FIELDS',
        fields: ['FROM', 'TO'],
        partial: { offset: 5, length: 10 },
      });
    });

    it('refuses macros inside lists, unknown names and malformed sections', () => {
      for (const bad of ['(ALL)', 'FOO', 'BODY[0]', 'BODY[1.]', 'BODY[MIME]', 'BODY[HEADER.FIELDS]', 'BODY[TEXT (A)]', 'BINARY[HEADER]', '()']) {
        expect(() => request(bad), bad).to.throw(FetchAttributeError);
      }
    });
  });

  describe('a simple text message', () => {
    it('answers BODYSTRUCTURE and BODY with size and line count', async () => {
      expect(await fetch(SIMPLE, 'BODYSTRUCTURE')).to.equal(`(BODYSTRUCTURE (${TEXT_7BIT} 14 2 NIL NIL NIL NIL))`);
      expect(await fetch(SIMPLE, 'BODY')).to.equal(`(BODY (${TEXT_7BIT} 14 2))`);
    });

    it('answers ENVELOPE, defaulting Sender and Reply-To to From', async () => {
      const alice = '(("Alice" NIL "alice" "example.com"))';
      expect(await fetch(SIMPLE, 'ENVELOPE')).to.equal(
        `(ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Hello" ${alice} ${alice} ${alice} ((NIL NIL "bob" "example.com")) NIL NIL NIL "<1@example.com>"))`,
      );
    });

    it('answers UID, FLAGS, RFC822.SIZE, INTERNALDATE and a partial header-fields section', async () => {
      const out = await fetch(SIMPLE, '(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM)]<0.10>)', {
        uid: 7,
        flags: ['\\Seen', '$Work'],
      });
      expect(out).to.equal(
        `(UID 7 FLAGS (\\Seen $Work) RFC822.SIZE ${SIMPLE.length} INTERNALDATE "15-Jan-2024 10:00:00 +0000" BODY[HEADER.FIELDS (FROM)]<0> {10}\r\nFrom: Alic)`,
      );
    });

    it('extracts HEADER.FIELDS and HEADER.FIELDS.NOT with the closing blank line', async () => {
      expect(await fetch(SIMPLE, 'BODY.PEEK[HEADER.FIELDS (FROM TO)]')).to.equal(
        '(BODY[HEADER.FIELDS (FROM TO)] {56}\r\nFrom: Alice <alice@example.com>\r\nTo: bob@example.com\r\n\r\n)',
      );
      expect(await fetch(SIMPLE, 'BODY.PEEK[HEADER.FIELDS.NOT (FROM TO DATE MESSAGE-ID)]')).to.equal(
        '(BODY[HEADER.FIELDS.NOT (FROM TO DATE MESSAGE-ID)] {18}\r\nSubject: Hello\r\n\r\n)',
      );
      expect(await fetch(SIMPLE, 'BODY.PEEK[HEADER.FIELDS (X-NONE)]')).to.equal('(BODY[HEADER.FIELDS (X-NONE)] {2}\r\n\r\n)');
    });

    it('treats part 1 of a single-part message as its body, and RFC822.* as whole/header/text', async () => {
      expect(await fetch(SIMPLE, 'BODY[1]')).to.equal('(BODY[1] {14}\r\nHi Bob,\r\nbye\r\n)');
      expect(await fetch(SIMPLE, 'BODY[TEXT]')).to.equal('(BODY[TEXT] {14}\r\nHi Bob,\r\nbye\r\n)');
      expect(await fetch(SIMPLE, 'BODY[]')).to.equal(`(BODY[] {${SIMPLE.length}}\r\n${SIMPLE.toString()})`);
      expect(await fetch(SIMPLE, 'RFC822.TEXT')).to.equal('(RFC822.TEXT {14}\r\nHi Bob,\r\nbye\r\n)');
      const header = SIMPLE.subarray(0, SIMPLE.length - 14).toString();
      expect(await fetch(SIMPLE, 'RFC822.HEADER')).to.equal(`(RFC822.HEADER {${header.length}}\r\n${header})`);
      expect(await fetch(SIMPLE, 'BODY[2]')).to.equal('(BODY[2] NIL)');
    });

    it('names partial responses by origin and clips them to the data', async () => {
      expect(await fetch(SIMPLE, 'BODY[TEXT]<4.100>')).to.equal('(BODY[TEXT]<4> {10}\r\nob,\r\nbye\r\n)');
      expect(await fetch(SIMPLE, 'BODY[TEXT]<100.5>')).to.equal('(BODY[TEXT]<100> "")');
    });

    it('adds FLAGS when asked to after an implicit \\Seen', async () => {
      const items = await buildFetchItems(stored(SIMPLE), request('BODY[TEXT]<0.2>'), { flags: ['\\Seen'], includeFlags: true });
      expect(serializeImap(items).toString()).to.equal('(BODY[TEXT]<0> {2}\r\nHi FLAGS (\\Seen))');
    });

    it('makes PREVIEW last, from the message already read for the other items (one read per message)', async () => {
      let reads = 0;
      const counted = (): StoredMessage => {
        const message = stored(SIMPLE);
        return { ...message, raw: () => (reads++, message.raw()) };
      };
      const withBody = await buildFetchItems(counted(), request('(BODY.PEEK[TEXT] UID)'), { preview: true });
      expect(serializeImap(withBody).toString()).to.equal('(BODY[TEXT] {14}\r\nHi Bob,\r\nbye\r\n UID 1 PREVIEW "Hi Bob, bye")');
      expect(reads).to.equal(1);
      // Nothing else needs the body: PREVIEW reads it itself, once.
      const alone = await buildFetchItems(counted(), request('UID'), { preview: true });
      expect(serializeImap(alone).toString()).to.equal('(UID 1 PREVIEW "Hi Bob, bye")');
      expect(reads).to.equal(2);
    });
  });

  describe('multipart/alternative with RFC 2047 headers', () => {
    it('answers BODYSTRUCTURE with no space between the parts', async () => {
      expect(await fetch(ALTERNATIVE, 'BODYSTRUCTURE')).to.equal(
        '(BODYSTRUCTURE (("text" "plain" ("charset" "UTF-8") NIL NIL "quoted-printable" 31 1 NIL NIL NIL NIL)' +
          '("text" "html" ("charset" "UTF-8") NIL NIL "7bit" 11 1 NIL NIL NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL))',
      );
      expect(await fetch(ALTERNATIVE, 'BODY')).to.equal(
        '(BODY (("text" "plain" ("charset" "UTF-8") NIL NIL "quoted-printable" 31 1)("text" "html" ("charset" "UTF-8") NIL NIL "7bit" 11 1) "alternative"))',
      );
    });

    it('keeps encoded-words in ENVELOPE as Dovecot does, and splits a quoted display name with a comma', async () => {
      const jurgen = '(("=?UTF-8?Q?J=C3=BCrgen?=" NIL "jurgen" "example.de"))';
      expect(await fetch(ALTERNATIVE, 'ENVELOPE')).to.equal(
        `(ENVELOPE (NIL "=?UTF-8?B?R3LDvMOfZQ==?=" ${jurgen} ${jurgen} ${jurgen} (("Doe, Jane" NIL "jane" "example.com")(NIL NIL "bob" "example.com")) NIL NIL NIL NIL))`,
      );
    });

    it('returns part bodies without the CRLF that belongs to the boundary', async () => {
      expect(await fetch(ALTERNATIVE, 'BODY.PEEK[2]')).to.equal('(BODY[2] {11}\r\n<p>Hi</p>\r\n)');
      expect(await fetch(ALTERNATIVE, 'BODY.PEEK[1.MIME]')).to.equal(
        '(BODY[1.MIME] {88}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n)',
      );
    });

    it('decodes BINARY and BINARY.SIZE (RFC 3516)', async () => {
      expect(await fetch(ALTERNATIVE, 'BINARY.SIZE[1]')).to.equal('(BINARY.SIZE[1] 19)');
      expect(await fetch(ALTERNATIVE, 'BINARY.PEEK[1]')).to.equal('(BINARY[1] {19}\r\nGrüße aus Köln\r\n)');
      // The whole message: its size as a number, never its octets (imaptest fetch-binary-mime).
      expect(await fetch(ALTERNATIVE, 'BINARY.SIZE[]')).to.equal(`(BINARY.SIZE[] ${ALTERNATIVE.length})`);
    });
  });

  describe('nested multipart/mixed with an attachment', () => {
    it('answers BODYSTRUCTURE with all extension fields of the attachment', async () => {
      expect(await fetch(NESTED, 'BODYSTRUCTURE')).to.equal(
        '(BODYSTRUCTURE (((' +
          `${TEXT_7BIT} 7 1 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 13 1 NIL NIL NIL NIL) ` +
          '"alternative" ("boundary" "inner") NIL NIL NIL)' +
          '("application" "pdf" ("name" "doc.pdf") "<pdf1@example.com>" "The doc" "base64" 12 "Q2hlY2sgSW50ZWdyaXR5IQ==" ' +
          '("attachment" ("filename" "doc.pdf")) ("en" "de") "http://example.com/doc.pdf") ' +
          '"mixed" ("boundary" "outer") NIL NIL NIL))',
      );
    });

    it('addresses nested parts by path', async () => {
      expect(await fetch(NESTED, 'BODY.PEEK[1.1]')).to.equal('(BODY[1.1] {7}\r\nplain\r\n)');
      expect(await fetch(NESTED, 'BODY.PEEK[1.2]<0.3>')).to.equal('(BODY[1.2]<0> {3}\r\n<b>)');
      expect(await fetch(NESTED, 'BODY.PEEK[2]')).to.equal('(BODY[2] {12}\r\nJVBERi0xLjQK)');
      expect(await fetch(NESTED, 'BINARY.PEEK[2]')).to.equal('(BINARY[2] {9}\r\n%PDF-1.4\n)');
      expect(await fetch(NESTED, 'BODY.PEEK[1.3]')).to.equal('(BODY[1.3] NIL)');
      expect(await fetch(NESTED, 'BODY.PEEK[2.1]')).to.equal('(BODY[2.1] NIL)');
    });
  });

  describe('message/rfc822 attachment', () => {
    const inner = `(NIL "inner" ${CAROL} ${CAROL} ${CAROL} NIL NIL NIL NIL NIL)`;

    it('answers BODYSTRUCTURE with the envelope, structure and lines of the embedded message', async () => {
      expect(await fetch(FORWARD, 'BODYSTRUCTURE')).to.equal(
        '(BODYSTRUCTURE ((' +
          `${TEXT_7BIT} 12 0 NIL NIL NIL NIL)` +
          `("message" "rfc822" NIL NIL NIL "7bit" 61 ${inner} (${TEXT_7BIT} 10 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) ` +
          '"mixed" ("boundary" "m") NIL NIL NIL))',
      );
      expect(await fetch(FORWARD, 'BODY')).to.equal(
        `(BODY ((${TEXT_7BIT} 12 0)("message" "rfc822" NIL NIL NIL "7bit" 61 ${inner} (${TEXT_7BIT} 10 0) 3) "mixed"))`,
      );
    });

    it('serves HEADER, TEXT and part 1 of the embedded message', async () => {
      expect(await fetch(FORWARD, 'BODY.PEEK[2.HEADER]')).to.equal(
        '(BODY[2.HEADER] {51}\r\nFrom: Carol <carol@example.org>\r\nSubject: inner\r\n\r\n)',
      );
      expect(await fetch(FORWARD, 'BODY.PEEK[2.TEXT]')).to.equal('(BODY[2.TEXT] {10}\r\ninner body)');
      expect(await fetch(FORWARD, 'BODY.PEEK[2.1]')).to.equal('(BODY[2.1] {10}\r\ninner body)');
      expect(await fetch(FORWARD, 'BODY.PEEK[2]')).to.match(/^\(BODY\[2\] \{61\}\r\nFrom: Carol/);
      expect(await fetch(FORWARD, 'BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]')).to.equal(
        '(BODY[2.HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: inner\r\n\r\n)',
      );
      expect(await fetch(FORWARD, 'BODY.PEEK[1.HEADER]')).to.equal('(BODY[1.HEADER] NIL)');
    });
  });

  describe('odd messages', () => {
    it('sends 8-bit header values as literals and parses groups', async () => {
      const raw = crlf('Subject: Grüße', 'To: Team: a@x.org, "B" <b@y.org>;, c@z.org', '', 'x');
      expect(await fetch(raw, 'ENVELOPE')).to.equal(
        '(ENVELOPE (NIL {7}\r\nGrüße NIL NIL NIL ((NIL NIL "Team" NIL)(NIL NIL "a" "x.org")("B" NIL "b" "y.org")(NIL NIL NIL NIL)(NIL NIL "c" "z.org")) NIL NIL NIL NIL))'.replace(
          '{7}',
          `{${Buffer.byteLength('Grüße')}}`,
        ),
      );
    });

    it('stands in an empty text part for a multipart without parts, and merges RFC 2231 continuations', async () => {
      const raw = crlf(
        'Content-Type: multipart/mixed; boundary=x',
        '',
        'no parts here',
      );
      expect(await fetch(raw, 'BODYSTRUCTURE')).to.equal(
        `(BODYSTRUCTURE ((${TEXT_7BIT} 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "x") NIL NIL NIL))`,
      );
      const att = crlf(
        "Content-Type: application/octet-stream; name*0*=utf-8''%E2%82%AC; name*1*=.txt",
        '',
        'x',
      );
      expect(await fetch(att, 'BODY')).to.equal(
        `(BODY ("application" "octet-stream" ("name*" "utf-8''%E2%82%AC.txt") NIL NIL "7bit" 3))`,
      );
    });

    it('handles a header without a body', async () => {
      const raw = Buffer.from('Subject: only\r\n');
      expect(await fetch(raw, 'BODYSTRUCTURE')).to.equal(`(BODYSTRUCTURE (${TEXT_7BIT} 0 0 NIL NIL NIL NIL))`);
      expect(await fetch(raw, 'BODY[HEADER]')).to.equal('(BODY[HEADER] {15}\r\nSubject: only\r\n)');
    });
  });
});

describe('imap-fetch robustness', () => {
  it('answers BODYSTRUCTURE, ENVELOPE and every part for mangled MIME without throwing', async () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const sources = [ALTERNATIVE, NESTED, FORWARD];
    for (let i = 0; i < 300; i++) {
      const src = Buffer.from(sources[rand(sources.length)]);
      for (let k = 0; k < 5; k++) src[rand(src.length)] = [0x2d, 0x0a, 0x0d, 0x3a, 0x22, 0x3b, 0xff][rand(7)];
      const cut = src.subarray(0, rand(src.length + 1));
      const out = await fetch(cut, '(ENVELOPE BODYSTRUCTURE BODY[1] BODY[1.1] BODY[2.HEADER] BODY[2.TEXT] BODY[1.MIME])');
      expect(out.startsWith('(ENVELOPE (')).to.equal(true);
    }
  });
});
