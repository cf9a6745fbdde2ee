import { expect } from 'chai';
import { Transform, type Readable } from 'node:stream';
import { ContainerModule, type Container } from 'inversify';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { MessageChange } from '../../lib/smtp/message-editor.js';
import type { MessageHeader } from '../../lib/smtp/message-header.js';
import { SmtpBackend, SmtpHooks, type Envelope, type SmtpHooks as Hooks, type SmtpSession } from '../../lib/smtp/smtp-backend.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { SmtpServer } from '../../lib/smtp/smtp-server.js';
import { PASSWORD, startAll, type AllProtocols } from '../support/all-protocols.js';
import { startSmtp, storedTexts, type SmtpFixture } from './smtp-harness.js';
import { pythonBytes as python } from '../support/python.js';

const bind =
  (...hooks: Hooks[]) =>
  (ct: Container): void => {
    for (const h of hooks) ct.bind(SmtpHooks).toConstantValue(h);
  };

/** The same hooks as a module (for `startAll`). */
const hooksModule = (...hooks: Hooks[]): ContainerModule[] => [
  new ContainerModule(({ bind: b }) => {
    for (const h of hooks) b(SmtpHooks).toConstantValue(h);
  }),
];

/** A body transform that upper-cases ASCII letters (chunk by chunk: streaming). */
const upperCase = (): Transform =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      done(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
    },
  });

/** A spam-score hook like the README's: reads the whole body (`scan`), then sets the header. */
const spamScore: Hooks = {
  async onHeader(header: MessageHeader) {
    return {
      scan: async (body: Readable) => {
        let text = '';
        for await (const chunk of body) text += (chunk as Buffer).toString('latin1');
        const score = (text.match(/viagra/gi) ?? []).length * 2.5;
        header.set('X-Spam-Score', score.toFixed(1));
        header.set('Subject', `${score > 4 ? '[SPAM] ' : ''}${header.get('Subject') ?? ''}`);
      },
    };
  },
};

