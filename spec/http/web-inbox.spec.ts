import { expect } from 'chai';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { CHROMIUM, CHROMIUM_FLAGS, CHROMIUM_LAUNCH_TIMEOUT_MS } from '../support/chromium.js';

/** Debian's Chromium (`.ci/run` installs it); never a downloaded browser. */

describe('http: the web inbox in headless Chromium', function () {
  this.timeout(CHROMIUM_LAUNCH_TIMEOUT_MS + 60_000);
  let server: RunningMailServer;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let base: string;
  /** Every URL the page (any frame) asked for. */
  const requested: string[] = [];
  const dialogs: string[] = [];
  const remoteHits: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) this.skip(); // needs Debian's chromium package (see .ci/run)
    server = await startMailServer({ protocols: ['smtp'], http: true, users: ['alice:pw@example.test'] });
    base = `http://127.0.0.1:${server.ports.http}`;
    profile = await mkdtemp(path.join(tmpdir(), 'postern-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: CHROMIUM_LAUNCH_TIMEOUT_MS });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => requested.push(r.url()));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  after(async () => {
    await context?.close();
    await server?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });
  afterEach(async () => {
    await server?.purge();
  });

  async function send(message: Mail.Options): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.ports.smtp, requireTLS: true, tls: { ca: server.ca, servername: 'localhost' }, auth: { user: 'alice', pass: 'pw' } });
    try {
      await t.sendMail(message);
    } finally {
      t.close();
    }
  }

  it('shows new mail live, renders its HTML in the sandboxed frame, shows the envelope and TLS facts, and purges', async () => {
    await page.goto(`${base}/`);
    await page.locator('#status', { hasText: 'live' }).waitFor();
    await send({ from: '"App" <app@example.test>', to: 'alice@example.test', subject: 'Welcome to the inbox', text: 'plain', html: '<h1 id="hello" style="color: rgb(200, 0, 0)">Hello inbox</h1>' });
    const item = page.locator('#messages li', { hasText: 'Welcome to the inbox' });
    await item.waitFor(); // no reload: the list follows /api/v1/events
    await item.click();
    const heading = page.frameLocator('#html-frame').locator('#hello');
    await heading.waitFor();
    expect(await heading.textContent()).to.equal('Hello inbox');
    type Styled = { ownerDocument: { defaultView: { getComputedStyle(e: unknown): { color: string } } } };
    expect(await heading.evaluate((e) => (e as unknown as Styled).ownerDocument.defaultView.getComputedStyle(e).color)).to.equal('rgb(200, 0, 0)'); // rendered, with its inline style
    expect(await page.locator('#d-subject').textContent()).to.equal('Welcome to the inbox');
    await page.locator('#tabs button[data-tab="envelope"]').click();
    const envelope = await page.locator('#d-envelope').innerText();
    expect(envelope).to.contain('MAIL FROM\t<app@example.test>').and.contain('Authenticated as\talice');
    expect(envelope).to.match(/TLS\tTLSv1\.[23] TLS_/);
    await page.locator('#tabs button[data-tab="raw"]').click();
    expect(await page.locator('#d-raw').textContent()).to.match(/^Return-Path: <app@example\.test>\r?\nReceived: from /);
    await page.locator('#purge').click();
    await page.locator('#messages li').first().waitFor({ state: 'detached' });
    expect(await page.locator('#count').textContent()).to.equal('0 messages');
    expect(await server.receivedMessages()).to.deep.equal([]);
  });

  it('runs no script from a message: not from its HTML, its subject or its attachment names; loads no remote content', async () => {
    await page.goto(`${base}/`);
    await page.locator('#status', { hasText: 'live' }).waitFor();
    requested.length = 0;
    // A "remote" server on loopback: anything the message makes the browser fetch from elsewhere lands here.
    const remote = http.createServer((req, res) => {
      remoteHits.push(req.url ?? '');
      res.end();
    });
    await new Promise<void>((resolve) => remote.listen(0, '127.0.0.1', resolve));
    const remoteUrl = `http://127.0.0.1:${(remote.address() as AddressInfo).port}`;
    after(() => new Promise<void>((resolve) => remote.close(() => resolve())));
    const evilSubject = '<img src=x onerror="alert(\'subject\')"><script>alert("subject2")</script>';
    await send({
      from: 'evil@example.test',
      to: 'alice@example.test',
      subject: evilSubject,
      html:
        `<p id="body">payload</p><script>alert("html");location="/pwned-script"</script>` +
        `<img src="x" onerror="alert('onerror')"><img src="${remoteUrl}/remote.png"><div style="background:url(${remoteUrl}/bg.png)">bg</div><link rel="stylesheet" href="${remoteUrl}/x.css"><a id="go" href="javascript:alert('link')">x</a>` +
        `<iframe src="javascript:alert('frame')"></iframe><form action="/pwned-form"><button id="submit">go</button></form>`,
      attachments: [{ filename: '<img src=x onerror=alert("att")>.html', content: '<script>alert("att-body")</script>', contentType: 'text/html' }],
    });
    const item = page.locator('#messages li').first();
    await item.waitFor();
    expect(await item.locator('.subject').textContent()).to.equal(evilSubject); // shown as text, not parsed
    await item.click();
    const body = page.frameLocator('#html-frame').locator('#body');
    await body.waitFor();
    expect(await body.textContent()).to.equal('payload');
    await page.frameLocator('#html-frame').locator('#go').click().catch(() => undefined);
    await page.frameLocator('#html-frame').locator('#submit').click().catch(() => undefined);
    await page.locator('#tabs button[data-tab="attachments"]').click();
    expect(await page.locator('#d-attachments a').first().textContent()).to.equal('<img src=x onerror=alert("att")>.html');
    // Everything above has run its course once the page answers a round trip through the server.
    await page.evaluate(() => fetch('api/v1/messages').then((r) => r.status));
    expect(dialogs).to.deep.equal([]);
    expect(requested.filter((u) => /pwned/.test(u))).to.deep.equal([]);
    expect(await page.evaluate("document.querySelectorAll('#messages img, #d-meta img, #d-attachments img').length")).to.equal(0);
    expect(remoteHits).to.deep.equal([]);
  });
});
