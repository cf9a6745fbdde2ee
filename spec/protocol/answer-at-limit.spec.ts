/**
 * Issue 14, "answer at the limit": an over-long command line or a bare LF is answered as soon as it arrives — the
 * client has sent no CRLF when it reads the reply — on SMTP, POP3 and IMAP, in plaintext and after STARTTLS.
 * Past the hard limit (1 MiB without a line end) the session ends with the protocol's goodbye.
 */
import { expect } from 'chai';
import { MAX_SKIPPED_LINE_OCTETS } from '../../lib/protocol/limits.js';
import { startImap } from '../imap/imap-harness.js';
import { startPop3 } from '../pop3/pop3-harness.js';
import { startSmtp } from '../smtp/smtp-harness.js';
import type { LineClient } from '../support/line-client.js';
import type tls from 'node:tls';

/** What the specs need from one protocol. */
interface Proto {
  readonly name: string;
  start(): Promise<{ connect(): Promise<LineClient>; trust(): tls.ConnectionOptions; close(): Promise<void> }>;
  /** Reads the greeting. */
  greeting: RegExp;
  /** Sends the STARTTLS command and awaits its go-ahead. */
  startTls(c: LineClient): Promise<void>;
  /** Longest accepted line (the configured default). */
  maxLine: number;
  tooLong: string;
  bareLf: string;
  runaway: string;
  /** A harmless command and its reply, proving the session is in step. */
  ping: [string, RegExp];
}

const PROTOCOLS: Proto[] = [
  {
    name: 'SMTP',
    start: async () => {
      const f = await startSmtp();
      return { connect: () => f.connect(), trust: () => f.trust(), close: () => f.close() };
    },
    greeting: /^220 /, // read by the SMTP harness
    startTls: async (c) => {
      await c.command('EHLO client.test', /^250 /);
      await c.command('STARTTLS', /^220 /);
    },
    maxLine: 1024,
    tooLong: '500 5.5.2 Line too long',
    bareLf: '500 5.5.2 NUL, bare CR or bare LF not allowed in commands',
    runaway: '421 4.7.0 Line too long, closing connection',
    ping: ['NOOP', /^250 2\.0\.0 OK$/],
  },
  {
    name: 'POP3',
    start: () => startPop3(),
    greeting: /^\+OK /,
    startTls: async (c) => {
      await c.command('STLS', /^\+OK/);
    },
    maxLine: 1024,
    tooLong: '-ERR line too long',
    bareLf: '-ERR bare LF not allowed, lines end with CRLF',
    runaway: '-ERR line too long, closing',
    ping: ['CAPA', /^\.$/],
  },
  {
    name: 'IMAP',
    start: () => startImap(),
    greeting: /^\* OK /,
    startTls: async (c) => {
      await c.command('S STARTTLS', /^S OK/);
    },
    maxLine: 64 * 1024,
    tooLong: '* BAD Line too long',
    bareLf: '* BAD Bare LF not allowed, lines end with CRLF',
    runaway: '* BYE Line too long',
    ping: ['p NOOP', /^p OK /],
  },
];

for (const p of PROTOCOLS) {
  for (const secure of [false, true]) {
    describe(`${p.name}: answers at the limit (${secure ? 'after STARTTLS' : 'plaintext'})`, () => {
      let server: Awaited<ReturnType<Proto['start']>> | undefined;
      afterEach(async () => {
        await server?.close();
        server = undefined;
      });

      async function open(): Promise<LineClient> {
        server = await p.start();
        const c = await server.connect();
        if (p.name !== 'SMTP') await c.expect(p.greeting);
        if (secure) {
          await p.startTls(c);
          await c.startTls(server.trust());
        }
        return c;
      }

      it('answers a line over the limit before its CRLF, then drops its rest and goes on', async () => {
        const c = await open();
        c.send('x'.repeat(p.maxLine + 100)); // no CRLF yet
        expect(await c.readLine()).to.equal(p.tooLong);
        c.send('y'.repeat(5000) + '\r\n');
        c.line(p.ping[0]);
        await c.expect(p.ping[1]);
      });

      it('answers a bare LF at once and never runs what follows it on the same line', async () => {
        const c = await open();
        c.send(`${p.ping[0]}\n`); // no CR, no CRLF
        expect(await c.readLine()).to.equal(p.bareLf);
        c.send(`${p.ping[0]}\r\n`); // the rest of the refused line: dropped
        c.line(p.ping[0]);
        const lines = await c.expect(p.ping[1]);
        expect(lines.filter((l) => l === p.bareLf || l === p.tooLong)).to.deep.equal([]);
      });

      it(`ends the session with "${p.runaway}" past ${MAX_SKIPPED_LINE_OCTETS} octets without a line end`, async () => {
        const c = await open();
        const chunk = 'z'.repeat(64 * 1024);
        c.send('z'.repeat(p.maxLine + 1) + 'z');
        expect(await c.readLine()).to.equal(p.tooLong);
        for (let sent = 0; sent <= MAX_SKIPPED_LINE_OCTETS && !c.isClosed; sent += chunk.length) c.send(chunk);
        expect(await c.readLine()).to.equal(p.runaway);
        await c.closed();
      });
    });
  }
}