/** Sends one message over a raw session (DATA); resolves with the reply to the dot. */
async function sendData(f: SmtpFixture, body: string): Promise<string> {
  const c = await f.ehlo();
  c.send('MAIL FROM:<bob@x.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
  await c.expect(/^354 /);
  c.send(body + '\r\n.\r\n');
  const reply = await c.readLine();
  await c.command('QUIT', /^221 /);
  return reply;
}

describe('smtp: onHeader hooks change the message before it is stored', function () {
  this.timeout(30_000);

  describe('with real clients, read back over IMAP and POP3', () => {
    let all: AllProtocols;
    afterEach(async () => {
      await all?.close();
    });

    it('nodemailer → a spam score added after scanning and the Subject replaced, seen by imapflow', async () => {
      all = await startAll({}, 10_000, hooksModule(spamScore));
      const t = nodemailer.createTransport({ host: '127.0.0.1', port: all.port('smtp'), secure: false, tls: { ...all.trust } });
      try {
        await t.sendMail({ from: 'bob@x.test', to: 'alice@example.com', subject: 'cheap', text: 'viagra viagra\nviagra' });
        await t.sendMail({ from: 'bob@x.test', to: 'alice@example.com', subject: 'hello', text: 'lunch?' });
      } finally {
        t.close();
      }
      const client = new ImapFlow({ host: '127.0.0.1', port: all.port('imaps'), secure: true, tls: { ...all.trust }, auth: { user: 'alice', pass: PASSWORD }, logger: false });
      await client.connect();
      try {
        await client.mailboxOpen('INBOX');
        const got: Array<{ subject?: string; source: string }> = [];
        for await (const m of client.fetch('1:*', { envelope: true, source: true })) got.push({ subject: m.envelope?.subject, source: m.source!.toString('latin1') });
        expect(got.map((m) => m.subject)).to.deep.equal(['[SPAM] cheap', 'hello']);
        const [spam, ham] = got.map((m) => m.source);
        expect(spam).to.match(/\r\nX-Spam-Score: 7\.5\r\n/);
        expect(ham).to.match(/\r\nX-Spam-Score: 0\.0\r\n/);
        // Exactly one Subject; the Received field is still first (after Return-Path) and the body is untouched.
        expect(spam.match(/^Subject:/gim)).to.have.length(1);
        expect(spam).to.match(/^Return-Path: <bob@x\.test>\r\nReceived: from /);
        expect(spam.split('\r\n\r\n').slice(1).join('\r\n\r\n')).to.equal('viagra viagra\r\nviagra\r\n');
      } finally {
        await client.logout();
      }
    });

    it('Python smtplib → a body transform; dot lines and CRLF survive, POP3 RETR and IMAP give the same octets', async function () {
      const upper: Hooks = {
        async onHeader(header) {
          header.add('X-Transformed', 'upper-case');
          return { body: upperCase() };
        },
      };
      // Runs after `upper` (binding order): writes bare LFs and lines starting with a dot, stored as CRLF.
      const footer: Hooks = {
        onHeader: async () => ({
          body: new Transform({
            transform: (chunk: Buffer, _enc, done) => done(null, chunk),
            flush: (done) => done(null, Buffer.from('.\n..footer\n.')),
          }),
        }),
      };
      all = await startAll({}, 10_000, hooksModule(upper, footer));
      const script = `
import smtplib, poplib, imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=None)
ctx.load_verify_locations(cadata=sys.argv[4])
msg = b'Subject: dots\\r\\n\\r\\n.leading dot\\r\\n.\\r\\nlast line\\r\\n'
with smtplib.SMTP('127.0.0.1', int(sys.argv[1])) as s:
    s.starttls(context=ctx)
    s.sendmail('bob@x.test', ['alice@example.com'], msg)
p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[2]), context=ctx)
p.user('alice'); p.pass_(sys.argv[5])
resp, lines, octets = p.retr(1)
p.quit()
i = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[3]), ssl_context=ctx)
i.login('alice', sys.argv[5]); i.select('INBOX')
typ, data = i.fetch('1', '(RFC822)')
i.logout()
sys.stdout.buffer.write(b'\\r\\n'.join(lines) + b'\\r\\n' + b'=====' + data[0][1])
`;
      const stdout = await python(script, [String(all.port('smtp')), String(all.port('pop3s')), String(all.port('imaps')), String(all.trust.ca), PASSWORD]);
      if (stdout === undefined) return this.skip();
      const [viaPop3, viaImap] = stdout.toString('latin1').split('=====');
      expect(viaPop3).to.equal(viaImap);
      const body = viaImap.slice(viaImap.indexOf('\r\n\r\n') + 4);
      expect(body).to.equal('.LEADING DOT\r\n.\r\nLAST LINE\r\n.\r\n..footer\r\n.\r\n');
      expect(viaImap).to.match(/\r\nSubject: dots\r\nX-Transformed: upper-case\r\n\r\n/);
      expect(viaImap).to.not.match(/(?<!\r)\n/);
    });
  });

  describe('limits, refusals and streaming', () => {
    let f: SmtpFixture;
    afterEach(async () => {
      await f?.close();
    });

    it('untouched fields keep their exact octets (folding, odd spacing); edits land where asked', async () => {
      f = await startSmtp({
        setup: bind({
          async onHeader(h) {
            h.prepend('X-Top', 'first');
            h.set('subject', 'replaced');
            h.remove('X-Drop');
            h.add('X-Bottom', 'folded\r\n value');
          },
        }),
      });
      const raw = 'From:  <bob@x.test>\r\nSubject: one\r\nX-Long: a\r\n\tb\r\nX-Drop: 1\r\nSubject: two\r\nX-Drop: 2\r\n\r\nbody';
      expect(await sendData(f, raw)).to.match(/^250 /);
      const [stored] = await storedTexts(f.store);
      expect(stored).to.match(/^Return-Path: <bob@x\.test>\r\nX-Top: first\r\nReceived: from client\.test/);
      expect(stored.slice(stored.indexOf('From:'))).to.equal('From:  <bob@x.test>\r\nsubject: replaced\r\nX-Long: a\r\n\tb\r\nX-Bottom: folded\r\n value\r\n\r\nbody\r\n');
    });

    it('BDAT: the header split across chunks is edited, the transformed body stored', async () => {
      const onHeader = async (h: MessageHeader): Promise<MessageChange> => {
        h.add('X-Chunked', 'yes');
        return { body: upperCase() };
      };
      f = await startSmtp({ setup: bind({ onHeader }) });
      const c = await f.ehlo();
      const parts = ['Subject: chu', 'nked\r\n', '\r\nsmall body\r\n'];
      c.send('MAIL FROM:<bob@x.test>\r\nRCPT TO:<alice@example.com>\r\n');
      await c.expect(/^250 /);
      await c.expect(/^250 /);
      for (const [i, p] of parts.entries()) {
        c.send(`BDAT ${p.length}${i === parts.length - 1 ? ' LAST' : ''}\r\n${p}`);
        await c.expect(/^250 /);
      }
      const [stored] = await storedTexts(f.store);
      expect(stored.slice(stored.indexOf('Subject:'))).to.equal('Subject: chunked\r\nX-Chunked: yes\r\n\r\nSMALL BODY\r\n');
    });

    it('maxMessageSize holds on the edited message: 552 5.3.4 when a transform grows it, nothing stored', async () => {
      const grow = new Transform({ transform: (chunk: Buffer, _e, done) => done(null, Buffer.concat([chunk, chunk])) });
      let first = true;
      f = await startSmtp({
        smtp: { maxMessageSize: 100 },
        setup: bind({
          onHeader: async () => {
            const t = first ? grow : undefined;
            first = false;
            return { body: t };
          },
        }),
      });
      const body = 'Subject: s\r\n\r\n' + 'x'.repeat(60);
      expect(await sendData(f, body)).to.equal('552 5.3.4 Message size exceeds fixed maximum message size (100)');
      expect(await storedTexts(f.store)).to.deep.equal([]);
      // The same message without the growth fits (the server's Received field is not counted).
      expect(await sendData(f, body)).to.match(/^250 /);
      expect(await storedTexts(f.store)).to.have.length(1);
    });

    it('a message of exactly maxMessageSize is refused once a hook adds a field (the limit is on what is stored)', async () => {
      const body = 'Subject: s\r\n\r\n' + 'y'.repeat(100 - 'Subject: s\r\n\r\n'.length - 2);
      let add = false;
      f = await startSmtp({ smtp: { maxMessageSize: 100 }, setup: bind({ onHeader: async (h) => void (add && h.add('X-A', 'b')) }) });
      expect(await sendData(f, body)).to.match(/^250 /);
      add = true;
      expect(await sendData(f, body)).to.equal('552 5.3.4 Message size exceeds fixed maximum message size (100)');
      expect(await storedTexts(f.store)).to.have.length(1);
    });

    it('refusals: onHeader, scan and a destroyed body stream each give their exact reply and store nothing', async () => {
      let mode = '';
      f = await startSmtp({
        setup: bind({
          async onHeader(h) {
            if (mode === 'header') throw new SmtpReplyError(554, '5.7.1', `Refused: ${h.get('Subject')}`);
            if (mode === 'scan') return { scan: async () => Promise.reject(new SmtpReplyError(550, '5.7.1', 'Spam score too high')) };
            if (mode === 'body') {
              const t = new Transform({ transform: (_c, _e, done) => done(new SmtpReplyError(552, '5.6.0', 'Body rejected by filter')) });
              return { body: t };
            }
            if (mode === 'bug') throw new Error('secret internals');
          },
        }),
      });
      const replies: string[] = [];
      for (mode of ['header', 'scan', 'body', 'bug']) replies.push(await sendData(f, 'Subject: no\r\n\r\nbody'));
      expect(replies).to.deep.equal([
        '554 5.7.1 Refused: no',
        '550 5.7.1 Spam score too high',
        '552 5.6.0 Body rejected by filter',
        '451 4.3.0 Internal error, try again later',
      ]);
      expect(await storedTexts(f.store)).to.deep.equal([]);
      mode = '';
      expect(await sendData(f, 'Subject: yes\r\n\r\nbody')).to.match(/^250 /);
    });

    it('a header block over 1 MiB is refused with 552 5.3.4 after the dot', async () => {
      f = await startSmtp({ setup: bind({ onHeader: async () => undefined }) });
      const long = 'X-Big: ' + 'z'.repeat(900) + '\r\n';
      expect(await sendData(f, long.repeat(1200) + '\r\nbody')).to.equal('552 5.3.4 Message header exceeds 1048576 octets');
      expect(await storedTexts(f.store)).to.deep.equal([]);
    });

    it('streams: the backend has the edited header and transformed body start before the client sent the rest', async () => {
      const seen: Buffer[] = [];
      let notify: () => void = () => undefined;
      const backend = {
        async openSession(): Promise<SmtpSession> {
          return {
            mailFrom: async () => undefined,
            rcptTo: async () => undefined,
            async data(body: Readable, _env: Envelope) {
              for await (const chunk of body) {
                seen.push(chunk as Buffer);
                notify();
              }
            },
            reset: () => undefined,
            close: async () => undefined,
          };
        },
      };
      f = await startSmtp({
        setup: (ct) => {
          ct.rebind(SmtpBackend).toConstantValue(backend);
          const onHeader = async (h: MessageHeader): Promise<MessageChange> => {
            h.add('X-Seen', 'early');
            return { body: upperCase() };
          };
          bind({ onHeader })(ct);
        },
      });
      const c = await f.ehlo();
      c.send('MAIL FROM:<bob@x.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
      await c.expect(/^354 /);
      const arrived = new Promise<void>((resolve) => {
        notify = () => {
          if (Buffer.concat(seen).includes('FIRST PART')) resolve();
        };
      });
      c.send('Subject: s\r\n\r\nfirst part\r\n');
      await arrived;
      // The DATA reader may hold back the last CRLF (it could start the terminator), nothing more.
      expect(Buffer.concat(seen).toString()).to.match(/X-Seen: early\r\n\r\nFIRST PART(\r\n)?$/);
      c.send('second part\r\n.\r\n');
      expect(await c.readLine()).to.match(/^250 /);
      expect(Buffer.concat(seen).toString()).to.match(/\r\n\r\nFIRST PART\r\nSECOND PART\r\n$/);
    });

    it('runtime hooks (the test double\'s setSmtpHooks) edit too, from the next message on', async () => {
      f = await startSmtp();
      expect(await sendData(f, 'Subject: a\r\n\r\nbody')).to.match(/^250 /);
      f.container.get(SmtpServer).setRuntimeHooks([{ onHeader: async (h) => void h.set('Subject', 'b') }]);
      expect(await sendData(f, 'Subject: a\r\n\r\nbody')).to.match(/^250 /);
      expect((await storedTexts(f.store)).map((t) => /\r\nSubject: (\w)/.exec(t)?.[1])).to.deep.equal(['a', 'b']);
    });

    it('onData sees the edited message, as stored', async () => {
      let read = '';
      f = await startSmtp({
        setup: bind(
          { onHeader: async (h) => void h.set('X-Tag', 'edited') },
          {
            async onData(body: Readable) {
              for await (const chunk of body) read += (chunk as Buffer).toString('latin1');
            },
          },
        ),
      });
      expect(await sendData(f, 'Subject: s\r\n\r\nbody')).to.match(/^250 /);
      const [stored] = await storedTexts(f.store);
      expect(read).to.match(/X-Tag: edited\r\n/);
      expect('Return-Path: <bob@x.test>\r\n' + read).to.equal(stored);
    });
  });
});
