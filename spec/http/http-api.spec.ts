import { expect } from 'chai';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { startMailServer, type MailServerOptions, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { LineClient } from '../support/line-client.js';

describe('http: the HTTP API (/api/v1) over real HTTP', () => {
  const servers: RunningMailServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  async function start(options: MailServerOptions = {}): Promise<{ s: RunningMailServer; base: string }> {
    const s = await startMailServer({ protocols: ['smtp'], http: true, users: ['alice:pw@example.test', 'bob:pw@example.test'], ...options });
    servers.push(s);
    return { s, base: `http://127.0.0.1:${s.ports.http}` };
  }
  async function send(s: RunningMailServer, message: Mail.Options): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.ports.smtp, requireTLS: true, tls: { ca: s.ca, servername: 'localhost' }, auth: { user: 'alice', pass: 'pw' } });
    try {
      await t.sendMail(message);
    } finally {
      t.close();
    }
  }
  async function json(res: Response): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    return res.json();
  }

  it('lists messages newest first with the issue\'s shape, filters and paging', async () => {
    const { s, base } = await start();
    await send(s, { from: '"Ann Sender" <ann@sender.test>', to: 'alice@example.test', bcc: 'bob@example.test', subject: 'first one', text: 'apples' });
    await send(s, { from: 'zed@sender.test', to: 'alice@example.test', subject: 'second', text: 'bananas' });
    await s.waitForMessages(3);
    const all = await json(await fetch(`${base}/api/v1/messages`));
    expect(all.total).to.equal(3);
    expect(all.messages[0].subject).to.equal('second');
    const bobs = await json(await fetch(`${base}/api/v1/messages?to=bob@example.test`));
    expect(bobs.total).to.equal(2); // the Bcc copy (envelope) and bob's own copy
    const first = (await json(await fetch(`${base}/api/v1/messages?user=bob`))).messages[0];
    expect(first).to.include({ subject: 'first one', user: 'bob', mailbox: 'INBOX', uid: 1 });
    expect(first.from).to.deep.equal({ name: 'Ann Sender', address: 'ann@sender.test' });
    expect(first.to).to.deep.equal([{ name: '', address: 'alice@example.test' }]);
    expect(first.envelope).to.include({ mailFrom: 'ann@sender.test', authUser: 'alice' });
    expect(first.envelope.rcptTo).to.deep.equal(['alice@example.test', 'bob@example.test']);
    expect(first.size).to.be.a('number');
    expect((await json(await fetch(`${base}/api/v1/messages?q=bananas`))).messages.map((m: { subject: string }) => m.subject)).to.deep.equal(['second']);
    expect((await json(await fetch(`${base}/api/v1/messages?from=ann&subject=FIRST`))).total).to.equal(2);
    expect((await json(await fetch(`${base}/api/v1/messages?mailbox=inbox&limit=1&offset=1`))).messages.map((m: { subject: string }) => m.subject)).to.deep.equal(['first one']);
  });

  it("returns the envelope's DSN requests and REQUIRETLS as the client gave them (nodemailer's dsn and requireTLSExtensionEnabled)", async () => {
    const { s, base } = await start({ smtp: { dsn: true } });
    await send(s, {
      from: 'ann@sender.test',
      to: 'alice@example.test',
      subject: 'asked for',
      text: 'x',
      dsn: { id: 'order-7', return: 'headers', notify: ['failure', 'delay'], recipient: 'alice@example.test' },
      requireTLSExtensionEnabled: true,
    } as Mail.Options);
    await s.waitForMessages(1);
    const [m] = (await json(await fetch(`${base}/api/v1/messages`))).messages;
    expect(m.envelope.requireTls).to.equal(true);
    expect(m.envelope.dsn).to.deep.equal({ ret: 'HDRS', envid: 'order-7', recipients: [{ notify: ['FAILURE', 'DELAY'], orcpt: { addressType: 'rfc822', address: 'alice@example.test' } }] });
    expect((await json(await fetch(`${base}/api/v1/messages/${encodeURIComponent(m.id)}`))).envelope).to.deep.include({ requireTls: true });
  });

  it('serves one message parsed, its raw source, its HTML sandboxed and its attachments as downloads', async () => {
    const { s, base } = await start();
    await send(s, {
      from: 'ann@sender.test',
      to: 'alice@example.test',
      subject: 'parts',
      text: 'plain',
      html: '<p>rich</p>',
      attachments: [{ filename: 'ré port.txt', content: 'data!', contentType: 'text/plain' }],
    });
    const [m] = await s.waitForMessages(1);
    const detail = await json(await fetch(`${base}/api/v1/messages/${m!.id}`));
    expect(detail).to.include({ subject: 'parts', html: '<p>rich</p>' });
    expect(detail.text.trim()).to.equal('plain');
    expect(detail.headers.find((h: { name: string }) => h.name === 'Subject').value).to.equal('parts');
    expect(detail.attachments).to.deep.equal([{ index: 0, filename: 'ré port.txt', contentType: 'text/plain', size: 5, contentId: null, disposition: 'attachment' }]);
    expect(detail.tls.protocol).to.match(/^TLSv1\.[23]$/);
    const raw = await fetch(`${base}/api/v1/messages/${m!.id}/raw`);
    expect(raw.headers.get('content-type')).to.equal('message/rfc822');
    expect(Buffer.from(await raw.arrayBuffer()).equals(m!.raw)).to.equal(true);
    const html = await fetch(`${base}/api/v1/messages/${m!.id}/html`);
    expect(await html.text()).to.equal('<p>rich</p>');
    expect(html.headers.get('content-security-policy')).to.contain("default-src 'none'").and.contain('sandbox');
    const att = await fetch(`${base}/api/v1/messages/${m!.id}/attachments/0`);
    expect(await att.text()).to.equal('data!');
    expect(att.headers.get('content-disposition')).to.equal(`attachment; filename="r_ port.txt"; filename*=UTF-8''r%C3%A9%20port.txt`);
    expect(att.headers.get('x-content-type-options')).to.equal('nosniff');
    expect((await json(await fetch(`${base}/api/v1/messages/${m!.id}/attachments/1`))).error).to.match(/has no attachment 1/);
  });

  it('deletes one message (204, then 404) and purges (count); bad ids get 4xx JSON', async () => {
    const { s, base } = await start();
    await s.store.deliver('alice@example.test', Buffer.from('Subject: a\r\n\r\n'));
    await s.store.deliver('alice@example.test', Buffer.from('Subject: b\r\n\r\n'));
    const [a] = await s.receivedMessages();
    expect((await fetch(`${base}/api/v1/messages/${a!.id}`, { method: 'DELETE' })).status).to.equal(204);
    const again = await fetch(`${base}/api/v1/messages/${a!.id}`, { method: 'DELETE' });
    expect(again.status).to.equal(404);
    expect(await json(again)).to.deep.equal({ error: `no message ${a!.id}`, statusCode: 404 });
    const bad = await fetch(`${base}/api/v1/messages/not%20an%20id`);
    expect(bad.status).to.equal(400);
    expect((await json(bad)).error).to.equal('params/id must match pattern "^[A-Za-z0-9_-]+$"');
    expect(await json(await fetch(`${base}/api/v1/messages`, { method: 'DELETE' }))).to.deep.equal({ deleted: 1 });
    expect((await s.receivedMessages()).length).to.equal(0);
  });

  it('streams one Server-Sent Event per new message', async () => {
    const { s, base } = await start();
    const ac = new AbortController();
    const res = await fetch(`${base}/api/v1/events`, { signal: ac.signal });
    expect(res.headers.get('content-type')).to.equal('text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    let text = '';
    const until = async (re: RegExp): Promise<RegExpExecArray> => {
      for (;;) {
        const m = re.exec(text);
        if (m) return m;
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += Buffer.from(value).toString('utf8');
      }
    };
    await until(/^retry: \d+\n\n/);
    await send(s, { from: 'ann@sender.test', to: 'alice@example.test', subject: 'live one', text: 'x' });
    const m = await until(/event: message\ndata: (.*)\n\n/);
    const sent = JSON.parse(m[1]!) as { id: string };
    expect(sent).to.include({ subject: 'live one', user: 'alice' });
    await fetch(`${base}/api/v1/messages`, { method: 'DELETE' });
    expect(JSON.parse((await until(/event: deleted\ndata: (.*)\n\n/))[1]!)).to.deep.equal({ id: sent.id });
    ac.abort();
    await reader.cancel().catch(() => undefined);
  });

  it('stops promptly with an event stream still open', async () => {
    const { s, base } = await start();
    const res = await fetch(`${base}/api/v1/events`);
    const reader = res.body!.getReader();
    await reader.read(); // the stream is live
    await s.stop();
    servers.splice(servers.indexOf(s), 1);
    const end = await reader.read().then(
      (r) => (r.done ? 'ended' : 'data'),
      () => 'ended',
    );
    expect(end).to.equal('ended');
  });

  it('manages users: list, add (object or spec), refuse bad input, remove', async () => {
    const { s, base } = await start();
    const post = (body: unknown): Promise<Response> => fetch(`${base}/api/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post({ username: 'carol', password: 'pw', addresses: ['carol@example.test'] })).status).to.equal(201);
    expect(await json(await post({ spec: 'dave:pw@example.test' }))).to.deep.equal({ username: 'dave', addresses: ['dave@example.test'] });
    expect(await json(await post({ spec: 'nocolon' }))).to.deep.equal({ error: 'bad user "nocolon": expected login:password@domain', statusCode: 400 });
    const taken = await post({ username: 'eve', password: 'pw', addresses: ['alice@example.test'] });
    expect(taken.status).to.equal(409);
    expect((await json(await fetch(`${base}/api/v1/users`))).users.map((u: { username: string }) => u.username)).to.deep.equal(['alice', 'bob', 'carol', 'dave']);
    expect((await fetch(`${base}/api/v1/users/carol@example.test`, { method: 'DELETE' })).status).to.equal(204);
    expect((await fetch(`${base}/api/v1/users/carol`, { method: 'DELETE' })).status).to.equal(404);
    expect(await s.store.users.find('carol')).to.equal(undefined);
  });

  it('sets, reads and clears chaos rules that SMTP obeys at once; refuses bad rules and bad JSON with 400', async () => {
    const { base, s } = await start();
    const put = (body: string): Promise<Response> => fetch(`${base}/api/v1/chaos`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
    const rules = { rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 try later', probability: 1, times: 3, match: '*@example.test' }], seed: 7 };
    expect((await put(JSON.stringify(rules))).status).to.equal(200);
    const c = await LineClient.connect(s.ports.smtp!);
    await c.expect(/^220 /);
    await c.command('EHLO x.test', /^250 /);
    await c.command('MAIL FROM:<a@b.test>', /^250 /);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.deep.equal(['451 4.3.0 try later']);
    expect((await json(await fetch(`${base}/api/v1/chaos`))).rules[0]).to.include({ fired: 1, times: 3 });
    expect((await fetch(`${base}/api/v1/chaos`, { method: 'DELETE' })).status).to.equal(204);
    expect(await c.command('RCPT TO:<alice@example.test>', /^\d/)).to.match(/^250 /);
    await c.close();
    expect(await json(await put('{"rules":[{"protocol":"imap","stage":"login","reply":"-ERR no"}]}'))).to.deep.equal({
      error: 'rules[0].reply: not a imap refusal (expected ^(NO|BAD|BYE)( |$))',
      statusCode: 400,
    });
    const broken = await put('{"rules": [');
    expect(broken.status).to.equal(400);
    expect((await json(broken)).error).to.match(/not valid JSON/);
    expect((await json(await put('{"rules":[{"protocol":"ftp","stage":"rcpt","reply":"451 x"}]}'))).error).to.match(/^body\/rules\/0\/protocol must be equal to one of the allowed values/);
  });

  it('answers /healthz, /metrics (Prometheus text) and publishes an OpenAPI description; no CORS header unless asked', async () => {
    const { base, s } = await start();
    const health = await fetch(`${base}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.equal({ status: 'ok' });
    expect(health.headers.get('access-control-allow-origin')).to.equal(null);
    await s.store.deliver('alice@example.test', Buffer.from('Subject: a\r\n\r\n'));
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8');
    expect(await metrics.text()).to.contain('# TYPE postern_messages_stored gauge\npostern_messages_stored 1\n');
    const doc = await json(await fetch(`${base}/api/v1/openapi.json`));
    expect(doc.openapi).to.equal('3.1.0');
    expect(Object.keys(doc.paths)).to.include.members(['/api/v1/messages', '/api/v1/messages/{id}', '/api/v1/messages/{id}/raw', '/api/v1/events', '/api/v1/users/{login}', '/api/v1/chaos']);
    expect((await fetch(`${base}/api/v1/messages`)).headers.get('access-control-allow-origin')).to.equal(null);
  });

  it('with http auth: 401 and a Basic challenge without credentials, 200 with them; /healthz stays open; CORS when asked', async () => {
    const { base } = await start({ http: { auth: 'admin:s3cret', cors: 'http://app.test' } });
    const anon = await fetch(`${base}/api/v1/messages`);
    expect(anon.status).to.equal(401);
    expect(anon.headers.get('www-authenticate')).to.equal('Basic realm="postern"');
    expect(await anon.json()).to.deep.equal({ error: 'Missing or bad formatted authorization header', statusCode: 401 });
    const wrong = await fetch(`${base}/api/v1/messages`, { headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` } });
    expect(wrong.status).to.equal(401);
    const ok = await fetch(`${base}/api/v1/messages`, { headers: { authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` } });
    expect(ok.status).to.equal(200);
    expect(ok.headers.get('access-control-allow-origin')).to.equal('http://app.test');
    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
  });
});
