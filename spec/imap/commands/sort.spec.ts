import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { baseSubject } from '../../../lib/imap/imap-sort.js';
import type { LineClient } from '../../support/line-client.js';
import { ALICE, startImap, type ImapHarness } from '../imap-harness.js';

const run = promisify(execFile);

const MESSAGES = [
  'From: Zed <zed@example.com>\r\nSubject: Plans\r\nMessage-ID: <a@x>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nlong body text\r\n',
  'From: adam@example.com\r\nSubject: Re: plans\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\n\r\nb\r\n',
  'From: Bea <bea@example.com>\r\nSubject: Other\r\nMessage-ID: <c@x>\r\nDate: Mon, 1 Jan 2024 11:00:00 +0000\r\n\r\nc\r\n',
  'From: carl@example.com\r\nSubject: [list] Re: Plans (fwd)\r\nMessage-ID: <d@x>\r\nReferences: <a@x> <b@x>\r\nDate: Mon, 1 Jan 2024 13:00:00 +0000\r\n\r\nd\r\n',
];

/** SORT and THREAD through Python's imaplib, which has both (IMAP4.sort, IMAP4.thread). */
const PYTHON = `
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
c = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ctx)
c.login(os.environ['USER'], os.environ['PASS'])
c.select('INBOX')
print(c.sort('(REVERSE DATE)', 'UTF-8', 'ALL')[1][0].decode())
print(c.thread('REFERENCES', 'UTF-8', 'ALL')[1][0].decode())
c.logout()
`;

describe('IMAP SORT, THREAD and ESORT (RFC 5256, 5957, 5267)', () => {
  let h: ImapHarness;
  let c: LineClient;

  beforeEach(async () => {
    h = await startImap();
    for (const m of MESSAGES) await h.deliver(m);
    c = await h.loginAlice();
    await c.command('s SELECT INBOX', /^s OK/);
  });
  afterEach(async () => {
    await h.close();
  });

  it('extracts the RFC 5256 §2.1 base subject', () => {
    expect(baseSubject('[list] Re: Fwd:  Plans (fwd)')).to.deep.equal({ subject: 'Plans', isReply: true });
    expect(baseSubject('[Fwd: Re: x]')).to.deep.equal({ subject: 'x', isReply: true });
    expect(baseSubject('[only blob]')).to.deep.equal({ subject: '[only blob]', isReply: false });
  });

  it('sorts by subject, sender, display name, size and reverse date, ties by number', async () => {
    expect(await c.command('a SORT (SUBJECT) UTF-8 ALL', /^a /)).to.deep.equal(['* SORT 3 1 2 4', 'a OK SORT completed']);
    expect(await c.command('b SORT (FROM) UTF-8 ALL', /^b /)).to.deep.equal(['* SORT 2 3 4 1', 'b OK SORT completed']);
    expect(await c.command('c SORT (DISPLAYFROM) UTF-8 ALL', /^c /)).to.deep.equal(['* SORT 2 3 4 1', 'c OK SORT completed']);
    expect(await c.command('d UID SORT (REVERSE DATE) UTF-8 NOT FROM bea', /^d /)).to.deep.equal(['* SORT 4 2 1', 'd OK UID SORT completed']);
    expect(await c.command('e SORT RETURN (MIN COUNT) (DATE) UTF-8 ALL', /^e /)).to.deep.equal(['* ESEARCH (TAG "e") MIN 1 COUNT 4', 'e OK SORT completed']);
    expect((await c.command('f SORT (SUBJECT) KOI8-R ALL', /^f /))[0]).to.equal('f NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset');
    expect((await c.command('g SORT (REVERSE) UTF-8 ALL', /^g /))[0]).to.equal('g BAD REVERSE needs a sort key');
  });

  it('threads by references and by ordered subject', async () => {
    expect(await c.command('a THREAD REFERENCES UTF-8 ALL', /^a /)).to.deep.equal(['* THREAD (1 2 4)(3)', 'a OK THREAD completed']);
    expect(await c.command('b THREAD ORDEREDSUBJECT UTF-8 ALL', /^b /)).to.deep.equal(['* THREAD (1 (2)(4))(3)', 'b OK THREAD completed']);
    expect((await c.command('c THREAD X UTF-8 ALL', /^c /))[0]).to.equal('c BAD Unknown threading algorithm');
  });

  it("works with Python's imaplib sort() and thread()", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), 'postern-sort-'));
    try {
      const caFile = path.join(dir, 'ca.pem');
      await writeFile(caFile, h.certs.ca.cert);
      const env = { ...process.env, CA: caFile, PORT: String(h.securePort), USER: ALICE.username, PASS: ALICE.password };
      const out = await run('python3', ['-c', PYTHON], { env }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!out) this.skip();
      expect(out.stdout.trim().split('\n')).to.deep.equal(['4 2 3 1', '(1 2 4)(3)']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
