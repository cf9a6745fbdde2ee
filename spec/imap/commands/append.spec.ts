import { expect } from 'chai';
import type { LineClient } from '../../support/line-client.js';
import { startImap, type ImapHarness } from '../imap-harness.js';

/** `{n+}` literal text (LITERAL+) for a message. */
function lit(text: string | Buffer, binary = false): string {
  const b = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  return `${binary ? '~' : ''}{${b.length}+}\r\n${b.toString('latin1')}`;
}

describe('IMAP APPEND: MULTIAPPEND, CATENATE and BINARY', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    c = await h.loginAlice();
  });
  afterEach(async () => {
    await h.close();
  });

  it('appends several messages in one command and answers APPENDUID with all their UIDs (RFC 3502)', async () => {
    c.send(`a APPEND INBOX (\\Seen) ${lit('Subject: one\r\n\r\n1\r\n')} "01-Jan-2024 10:00:00 +0000" ${lit('Subject: two\r\n\r\n2\r\n')}\r\n`);
    const reply = (await c.expect(/^a /)).pop();
    expect(reply).to.match(/^a OK \[APPENDUID \d+ 1:2\] APPEND completed$/);
    await c.command('s SELECT INBOX', /^s OK/);
    const fetched = await c.command('f FETCH 1:2 (FLAGS INTERNALDATE)', /^f /);
    expect(fetched[0]).to.match(/^\* 1 FETCH \(FLAGS \(\\Seen \\Recent\) INTERNALDATE /);
    expect(fetched[1]).to.equal('* 2 FETCH (FLAGS (\\Recent) INTERNALDATE " 1-Jan-2024 10:00:00 +0000")');
  });

  it('appends none when one message of a MULTIAPPEND is refused', async () => {
    c.send(`a APPEND INBOX ${lit('Subject: one\r\n\r\n1\r\n')} (\\Bogus) ${lit('Subject: two\r\n\r\n2\r\n')}\r\n`);
    expect(await c.expect(/^a /)).to.deep.equal(['a BAD Invalid system flag']);
    expect(await c.command('s STATUS INBOX (MESSAGES)', /^s /)).to.deep.equal(['* STATUS "INBOX" (MESSAGES 0)', 's OK STATUS completed']);
  });

  it('builds a message from TEXT and URL parts (RFC 4469) and refuses an unresolvable URL with [BADURL]', async () => {
    c.send(`a APPEND INBOX ${lit('Subject: base\r\n\r\noriginal body\r\n')}\r\n`);
    await c.expect(/^a OK/);
    c.send(`b APPEND INBOX CATENATE (URL "/INBOX/;UID=1/;SECTION=HEADER" TEXT ${lit('new body\r\n')} URL "/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=0.8")\r\n`);
    expect((await c.expect(/^b /)).pop()).to.match(/^b OK \[APPENDUID \d+ 2\]/);
    await c.command('s SELECT INBOX', /^s OK/);
    const body = await c.command('f FETCH 2 BODY.PEEK[]', /^f /);
    expect(body.join('\n')).to.contain('Subject: base\n\nnew body\noriginal');
    c.send(`c APPEND INBOX CATENATE (URL "/INBOX/;UID=99" TEXT ${lit('x\r\n')})\r\n`);
    expect(await c.expect(/^c /)).to.deep.equal(['c NO [BADURL /INBOX/;UID=99] Cannot resolve URL']);
  });

  it('stores a binary part sent as literal8 base64-encoded, and BINARY[] returns the original octets (RFC 3516)', async () => {
    const octets = Buffer.from([0x00, 0xff, 0x10, 0x0d, 0x0a]);
    const message = Buffer.concat([Buffer.from('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n', 'latin1'), octets]);
    c.send(Buffer.from(`a APPEND INBOX ${lit(message, true)}\r\n`, 'latin1'));
    await c.expect(/^a OK/);
    await c.command('s SELECT INBOX', /^s OK/);
    const header = await c.command('h FETCH 1 BODY.PEEK[HEADER]', /^h /);
    expect(header.join('\n')).to.contain('Content-Transfer-Encoding: base64');
    expect((await c.command('z FETCH 1 BINARY.SIZE[1]', /^z /))[0]).to.equal(`* 1 FETCH (BINARY.SIZE[1] ${octets.length})`);
  });
});
