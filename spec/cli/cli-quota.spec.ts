/**
 * Storage quotas from the `postern` command (`--quota`, `--user-quota`) and the test double (`quota`): the sizes
 * accepted and refused, and a `postern` process whose quota Python's smtplib meets as 552 5.2.2 and imaplib reads
 * with GETQUOTAROOT (RFC 9208).
 */
import { expect } from 'chai';
import { parseCliArgs } from '../../lib/cli/cli-args.js';
import { parseSize, quotaOptions } from '../../lib/cli/cli-option-groups.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { python } from '../support/python.js';
import { runPostern, startPostern, usageMessage, type PosternProcess } from './cli-process.js';

const usage = usageMessage;

/** Sends `size` octets from bob to argv[2] over SMTP (no TLS needed: no AUTH) and prints the reply to DATA. */
const SEND = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.ehlo('client.test')
s.mail('bob@example.com')
s.rcpt(sys.argv[2])
code, text = s.data(b'Subject: big\\r\\n\\r\\n' + b'x' * int(sys.argv[3]) + b'\\r\\n')
print(code, text.decode())
s.quit()
`;

/** GETQUOTAROOT INBOX as argv[2] (password "secret"), over IMAP with allow-insecure-auth; prints the untagged lines. */
const QUOTA = `
import imaplib, sys
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], 'secret')
typ, data = c.getquotaroot('INBOX')
print(typ)
for line in data:
    for item in line:
        print(item.decode())
c.logout()
`;

describe('cli: storage quotas (--quota, --user-quota)', function () {
  this.timeout(30_000);

  it('reads sizes in octets or with K, M, G, T (powers of 1024)', () => {
    expect([parseSize('52428800', 'f'), parseSize('512K', 'f'), parseSize('50m', 'f'), parseSize('2G', 'f'), parseSize('1T', 'f'), parseSize('10MB', 'f')]).to.deep.equal([
      52428800,
      512 * 1024,
      50 * 1024 ** 2,
      2 * 1024 ** 3,
      1024 ** 4,
      10 * 1024 ** 2,
    ]);
  });

  it('turns the flags into config.quota, per-user sizes over --quota, and none without them', () => {
    expect(parseCliArgs(['--quota', '50M', '--user-quota', 'alice:1G', '--user-quota', 'a@b.test:2K']).config.quota).to.deep.equal({
      storage: 50 * 1024 ** 2,
      users: { alice: 1024 ** 3, 'a@b.test': 2048 },
    });
    expect(parseCliArgs(['--user-quota', 'bob:1K']).config.quota).to.deep.equal({ users: { bob: 1024 } });
    expect(parseCliArgs([]).config).not.to.have.property('quota');
  });

  it('reads a size with spaces around it, and a login with a colon up to its last colon', () => {
    expect(parseSize(' 2K\t', 'f')).to.equal(2048);
    expect(parseCliArgs(['--user-quota', 'a:b@x.test:3K']).config.quota).to.deep.equal({ users: { 'a:b@x.test': 3072 } });
  });

  it('gives --quota alone a storage limit and no per-user table; neither flag (or an empty list) gives no quota', () => {
    expect(parseCliArgs(['--quota', '1M']).config.quota).to.deep.equal({ storage: 1024 ** 2 });
    expect(quotaOptions(undefined, undefined)).to.equal(undefined);
    expect(quotaOptions(undefined, [])).to.equal(undefined);
    expect(quotaOptions('2K', [])).to.deep.equal({ storage: 2048 });
  });

  const refusals: Array<[string[], string]> = [
    [['--quota', '0'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "0"'],
    [['--quota', '5X'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "5X"'],
    [['--quota=-1'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "-1"'],
    [['--quota', '99999999999T'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "99999999999T"'],
    [['--quota', 'x5K'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "x5K"'],
    [['--quota', '5Kx'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "5Kx"'],
    [['--quota', '5KBB'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "5KBB"'],
    [['--quota', 'K'], '--quota: expected a size such as 52428800, 512K, 50M or 2G, got "K"'],
    [['--user-quota', 'alice'], '--user-quota: expected LOGIN:SIZE, got "alice"'],
    [['--user-quota', ':1K'], '--user-quota: expected LOGIN:SIZE, got ":1K"'],
    [['--user-quota', 'alice:1.5G'], '--user-quota: expected a size such as 52428800, 512K, 50M or 2G, got "1.5G"'],
    [['--user-quota', 'alice:1K', '--user-quota', 'alice:2K'], '--user-quota: alice is given twice'],
  ];
  for (const [args, message] of refusals) {
    it(`refuses ${args.join(' ')}: "${message}"`, () => {
      expect(usage(() => parseCliArgs(args))).to.equal(message);
    });
  }

  describe('on the wire', () => {
    const running: PosternProcess[] = [];
    let double: RunningMailServer | undefined;
    afterEach(async () => {
      await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
      await double?.stop();
      double = undefined;
    });

    const send = async (port: number, to: string, size: number): Promise<string> => {
      const out = await python(SEND, [String(port), to, String(size)]);
      if (out === undefined) throw new Error('python3 is not installed (.ci/run installs it)');
      return out.trim();
    };

    it('postern --quota 4K --user-quota bob:1M: 552 5.2.2 past alice\'s quota, not bob\'s; GETQUOTAROOT shows the limit', async () => {
      const p = startPostern(['--only', 'smtp,imap', '--smtp-port', '0', '--imap-port', '0', '--allow-insecure-auth', '--user', 'alice:secret@example.com', '--user', 'bob:secret@example.com', '--quota', '4K', '--user-quota', 'bob:1M']);
      running.push(p);
      await p.ready(2);
      expect(await send(p.ports.smtp!, 'alice@example.com', 2000)).to.match(/^250 /);
      expect(await send(p.ports.smtp!, 'alice@example.com', 3000)).to.equal('552 5.2.2 Mailbox full');
      expect(await send(p.ports.smtp!, 'bob@example.com', 6000)).to.match(/^250 /);
      const alice = (await python(QUOTA, [String(p.ports.imap), 'alice']))!.trim().split('\n');
      expect(alice[0]).to.equal('OK');
      expect(alice, alice.join(' | ')).to.include('"" (STORAGE 3 4)'); // 1024-octet units, rounded up: ~2.3 KB stored of 4
      expect((await python(QUOTA, [String(p.ports.imap), 'bob']))!.trim().split('\n')).to.include('"" (STORAGE 7 1024)');
    });

    it('exits 2 with one line for a bad size', async () => {
      const r = await runPostern(['--quota', 'lots']);
      expect(r.code).to.equal(2);
      expect(r.stderr.trim()).to.equal('postern: error: --quota: expected a size such as 52428800, 512K, 50M or 2G, got "lots" (see postern --help)');
    });

    it('startMailServer({ quota }) enforces the same', async () => {
      double = await startMailServer({ protocols: ['smtp'], users: ['alice:secret@example.com', 'bob:secret@example.com'], quota: { storage: 4096 } });
      expect(await send(double.ports.smtp!, 'alice@example.com', 5000)).to.equal('552 5.2.2 Mailbox full');
    });
  });
});
