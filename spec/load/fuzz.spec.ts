/**
 * Issue 14, mutation fuzzing: fast-check mutates valid SMTP, POP3 and IMAP sessions (byte flips, control octets,
 * literal announcements, huge runs, truncation, duplication) and plays them against a `postern` process, in
 * plaintext and after STARTTLS/STLS. After every session the process must be alive; at the end its memory must be
 * bounded and no error-level line (our bug) may have been logged. `npm run load` runs many more sessions
 * (FUZZ_RUNS overrides the count, FUZZ_SEED replays one).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { LineClient } from '../support/line-client.js';
import { FULL, report, startLoadServer, type LoadServer } from './load-harness.js';

const PLAIN_AUTH = Buffer.from('\0alice\0secret').toString('base64');

const CORPUS: Record<'smtp' | 'pop3' | 'imap', string[]> = {
  smtp: ['EHLO fuzz.test', 'HELO fuzz.test', `AUTH PLAIN ${PLAIN_AUTH}`, 'AUTH LOGIN', 'MAIL FROM:<bob@remote.test> SIZE=100', 'RCPT TO:<alice@example.test>', 'DATA', 'Subject: x', '', 'body line', '.', 'BDAT 5 LAST', 'hello', 'RSET', 'NOOP', 'VRFY alice', 'QUIT'],
  pop3: ['CAPA', 'USER alice', 'PASS secret', `AUTH PLAIN ${PLAIN_AUTH}`, 'STAT', 'LIST', 'UIDL 1', 'RETR 1', 'TOP 1 0', 'DELE 1', 'RSET', 'NOOP', 'APOP alice 0123456789abcdef0123456789abcdef', 'QUIT'],
  imap: [
    'a CAPABILITY',
    'a LOGIN alice secret',
    'a AUTHENTICATE PLAIN',
    PLAIN_AUTH,
    'a SELECT INBOX',
    'a APPEND INBOX (\\Seen) {5+}',
    'hello',
    'a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)] BODYSTRUCTURE)',
    'a UID SEARCH TEXT {3+}',
    'abc',
    'a STORE 1 +FLAGS (\\Deleted)',
    'a LIST "" *',
    'a STATUS INBOX (MESSAGES UIDNEXT)',
    'a IDLE',
    'DONE',
    'a EXPUNGE',
    'a LOGOUT',
  ],
};

/** Octets that stress framing and parsing. */
const NASTY = fc.constantFrom('\0', '\r', '\n', '\r\n', '{', '}', '{5+}', '{99999999999+}', '~{3}', '"', '\\', '(', ')', '[', ']', '*', '%', '\xff', '\x7f', ' ', '.', '\r\n.\r\n');

const mutation = fc.oneof(
  { weight: 3, arbitrary: fc.constant((l: string) => l) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(), NASTY).map(([at, s]) => (l: string) => l.slice(0, at % (l.length + 1)) + s + l.slice(at % (l.length + 1))) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([at, n]) => (l: string) => l.slice(0, at % (l.length + 1)) + l.slice((at % (l.length + 1)) + n)) },
  { weight: 1, arbitrary: fc.nat({ max: 80_000 }).map((n) => (l: string) => l + 'A'.repeat(n)) },
  { weight: 1, arbitrary: fc.nat().map((at) => (l: string) => l.slice(0, at % (l.length + 1))) },
  { weight: 1, arbitrary: fc.constant((l: string) => l + l) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((junk) => () => junk) },
);

const session = fc.record({
  proto: fc.constantFrom<'smtp' | 'pop3' | 'imap'>('smtp', 'pop3', 'imap'),
  secure: fc.boolean(),
  steps: fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 14 }),
  crlf: fc.constantFrom('\r\n', '\r\n', '\r\n', '\n'),
});

describe('load: mutation fuzzing of SMTP, POP3 and IMAP sessions, plain and after STARTTLS', function () {
  this.timeout(FULL ? 1_200_000 : 90_000);
  let server: LoadServer | undefined;
  after(async () => server?.close());

  it('keeps the process alive, its memory bounded and its log free of errors', async () => {
    server = await startLoadServer(['--pre-auth-timeout', '5', '--command-timeout', '2']);
    const s = server;
    const runs = Number(process.env.FUZZ_RUNS ?? (FULL ? 2000 : 24));
    const rssBefore = s.rssKiB();
    let rssPeak = rssBefore;
    let sessions = 0;
    const started = process.hrtime.bigint();
    await fc.assert(
      fc.asyncProperty(session, async ({ proto, secure, steps, crlf }) => {
        const c = await LineClient.connect(s.ports[proto], { timeoutMs: 3000 });
        try {
          await c.readLine(); // greeting
          if (secure) {
            if (proto === 'smtp') await c.command('EHLO fuzz.test', /^250 /);
            await c.command(proto === 'smtp' ? 'STARTTLS' : proto === 'pop3' ? 'STLS' : 'T STARTTLS', proto === 'imap' ? /^T OK/ : /^(220|\+OK)/);
            await c.startTls(s.trust);
          }
          const corpus = CORPUS[proto];
          c.send(steps.map(([i, mutate]) => mutate(corpus[i % corpus.length])).join(crlf) + '\r\n');
          // A probe: answered, or the session ended; either way the wait is bounded by the client's timeout.
          c.line(proto === 'imap' ? 'zz NOOP' : 'NOOP');
          await c.expect(proto === 'imap' ? /^zz / : /^(250|\+OK|-ERR|421|5\d\d) /).catch(() => undefined);
        } finally {
          await c.close();
        }
        sessions++;
        rssPeak = Math.max(rssPeak, s.rssKiB());
        expect(s.isAlive(), 'server process alive').to.equal(true);
      }),
      { numRuns: runs, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    expect(s.isAlive()).to.equal(true);
    expect(s.errorLines()).to.deep.equal([]);
    // Bounded: whatever the input, the server holds at most a few buffers per session (64 KiB reads, 1 MiB lines skipped).
    expect(rssPeak - rssBefore, 'RSS growth in KiB').to.be.lessThan(256 * 1024);
    report('fuzz', { sessions, seconds, rssBeforeMiB: rssBefore / 1024, rssPeakMiB: rssPeak / 1024, rssEndMiB: s.rssKiB() / 1024 });
  });
});
