import { expect } from 'chai';
import { SmtpReplyError } from '../../lib/smtp/smtp-replies.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';

describe('lmtp: in the test double (startMailServer)', () => {
  let server: RunningMailServer | undefined;
  let client: LineClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.stop();
    server = client = undefined;
  });

  it('starts LMTP when named in protocols; the envelope says lmtp and runtime hooks apply to LMTP too', async () => {
    server = await startMailServer({ protocols: ['lmtp'], users: ['alice:secret@example.test'] });
    expect(Object.keys(server.ports)).to.deep.equal(['lmtp']);
    const c = (client = await LineClient.connect(server.ports.lmtp!));
    await c.expect(/^220 /);
    await c.command('LHLO client.test', /^250 /);
    c.send('MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
    await c.expect(/^354 /);
    c.send('Subject: double\r\n\r\nhi\r\n.\r\n');
    expect(await c.readLine()).to.match(/^250 2\.0\.0 <alice@example\.test> /);
    const message = await server.waitForMessage((m) => m.subject === 'double');
    expect(message.envelope?.protocol).to.equal('lmtp');
    expect(message.envelope?.rcptTo).to.deep.equal(['alice@example.test']);

    server.setSmtpHooks([{ onRcptTo: async () => Promise.reject(new SmtpReplyError(550, '5.7.1', 'Not today')) }]);
    await c.command('MAIL FROM:<a@remote.test>', /^250 /);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d{3} /)).to.deep.equal(['550 5.7.1 Not today']);
  });

  it('obeys chaos rules for protocol lmtp (an injected RCPT refusal), and smtp rules do not touch LMTP', async () => {
    server = await startMailServer({
      protocols: ['lmtp'],
      users: ['alice:secret@example.test'],
      chaos: { rules: [{ protocol: 'lmtp', stage: 'rcpt', reply: '451 4.3.0 try later', probability: 1, times: 1 }, { protocol: 'smtp', stage: 'mail', reply: '421 4.3.0 smtp only' }] },
    });
    const c = (client = await LineClient.connect(server.ports.lmtp!));
    await c.expect(/^220 /);
    await c.command('LHLO client.test', /^250 /);
    expect(await c.command('MAIL FROM:<a@remote.test>', /^\d{3} /)).to.deep.equal(['250 2.1.0 Sender <a@remote.test> OK']);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d{3} /)).to.deep.equal(['451 4.3.0 try later']);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d{3} /)).to.match(/^250 /); // times: 1
    expect(server.chaos.state.rules[0]).to.include({ fired: 1 });
  });
});
