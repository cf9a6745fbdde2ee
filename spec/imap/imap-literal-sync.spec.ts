/**
 * Issue 14, literal safety: every refused literal — bad syntax, too big, LITERAL+ or not — leaves the connection in
 * step. Its announced octets are dropped unread or the session ends; they are never run as commands.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { LineClient } from '../support/line-client.js';
import { startImap, type ImapHarness } from './imap-harness.js';

/** Small limits so that every refusal path is reachable with short payloads. */
const LIMITS = { maxLiteralSize: 1000, maxLineLength: 200 };

/** Reads lines until one matches `last` or the server closes; never throws. */
async function readUntil(c: LineClient, last: RegExp): Promise<{ lines: string[]; closed: boolean }> {
  const lines: string[] = [];
  for (;;) {
    let line: string;
    try {
      line = await c.readLine();
    } catch {
      return { lines, closed: true };
    }
    lines.push(line);
    if (last.test(line)) return { lines, closed: false };
  }
}

async function login(h: ImapHarness): Promise<LineClient> {
  return h.loginAlice();
}

describe('imap: refused literals never run as commands', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImap(LIMITS);
  });
  after(async () => h.close());

  const cases: Array<{ name: string; send: string; expect: string[]; closes?: true }> = [
    {
      name: 'a count with 22 digits of leading zeros is the number 5: its octets are the literal',
      send: 'a APPEND INBOX {0000000000000000000005+}\r\nb NOOP\r\n',
      expect: ['a BAD Expected space'],
    },
    {
      name: 'a count beyond 32 bits cannot be skipped: BAD, then BYE',
      send: 'a APPEND INBOX {99999999999999999999+}\r\nb NOOP\r\n',
      expect: ['a BAD [TOOBIG] Literal too big', '* BYE Refused literal cannot be skipped, closing'],
      closes: true,
    },
    {
      name: 'a malformed non-synchronizing announcement ({5 +}): BAD, then BYE',
      send: 'a APPEND INBOX {5 +}\r\nb NOOP\r\n',
      expect: ['a BAD Invalid literal', '* BYE Refused literal cannot be skipped, closing'],
      closes: true,
    },
    {
      name: 'a LITERAL+ over the command limit that can be dropped: BAD [TOOBIG], its octets and the rest of the command dropped',
      send: `a SELECT {${'b NOOP\r\n'.length * 40}+}\r\n${'b NOOP\r\n'.repeat(40)} rest\r\n`,
      expect: ['a BAD [TOOBIG] Literal too big'],
    },
    {
      name: 'an APPEND over the size limit announced with LITERAL+ is more than the session drops: NO [TOOBIG], then BYE',
      send: 'a APPEND INBOX {1001+}\r\n' + 'b NOOP\r\n'.repeat(125) + 'b\r\n',
      expect: ['a NO [TOOBIG] Message too big', '* BYE Refused literal cannot be skipped, closing'],
      closes: true,
    },
    {
      name: 'a syntax error on a line that announces LITERAL+: BAD, the literal dropped',
      send: 'a FROB( {8+}\r\nb NOOP\r\n\r\n',
      expect: ['a BAD Invalid command name'],
    },
    {
      name: 'an over-long line that ends in a LITERAL+ announcement: BAD at once, the literal dropped',
      send: `a APPEND INBOX ${'x'.repeat(300)} {8+}\r\nb NOOP\r\n\r\n`,
      expect: ['* BAD Line too long'],
    },
    {
      name: 'a literal announced on a continuation line that is refused: the second literal is dropped too',
      send: 'a SEARCH TEXT {3+}\r\nabc TEXT x( {8+}\r\nb NOOP\r\n\r\n',
      expect: ['a BAD Unexpected character'],
    },
  ];

  for (const t of cases) {
    it(t.name, async () => {
      const c = await login(h);
      c.send(t.send);
      c.line('z NOOP');
      const { lines, closed } = await readUntil(c, /^z /);
      expect(lines.filter((l) => !/^\* (\d+ (EXISTS|RECENT)|OK \[)/.test(l))).to.deep.equal(t.closes ? t.expect : [...t.expect, 'z OK NOOP completed']);
      expect(closed).to.equal(t.closes === true);
    });
  }

  it('property: whatever literal a refused or accepted command announces, a command inside its octets never runs', async function () {
    this.timeout(120_000);
    const runs = Number(process.env.FUZZ_RUNS ?? 40);
    const command = fc.constantFrom('APPEND INBOX', 'APPEND Nowhere', 'APPEND INBOX (\\Seen) "bad date"', 'SELECT', 'LOGIN alice', 'FROB', 'NOOP', 'SEARCH TEXT', 'STATUS INBOX (MESSAGES', 'UID FETCH 1:* BODY[');
    const scenario = fc.record({
      loggedIn: fc.boolean(),
      command: fc.oneof(command, fc.string({ unit: fc.constantFrom('a', 'B', ' ', '(', ')', '"', '\\', '[', '*', '%', '~', '{', '}', '1'), maxLength: 12 })),
      padding: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat({ max: 260 }) }),
      zeros: fc.nat({ max: 24 }),
      count: fc.oneof(fc.constant<'exact' | 'huge' | 'garbage'>('exact'), fc.constant<'exact' | 'huge' | 'garbage'>('huge'), fc.constant<'exact' | 'huge' | 'garbage'>('garbage')),
      plus: fc.constantFrom('+', '+', '+', '', ' +', '+ ', '++'),
      binary: fc.boolean(),
      canaries: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 60 }) }, { weight: 1, arbitrary: fc.integer({ min: 100, max: 150 }) }),
      tail: fc.constantFrom('', ')', ' x', ' {3+}\r\nabc', ']'),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const c = s.loggedIn ? await login(h) : await h.connectTls();
        try {
          if (!s.loggedIn) await c.expect(/^\* OK/);
          const payload = Array.from({ length: s.canaries }, (_, i) => `c${i} NOOP\r\n`).join('');
          const digits = s.count === 'exact' ? '0'.repeat(s.zeros) + payload.length : s.count === 'huge' ? '9'.repeat(11 + s.zeros) : `${payload.length}x`;
          const announce = `${s.binary ? '~' : ''}{${digits}${s.plus}}`;
          const line = `a ${s.command}${' '.repeat(s.padding)} ${announce}`;
          // A client waits for "+" before sending a synchronizing literal; anything else it sends at once.
          const sync = !s.plus.includes('+');
          c.line(line);
          let send = true;
          if (sync) {
            const r = await readUntil(c, /^(\+ |a |\* BYE)/);
            send = !r.closed && r.lines[r.lines.length - 1].startsWith('+ ');
          }
          if (send) c.send(payload + s.tail + '\r\n');
          c.line('z NOOP');
          const { lines, closed } = await readUntil(c, /^z /);
          const ran = lines.filter((l) => /^c\d+ /.test(l));
          expect(ran, `${JSON.stringify(line)} → ${JSON.stringify(lines)}`).to.deep.equal([]);
          if (closed) expect(lines.some((l) => l.startsWith('* BYE')), JSON.stringify(lines)).to.equal(true);
          else expect(lines[lines.length - 1]).to.equal('z OK NOOP completed');
        } finally {
          await c.close();
        }
      }),
      { numRuns: runs, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
  });
});

