/**
 * PREVIEW (RFC 8970): CAPABILITY lists it; FETCH PREVIEW answers the first readable text part, decoded and flattened,
 * at most 256 characters, "" when there is none; `(LAZY)` is accepted, other modifiers are BAD; it never sets \Seen.
 * Python's imaplib reads the previews as a client would (literals for 8-bit text in IMAP4rev1); the exact wire is
 * checked with a line client.
 */
import { expect } from 'chai';
import { messagePreview } from '../../lib/imap/imap-preview.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';
import { python } from '../support/python.js';

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'utf8');

const MESSAGES = [
  crlf(['Subject: plain', '', 'Hello   there,', '', '  this is\tthe text.', '']),
  crlf([
    'Subject: alternative',
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="b"',
    '',
    '--b',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>not this one</p>',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Gr=C3=BC=C3=9Fe aus K=C3=B6ln=',
    ' und Bonn',
    '--b--',
    '',
  ]),
  crlf([
    'Subject: html',
    'Content-Type: text/html',
    '',
    '<html><head><title>Title</title><style>p { color: red }</style></head>',
    '<body><!-- hidden --><p>Fish&amp;chips &lt;b&gt;</p><script>alert(1)</script><div>&#x263A; &#8364;&nbsp;end&unknown;</div></body></html>',
    '',
  ]),
  crlf([
    'Subject: attachments only',
    'Content-Type: multipart/mixed; boundary="m"',
    '',
    '--m',
    'Content-Type: text/plain',
    'Content-Disposition: attachment; filename="notes.txt"',
    '',
    'attached notes',
    '--m',
    'Content-Type: application/pdf',
    'Content-Transfer-Encoding: base64',
    '',
    'JVBERi0=',
    '--m--',
    '',
  ]),
  crlf(['Subject: long', 'Content-Type: text/plain; charset=utf-8', '', '\u{1F600}'.repeat(300), '']),
  crlf(['Subject: latin1', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: base64', '', Buffer.from('Olé, señor', 'latin1').toString('base64'), '']),
];

const EXPECTED = ['Hello there, this is the text.', 'Grüße aus Köln und Bonn', 'Fish&chips <b> ☺ € end&unknown;', '', '\u{1F600}'.repeat(256), 'Olé, señor'];

describe('imap: PREVIEW (RFC 8970)', function () {
  this.timeout(30_000);
  let server: RunningMailServer;
  const clients: LineClient[] = [];

  before(async () => {
    server = await startMailServer({ protocols: ['imap'], users: ['alice:secret@example.com'], allowInsecureAuth: true });
    for (const raw of MESSAGES) await server.store.deliver('alice@example.com', raw);
  });
  after(async () => server.stop());
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  async function selected(): Promise<LineClient> {
    const c = await LineClient.connect(server.ports.imap!);
    clients.push(c);
    await c.expect(/^\* OK /);
    await c.command('l LOGIN alice secret', /^l OK /);
    await c.command('s SELECT INBOX', /^s OK /);
    return c;
  }

  it('is listed in CAPABILITY', async () => {
    const c = await selected();
    const [caps] = await c.command('c CAPABILITY', /^c OK /);
    expect(caps!.split(' ')).to.include('PREVIEW');
  });

  it('answers FETCH PREVIEW on the wire, with or without (LAZY) and the list parentheses', async () => {
    const c = await selected();
    expect(await c.command('a FETCH 1 (PREVIEW)', /^a /)).to.deep.equal(['* 1 FETCH (PREVIEW "Hello there, this is the text.")', 'a OK FETCH completed']);
    expect((await c.command('b UID FETCH 1 (UID PREVIEW (LAZY) RFC822.SIZE)', /^b /))[0]).to.equal(`* 1 FETCH (UID 1 RFC822.SIZE ${MESSAGES[0]!.length} PREVIEW "Hello there, this is the text.")`);
    expect((await c.command('c FETCH 1 PREVIEW (LAZY)', /^c /))[0]).to.equal('* 1 FETCH (PREVIEW "Hello there, this is the text.")');
    expect((await c.command('d FETCH 4 PREVIEW', /^d /))[0]).to.equal('* 4 FETCH (PREVIEW "")');
  });

  it('refuses a modifier other than LAZY with BAD, and never sets \\Seen', async () => {
    const c = await selected();
    expect(await c.command('a FETCH 1 (PREVIEW (FOO))', /^a /)).to.deep.equal(['a BAD PREVIEW takes only the LAZY modifier']);
    expect(await c.command('b FETCH 1 (PREVIEW (LAZY FOO))', /^b /)).to.deep.equal(['b BAD PREVIEW takes only the LAZY modifier']);
    await c.command('c FETCH 1:* (PREVIEW)', /^c OK /);
    const flags = await c.command('d FETCH 1:* (FLAGS)', /^d OK /);
    expect(flags.filter((l) => l.includes('\\Seen'))).to.deep.equal([]);
  });

  it('sends an 8-bit preview as a literal of its UTF-8 octets (RFC 3501 §4.3: no 8-bit in quoted strings)', async () => {
    const c = await selected();
    const text = 'Grüße aus Köln und Bonn';
    const lines = await c.command('a FETCH 2 (PREVIEW)', /^a /);
    expect(lines[0]).to.equal(`* 2 FETCH (PREVIEW {${Buffer.byteLength(text)}}`);
    expect(Buffer.from(lines[1]!, 'latin1').toString('utf8')).to.equal(`${text})`);
  });

  it("Python's imaplib reads every preview: decoded, flattened, markup removed, 256 characters at most", async () => {
    const script = `
import imaplib, sys, json, re
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login('alice', 'secret')
c.select('INBOX')
typ, data = c.fetch('1:*', '(PREVIEW)')
out = []
for item in data:
    if isinstance(item, tuple):
        out.append(item[1].decode('utf-8'))
    elif item != b')':
        m = re.search(rb'PREVIEW "((?:[^"\\\\]|\\\\.)*)"', item)
        out.append(m.group(1).decode('utf-8'))
print(json.dumps(out))
c.logout()
`;
    const out = await python(script, [String(server.ports.imap)]);
    if (out === undefined) throw new Error('python3 is not installed (.ci/run installs it)');
    expect(JSON.parse(out) as string[]).to.deep.equal(EXPECTED);
  });

  it('makes the previews from the message alone (messagePreview), and "" for an unknown transfer encoding', () => {
    expect(MESSAGES.map(messagePreview)).to.deep.equal(EXPECTED);
    expect(messagePreview(crlf(['Content-Transfer-Encoding: x-uuencode', '', 'begin 644 x', '']))).to.equal('');
    expect(Array.from(messagePreview(MESSAGES[4]!))).to.have.length(256);
  });
});
