import { expect } from 'chai';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { SmtpBackend, SmtpHooks, type Envelope, type SmtpSession } from '../../lib/smtp/smtp-backend.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { startSmtp, storedTexts, type SmtpFixture } from './smtp-harness.js';
import type { LineClient } from '../support/line-client.js';
import { allMessages } from '../../lib/test-double/store-queries.js';
import { supportsWatch } from '../../lib/contracts/mail-store.js';

async function envelope(c: LineClient, extra = ''): Promise<void> {
  c.send(`MAIL FROM:<bob@remote.test>${extra}\r\nRCPT TO:<alice@example.com>\r\n`);
  await c.expect(/^250 2\.1\.5 /);
}

/** A promise with its resolve function. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('smtp: DATA, BDAT, SIZE, bare LF and streaming', () => {
  let f: SmtpFixture;
  afterEach(async () => {
    await f?.close();
  });

  it('refuses MAIL FROM with a SIZE over the limit early (552 5.3.4, RFC 1870)', async () => {
    f = await startSmtp({ smtp: { maxMessageSize: 1000 } });
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<bob@remote.test> SIZE=1001', /^5/)).to.deep.equal(['552 5.3.4 Message size exceeds fixed maximum message size (1000)']);
    expect(await c.command('MAIL FROM:<bob@remote.test> SIZE=x', /^5/)).to.deep.equal(['501 5.5.4 Bad SIZE value']);
    expect(await c.command('MAIL FROM:<bob@remote.test> SIZE=1000', /^2/)).to.have.length(1);
  });

  it('answers 552 after reading an oversized body to its end, then accepts the next transaction', async () => {
    f = await startSmtp({ smtp: { maxMessageSize: 1000 } });
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: big\r\n\r\n' + 'x'.repeat(78).concat('\r\n').repeat(100) + '.\r\n');
    expect(await c.readLine()).to.equal('552 5.3.4 Message size exceeds fixed maximum message size (1000)');
    expect(await storedTexts(f.store)).to.deep.equal([]);
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: small\r\n\r\nok\r\n.\r\n');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 /);
    expect(await storedTexts(f.store)).to.have.length(1);
  });

  it('refuses a body with a bare LF with 550 5.6.2 and never lets LF.LF end it (default rule)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: smuggle\r\n\r\nx\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<alice@example.com>\r\n.\r\n');
    expect(await c.readLine()).to.equal('550 5.6.2 Bare LF not allowed in message (RFC 5321 section 2.3.8)');
    expect(await c.command('NOOP', /^2/)).to.deep.equal(['250 2.0.0 OK']);
    expect(await c.command('RCPT TO:<alice@example.com>', /^5/)).to.match(/^503 /);
    expect(await storedTexts(f.store)).to.deep.equal([]);
  });

  it('normalizes bare LF to CRLF with bareLf: normalize', async () => {
    f = await startSmtp({ smtp: { bareLf: 'normalize' } });
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: lf\n\nline1\nline2\r\n.\r\n');
    await c.expect(/^250 /);
    const [raw] = await storedTexts(f.store);
    expect(raw.endsWith('Subject: lf\r\n\r\nline1\r\nline2\r\n')).to.equal(true);
  });

  it('takes BDAT chunks, BDAT LAST and BDAT 0 LAST (RFC 3030)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await envelope(c);
    c.send('BDAT 18\r\nSubject: chunk\r\n\r\nBDAT 5\r\nhello');
    expect(await c.expect(/^250 2\.0\.0 5 /)).to.deep.equal(['250 2.0.0 18 octets received', '250 2.0.0 5 octets received']);
    expect(await c.command('DATA', /^5/)).to.match(/^503 /);
    c.send('BDAT 2 LAST\r\n\r\n');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 Message accepted \(25 octets\)/);
    await envelope(c);
    c.send('BDAT 12\r\nSubject: z\r\nBDAT 0 LAST\r\n');
    expect(await c.expect(/^250 2\.0\.0 Message accepted/)).to.have.length(2);
    const texts = await storedTexts(f.store);
    expect(texts[0].endsWith('\r\nSubject: chunk\r\n\r\nhello\r\n')).to.equal(true);
    expect(texts[1].endsWith('\r\nSubject: z\r\n')).to.equal(true);
  });

  it('consumes an out-of-sequence BDAT chunk and answers 503, and refuses oversized BDAT with 552', async () => {
    f = await startSmtp({ smtp: { maxMessageSize: 10 } });
    const c = await f.ehlo();
    c.send('BDAT 6\r\nNOOP\r\nNOOP\r\n');
    expect(await c.expect(/^250 /)).to.deep.equal(['503 5.5.1 Bad sequence of commands: need RCPT before BDAT', '250 2.0.0 OK']);
    await envelope(c);
    c.send('BDAT 20\r\n' + 'y'.repeat(20) + 'BDAT 3 LAST\r\nabcRSET\r\n');
    expect(await c.expect(/^250 /)).to.deep.equal(['552 5.3.4 Message size exceeds fixed maximum message size (10)', '503 5.5.1 Bad sequence of commands: need RCPT before BDAT', '250 2.0.0 OK']);
    expect(await storedTexts(f.store)).to.deep.equal([]);
  });

  it('consumes the chunk of a BDAT with a size but a bad end marker before answering 501 (RFC 3030 §2)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await envelope(c);
    c.send('BDAT 6 LATER\r\nQUIT\r\nNOOP\r\n');
    expect(await c.expect(/^250 /)).to.deep.equal(['501 5.5.4 Syntax error: BDAT <size> [LAST]', '250 2.0.0 OK']);
    expect(c.isClosed).to.equal(false);
  });

  it('says "DATA after BDAT" when DATA follows a BDAT chunk (RFC 3030 §3: 503)', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await envelope(c);
    c.send('BDAT 1\r\nxDATA\r\n');
    expect(await c.expect(/^503 /)).to.deep.equal(['250 2.0.0 1 octets received', '503 5.5.1 Bad sequence of commands: DATA not allowed after BDAT']);
  });

  it('stores a 25 MB message intact and stays responsive', async function () {
    this.timeout(60_000);
    f = await startSmtp();
    const c = await f.ehlo();
    await envelope(c, ' SIZE=26214400');
    const line = Buffer.from('x'.repeat(998) + '\r\n');
    const body = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), ...Array<Buffer>(25 * 1024).fill(line)]);
    await c.command('DATA', /^354 /);
    c.send(body);
    c.send('.\r\n');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 Message accepted \(25600016 octets\)/);
    expect(await c.command('NOOP', /^250 /)).to.have.length(1);
    const [m] = await allMessages(f.store);
    const raw = await m.message.raw();
    const start = raw.indexOf('Subject: big');
    expect(createHash('sha256').update(raw.subarray(start)).digest('hex')).to.equal(createHash('sha256').update(body).digest('hex'));
  });

  it('streams the body to the backend while the client is still sending (bounded memory)', async function () {
    this.timeout(30_000);
    const progress = { bytes: 0, wake: () => undefined as void };
    f = await startSmtp({
      setup: (ct) =>
        ct.bind(SmtpHooks).toConstantValue({
          onData: async (body: Readable) => {
            for await (const chunk of body) {
              progress.bytes += (chunk as Buffer).length;
              progress.wake();
            }
          },
        }),
    });
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    const mb = Buffer.from(('y'.repeat(1022) + '\r\n').repeat(1024));
    const before = process.memoryUsage();
    c.send(mb);
    c.send(mb);
    // The rest is only sent once the consumer has seen the first megabyte: a server that buffered the whole body first would hang here.
    while (progress.bytes < 1024 * 1024) await new Promise<void>((r) => (progress.wake = r));
    for (let i = 0; i < 8; i++) c.send(mb);
    c.send('.\r\n');
    expect(await c.readLine()).to.match(/^250 /);
    const growth = process.memoryUsage().rss - before.rss;
    expect(progress.bytes).to.be.greaterThan(10 * 1024 * 1024);
    expect(growth).to.be.lessThan(200 * 1024 * 1024);
  });

  it('stores nothing when the client vanishes mid-DATA, and keeps serving', async () => {
    const started = deferred();
    f = await startSmtp({
      setup: (ct) =>
        ct.bind(SmtpHooks).toConstantValue({
          onData: async (body: Readable) => {
            for await (const chunk of body) if ((chunk as Buffer).includes('half')) started.resolve();
          },
        }),
    });
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: partial\r\n\r\nhalf a message\r\n');
    await started.promise;
    await c.close();
    const d = await f.ehlo();
    await envelope(d);
    await d.command('DATA', /^354 /);
    d.send('Subject: second\r\n\r\nfull\r\n.\r\n');
    await d.expect(/^250 /);
    const texts = await storedTexts(f.store);
    expect(texts).to.have.length(1);
    expect(texts[0]).to.contain('Subject: second');
  });

  it('keeps a complete message whose client closes right after the final dot', async () => {
    f = await startSmtp();
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    const stored = deferred();
    const store = f.store;
    if (!supportsWatch(store)) throw new Error('the harness store offers MailboxWatching');
    const unwatch = store.watch((e) => e.type === 'exists' && stored.resolve());
    c.raw.end('Subject: hasty\r\n\r\nbye\r\n.\r\n');
    await stored.promise;
    unwatch();
    const texts = await storedTexts(f.store);
    expect(texts).to.have.length(1);
    expect(texts[0]).to.contain('Subject: hasty');
  });

  it('answers 250 only once the backend has stored the message', async () => {
    const gate = deferred();
    const reached = deferred();
    const stored: string[] = [];
    f = await startSmtp({
      setup: (ct) =>
        ct.rebind(SmtpBackend).toConstantValue({
            openSession: async (): Promise<SmtpSession> => ({
              mailFrom: async () => undefined,
              rcptTo: async () => undefined,
              data: async (body: Readable, env: Envelope) => {
                let text = '';
                for await (const chunk of body) text += (chunk as Buffer).toString();
                reached.resolve();
                await gate.promise;
                stored.push(`${env.mailFrom}|${text.length}`);
              },
              reset: () => undefined,
              close: async () => undefined,
            }),
          }),
    });
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: wait\r\n\r\nx\r\n.\r\n');
    await reached.promise;
    await new Promise((r) => setImmediate(r));
    expect(c.pending).to.equal('');
    gate.resolve();
    expect(await c.readLine()).to.match(/^250 /);
    expect(stored).to.have.length(1);
  });

  it('takes a backend that decides MAIL and RCPT synchronously: nothing returned accepts, a thrown refusal goes out as-is, another throw is 451', async () => {
    const seen: string[] = [];
    f = await startSmtp({
      setup: (ct) =>
        ct.rebind(SmtpBackend).toConstantValue({
          openSession: async (): Promise<SmtpSession> => ({
            // Not async: the fast path runs these inside dispatch, where a synchronous throw must be mapped too.
            mailFrom: (from: string) => {
              if (from === 'spam@remote.test') throw new SmtpReplyError(550, '5.7.1', 'Sender refused');
              seen.push(`mail ${from}`);
            },
            rcptTo: (to: string) => {
              if (to === 'boom@example.com') throw new Error('directory exploded');
              seen.push(`rcpt ${to}`);
            },
            data: async (body: Readable) => {
              for await (const chunk of body) void chunk;
              seen.push('data');
            },
            reset: () => undefined,
            close: async () => undefined,
          }),
        }),
    });
    const c = await f.ehlo();
    expect(await c.command('MAIL FROM:<spam@remote.test>', /^\d{3} /)).to.deep.equal(['550 5.7.1 Sender refused']);
    expect(await c.command('MAIL FROM:<bob@remote.test>', /^\d{3} /)).to.deep.equal(['250 2.1.0 Sender <bob@remote.test> OK']);
    expect(await c.command('RCPT TO:<boom@example.com>', /^\d{3} /)).to.deep.equal(['451 4.3.0 Internal error, try again later']);
    expect(await c.command('RCPT TO:<alice@example.com>', /^\d{3} /)).to.deep.equal(['250 2.1.5 Recipient <alice@example.com> OK']);
    expect(await c.command('DATA', /^\d{3} /)).to.deep.equal(['354 End data with <CR><LF>.<CR><LF>']);
    c.send('Subject: sync\r\n\r\nx\r\n.\r\n');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 /);
    expect(seen).to.deep.equal(['mail bob@remote.test', 'rcpt alice@example.com', 'data']);
  });

  it('sends exactly one reply to DATA when the backend reset() throws after storing (the bug is logged, not replied)', async () => {
    f = await startSmtp({
      setup: (ct) =>
        ct.rebind(SmtpBackend).toConstantValue({
          openSession: async (): Promise<SmtpSession> => ({
            mailFrom: async () => undefined,
            rcptTo: async () => undefined,
            data: async (body: Readable) => {
              for await (const chunk of body) void chunk;
            },
            reset: () => {
              throw new Error('reset exploded');
            },
            close: async () => undefined,
          }),
        }),
    });
    const c = await f.ehlo();
    await envelope(c);
    await c.command('DATA', /^354 /);
    c.send('Subject: x\r\n\r\nx\r\n.\r\nNOOP\r\n');
    expect(await c.expect(/^250 2\.0\.0 OK/)).to.deep.equal(['250 2.0.0 Message accepted (17 octets)', '250 2.0.0 OK']);
  });

  describe('a backend with dataChunks (whole messages, no stream)', () => {
    /** A backend recording which of its two body methods ran and what it got; `refuse` makes dataChunks reject. */
    function chunkBackend(log: string[], refuse?: Error): { openSession(): Promise<SmtpSession> } {
      return {
        openSession: async (): Promise<SmtpSession> => ({
          mailFrom: async () => undefined,
          rcptTo: async () => undefined,
          data: async (body: Readable) => {
            let text = '';
            for await (const chunk of body) text += (chunk as Buffer).toString('latin1');
            log.push(`data:${text}`);
          },
          dataChunks: async (chunks: readonly Buffer[], size: number, env: Envelope) => {
            const text = Buffer.concat(chunks).toString('latin1');
            log.push(`chunks:${size}:${env.mailFrom}:${text}`);
            if (refuse) throw refuse;
          },
          reset: () => undefined,
          close: async () => undefined,
        }),
      };
    }

    it('gets the dot-unstuffed message with the Received header first, its exact size, and 250 after it resolved', async () => {
      const log: string[] = [];
      f = await startSmtp({ setup: (ct) => ct.rebind(SmtpBackend).toConstantValue(chunkBackend(log)) });
      const c = await f.ehlo();
      await envelope(c);
      await c.command('DATA', /^354 /);
      c.send('Subject: dots\r\n\r\n..leading\r\n.\r\n');
      expect(await c.readLine()).to.equal('250 2.0.0 Message accepted (27 octets)');
      expect(log).to.have.length(1);
      const [, size, from, ...rest] = log[0].split(':');
      const text = rest.join(':');
      expect(from).to.equal('bob@remote.test');
      expect(text).to.match(/^Received: from /);
      expect(text.endsWith('\r\nSubject: dots\r\n\r\n.leading\r\n')).to.equal(true);
      expect(Number(size)).to.equal(Buffer.byteLength(text, 'latin1'));
    });

    it('is not called for a body refused for its size, nor when a hook reads the body (data gets it then)', async () => {
      const log: string[] = [];
      f = await startSmtp({ smtp: { maxMessageSize: 100 }, setup: (ct) => ct.rebind(SmtpBackend).toConstantValue(chunkBackend(log)) });
      const c = await f.ehlo();
      await envelope(c);
      await c.command('DATA', /^354 /);
      c.send('Subject: big\r\n\r\n' + 'x'.repeat(200) + '\r\n.\r\n');
      expect(await c.readLine()).to.match(/^552 5\.3\.4 /);
      expect(log).to.deep.equal([]);
      await f.close();
      const read: string[] = [];
      f = await startSmtp({
        setup: (ct) => {
          ct.rebind(SmtpBackend).toConstantValue(chunkBackend(log));
          ct.bind(SmtpHooks).toConstantValue({
            onData: async (body: Readable) => {
              for await (const chunk of body) read.push((chunk as Buffer).toString('latin1'));
            },
          });
        },
      });
      const d = await f.ehlo();
      await envelope(d);
      await d.command('DATA', /^354 /);
      d.send('Subject: hooked\r\n\r\nx\r\n.\r\n');
      expect(await d.readLine()).to.match(/^250 2\.0\.0 /);
      expect(log).to.have.length(1);
      expect(log[0]).to.match(/^data:Received: from [^]*Subject: hooked\r\n\r\nx\r\n$/);
      expect(read.join('')).to.equal(log[0].slice('data:'.length));
    });

    it('answers its refusal (SmtpReplyError) as the reply to the body', async () => {
      const log: string[] = [];
      f = await startSmtp({ setup: (ct) => ct.rebind(SmtpBackend).toConstantValue(chunkBackend(log, new SmtpReplyError(554, '5.7.1', 'Not wanted'))) });
      const c = await f.ehlo();
      await envelope(c);
      await c.command('DATA', /^354 /);
      c.send('Subject: no\r\n\r\nx\r\n.\r\n');
      expect(await c.readLine()).to.equal('554 5.7.1 Not wanted');
      expect(log).to.have.length(1);
      expect(await c.command('NOOP', /^2/)).to.deep.equal(['250 2.0.0 OK']);
    });
  });
});
