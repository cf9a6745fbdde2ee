import { expect } from 'chai';
import { ContainerModule } from 'inversify';
import { Transform } from 'node:stream';
import { SmtpHooks } from '../../lib/smtp/smtp-backend.js';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { startLmtp, storedByUser, type LmtpFixture } from './lmtp-harness.js';

describe('lmtp: onHeader edits apply to LMTP deliveries (the shared SMTP body delivery)', () => {
  let f: LmtpFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('every recipient gets the edited header and transformed body; a refusal is answered once per recipient, nothing stored', async () => {
    const hooks = new ContainerModule(({ bind }) => {
      bind(SmtpHooks).toConstantValue({
        async onHeader(header) {
          if (header.get('Subject') === 'refuse') return { scan: async () => Promise.reject(new SmtpReplyError(550, '5.7.1', 'Refused by policy')) };
          header.set('X-Spam-Score', '0.5');
          return { body: new Transform({ transform: (c: Buffer, _e, done) => done(null, Buffer.from(c.toString('latin1').toUpperCase(), 'latin1')) }) };
        },
      });
    });
    f = await startLmtp({}, [hooks]);
    const c = await f.connect();
    await c.command('LHLO client.test', /^250 /);
    const send = async (subject: string): Promise<string[]> => {
      c.send(`MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n`);
      for (let i = 0; i < 4; i++) await c.readLine();
      c.send(`Subject: ${subject}\r\n\r\nhello\r\n.\r\n`);
      return [await c.readLine(), await c.readLine()];
    };
    expect(await send('refuse')).to.deep.equal(['550 5.7.1 <alice@example.com> Refused by policy', '550 5.7.1 <carol@example.com> Refused by policy']);
    expect(await storedByUser(f.store)).to.deep.equal({});
    expect((await send('ok')).map((r) => r.slice(0, 4))).to.deep.equal(['250 ', '250 ']);
    const stored = await storedByUser(f.store);
    for (const user of ['alice', 'carol']) expect(stored[user]?.[0]).to.match(/\r\nSubject: ok\r\nX-Spam-Score: 0\.5\r\n\r\nHELLO\r\n$/);
  });
});