describe('imap: LITERAL- (RFC 7888 §5) when LITERAL+ is turned off', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImap({ literalPlus: false });
  });
  after(async () => h.close());

  it('advertises LITERAL- and not LITERAL+', async () => {
    const c = await h.loginAlice();
    const lines = await c.command('c CAPABILITY', /^c /);
    const caps = lines.find((l) => l.startsWith('* CAPABILITY '))!.split(' ');
    expect(caps).to.include('LITERAL-');
    expect(caps).not.to.include('LITERAL+');
  });

  it('reads a non-synchronizing literal of exactly 4096 octets without a continuation', async () => {
    const c = await h.loginAlice();
    const body = 'Subject: minus\r\n\r\n' + 'x'.repeat(4096 - 18);
    c.send(`a APPEND INBOX {4096+}\r\n${body}\r\n`);
    const { lines } = await readUntil(c, /^a /);
    expect(lines.some((l) => l.startsWith('+'))).to.equal(false);
    expect(lines[lines.length - 1]).to.match(/^a OK \[APPENDUID \d+ \d+\] APPEND completed$/);
  });

  it('refuses a 4097-octet non-synchronizing literal with BAD [TOOBIG], drops its octets and stays in step', async () => {
    const c = await h.loginAlice();
    const payload = 'b NOOP\r\n'.repeat(512) + 'x';
    expect(payload.length).to.equal(4097);
    c.send(`a APPEND INBOX {4097+}\r\n${payload}\r\n`);
    c.line('z NOOP');
    const { lines, closed } = await readUntil(c, /^z /);
    expect(closed).to.equal(false);
    expect(lines.filter((l) => !/^\* (\d+ (EXISTS|RECENT)|OK \[)/.test(l))).to.deep.equal([
      'a BAD [TOOBIG] Non-synchronizing literal larger than 4096 octets, use {N}',
      'z OK NOOP completed',
    ]);
  });

  it('still takes a synchronizing literal of any size up to the APPEND limit', async () => {
    const c = await h.loginAlice();
    const body = 'Subject: sync\r\n\r\n' + 'y'.repeat(10_000);
    c.line(`a APPEND INBOX {${body.length}}`);
    await c.expect(/^\+ /);
    c.send(`${body}\r\n`);
    await c.expect(/^a OK \[APPENDUID /);
  });
});
