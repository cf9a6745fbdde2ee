import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ALICE, message, startImap, type ImapHarness } from './imap-harness.js';

const run = promisify(execFile);

async function hasBinary(name: string): Promise<boolean> {
  return run(name, ['--version']).then(
    () => true,
    () => false,
  );
}

/** Python's imaplib against both listeners: starttls() and IMAP4_SSL. */
const PYTHON = `
import imaplib, os, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ['CA'])
def session(c):
    c.login(os.environ['USER'], os.environ['PASS'])
    typ, data = c.select('INBOX')
    assert typ == 'OK', data
    count = int(data[0])
    typ, found = c.search(None, 'SUBJECT', '"second"')
    typ, msg = c.fetch('1', '(RFC822)')
    body = msg[0][1].decode()
    typ, flags = c.fetch('1', '(FLAGS)')
    c.logout()
    return count, found[0].decode(), body.split('\\r\\n\\r\\n', 1)[1], flags[0].decode()
plain = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT']))
assert 'STARTTLS' in plain.capabilities and 'LOGINDISABLED' in plain.capabilities, plain.capabilities
plain.starttls(ssl_context=ctx)
assert 'LOGINDISABLED' not in plain.capabilities, plain.capabilities
print(session(plain))
print(session(imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['SPORT']), ssl_context=ctx)))
`;

describe('IMAP interop: imaplib and curl', () => {
  let h: ImapHarness;
  let dir: string;
  let caFile: string;

  beforeEach(async () => {
    h = await startImap();
    await h.deliver(message('first', 'one\r\n'));
    await h.deliver(message('second', 'two\r\n'));
    dir = await mkdtemp(path.join(tmpdir(), 'postern-imap-'));
    caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, h.certs.ca.cert);
  });
  afterEach(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("works with Python's imaplib for OBJECTID, SAVEDATE and ENABLE IMAP4rev2 (then SEARCH answers ESEARCH)", async function () {
    if (!(await hasBinary('python3'))) this.skip();
    const script = `
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
c = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['SPORT']), ssl_context=ctx)
assert {'IMAP4REV2', 'OBJECTID', 'SAVEDATE'} <= set(c.capabilities), c.capabilities
c.login(os.environ['USER'], os.environ['PASS'])
typ, data = c.create('Work')
print(typ, data[0].decode().startswith('[MAILBOXID (F'))
typ, data = c.enable('IMAP4rev2')
print(typ, data)
typ, data = c.select('INBOX')
print(typ, data)
typ, data = c.fetch('2', '(EMAILID THREADID SAVEDATE)')
print(typ, data[0].decode().split(' (M')[0], data[0].decode().endswith('") THREADID NIL SAVEDATE NIL)') is False)
typ, data = c._simple_command('SEARCH', 'ALL')
print(typ, c.untagged_responses.pop('ESEARCH', [b''])[0].endswith(b') ALL 1:2'))
c.logout()
`;
    const { stdout } = await run('python3', ['-c', script], {
      env: { ...process.env, CA: caFile, USER: ALICE.username, PASS: ALICE.password, SPORT: String(h.securePort) },
    });
    expect(stdout.trim().split('\n')).to.deep.equal(['OK True', "OK [b'ENABLE completed']", "OK [b'2']", 'OK 2 (EMAILID True', 'OK True']);
  });

  it("works with Python's imaplib over STARTTLS and IMAP4_SSL", async function () {
    if (!(await hasBinary('python3'))) this.skip();
    const { stdout } = await run('python3', ['-c', PYTHON], {
      env: { ...process.env, CA: caFile, USER: ALICE.username, PASS: ALICE.password, PORT: String(h.port), SPORT: String(h.securePort) },
    });
    expect(stdout.trim().split('\n')).to.deep.equal([
      "(2, '2', 'one\\r\\n', '1 (FLAGS (\\\\Seen \\\\Recent))')",
      // The second session sees \Seen from the first and no \Recent (the first session claimed them).
      "(2, '2', 'one\\r\\n', '1 (FLAGS (\\\\Seen))')",
    ]);
  });

  it('works with curl: imap:// with --ssl-reqd lists mailboxes, imaps:// fetches by UID', async function () {
    if (!(await hasBinary('curl'))) this.skip();
    const auth = ['--user', `${ALICE.username}:${ALICE.password}`, '--cacert', caFile, '--silent', '--show-error', '--max-time', '10'];
    const list = await run('curl', [...auth, '--ssl-reqd', `imap://127.0.0.1:${h.port}/`]);
    expect(list.stdout).to.equal('* LIST (\\HasNoChildren) "/" "INBOX"\r\n');
    const fetched = await run('curl', [...auth, `imaps://127.0.0.1:${h.securePort}/INBOX;UID=2`]);
    expect(fetched.stdout).to.equal(message('second', 'two\r\n'));
  });

  it('works with curl custom requests: STATUS MAILBOXID and SEARCH SAVEDATESUPPORTED', async function () {
    if (!(await hasBinary('curl'))) this.skip();
    const auth = ['--user', `${ALICE.username}:${ALICE.password}`, '--cacert', caFile, '--silent', '--show-error', '--max-time', '10'];
    const status = await run('curl', [...auth, `imaps://127.0.0.1:${h.securePort}/`, '-X', 'STATUS INBOX (MAILBOXID MESSAGES)']);
    expect(status.stdout).to.match(/^\* STATUS "INBOX" \(MAILBOXID \(F[0-9a-f]+\) MESSAGES 2\)\r\n$/);
    const search = await run('curl', [...auth, `imaps://127.0.0.1:${h.securePort}/INBOX`, '-X', 'SEARCH SAVEDATESUPPORTED']);
    expect(search.stdout).to.equal('* SEARCH 1 2\r\n');
  });
});
