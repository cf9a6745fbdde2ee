import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { testCertificates } from '../support/certs.js';
import { startLmtp, storedByUser, type LmtpFixture } from './lmtp-harness.js';

const run = promisify(execFile);

async function has(cmd: string, args: string[] = ['--version']): Promise<boolean> {
  return run(cmd, args).then(
    () => true,
    () => false,
  );
}

// smtplib.LMTP sends LHLO for ehlo() and connects to a Unix socket when the host is a path. Its data() reads one
// reply; LMTP sends one per recipient (RFC 2033 §4.2), so the script reads the second with getreply().
const SCRIPT = `
import smtplib, ssl, sys
port, sock, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = "From: sender@remote.test\\r\\nTo: alice@example.com, bob@example.com\\r\\nSubject: from python %s\\r\\n\\r\\nhi\\r\\n"
with smtplib.LMTP("127.0.0.1", port, timeout=10) as s:
    code, _ = s.ehlo()
    assert code == 250 and s.has_extn("starttls"), "LHLO"
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.ehlo()
    s.mail("sender@remote.test")
    s.rcpt("alice@example.com")
    s.rcpt("bob@example.com")
    first = s.data(msg % "tcp")
    second = s.getreply()
    print(first[0], first[1].decode(), "|", second[0], second[1].decode())
with smtplib.LMTP(sock, timeout=10) as s:
    refused = s.sendmail("sender@remote.test", ["carol@example.com"], msg % "unix")
    print("unix", refused)
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    print("ehlo", s.ehlo()[0], "helo", s.helo()[0])
`;

describe('lmtp: interop with Python smtplib.LMTP', () => {
  let f: LmtpFixture | undefined;
  before(async function () {
    if (!(await has('python3'))) this.skip(); // .ci/run installs python3
  });
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('delivers over TCP after STARTTLS with one reply per recipient, and over the Unix socket', async () => {
    const certs = await testCertificates();
    f = await startLmtp({}, [], true);
    const caFile = join(f.dir, 'ca.pem');
    await writeFile(caFile, certs.ca.cert);
    const { stdout } = await run('python3', ['-c', SCRIPT, String(f.port('lmtp')), f.socketPath, caFile], { timeout: 30_000 });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).to.match(/^250 2\.0\.0 <alice@example\.com> Message accepted \(\d+ octets\) \| 552 5\.2\.2 <bob@example\.com> Mailbox full$/);
    expect(lines[1]).to.equal('unix {}');
    // smtplib.SMTP's EHLO is refused, and so is HELO: this is not an SMTP server.
    expect(lines[2]).to.equal('ehlo 500 helo 500');
    const stored = await storedByUser(f.store);
    expect(stored.alice).to.have.length(1);
    expect(stored.alice[0]).to.match(/with LMTPS \(TLS/);
    expect(stored.carol[0]).to.contain('Subject: from python unix');
    expect(stored.bob).to.equal(undefined);
  });
});
