/**
 * Strict ALPN (RFC 7301 §3.2, RFC 9325 §3.8): a TLS client that offers application protocols without the listener's
 * own (`smtp`, `pop3`, `imap`) is refused with a `no_application_protocol` alert, so a browser's HTTPS request sent to
 * a mail port (the ALPACA cross-protocol attacks) never reaches a session. Clients that offer no ALPN, as mail clients
 * do, are unaffected. Played by Node's TLS client, openssl s_client, curl and headless Chromium.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { chromium } from 'playwright-core';
import type { PeerInfo } from '../../lib/contracts/peer-info.js';
import { ServerSecurity, ServerSecurityToken } from '../../lib/core/server-security.js';
import { startMailServer, type RunningMailServer } from '../../lib/test-double/start-mail-server.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';
import { hasOpenssl, sClient } from '../support/s-client.js';
import { runTool } from '../support/tool.js';
import { CHROMIUM, CHROMIUM_FLAGS, CHROMIUM_LAUNCH_TIMEOUT_MS } from '../support/chromium.js';

/** Debian's Chromium (`.ci/run` installs it); never a downloaded browser. */

/** What a TLS client saw: the negotiated protocol, or the error code of a refused handshake. */
async function handshake(port: number, ca: string, alpn: readonly string[] | undefined): Promise<{ alpn: string | false } | { error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(alpn ? { ALPNProtocols: [...alpn] } : {}) }, () => {
      resolve({ alpn: s.alpnProtocol ?? false });
      s.destroy();
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

const REFUSED = { error: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' };

describe('core: strict ALPN on the TLS listeners', function () {
  this.timeout(60_000);
  let server: RunningMailServer;
  const secured: PeerInfo[] = [];

  before(async () => {
    server = await startMailServer({ users: ['alice:secret@example.com'], smtpHooks: [{ onSecure: async (peer) => void secured.push(peer) }] });
  });
  after(async () => {
    await server?.stop();
  });

  it("accepts a client that offers no ALPN, or the listener's own id (chosen from several), and refuses one offering only others", async () => {
    const ids = { smtps: 'smtp', pop3s: 'pop3', imaps: 'imap' } as const;
    for (const [listener, id] of Object.entries(ids) as [keyof typeof ids, string][]) {
      const port = server.ports[listener]!;
      expect(await handshake(port, server.ca, undefined), listener).to.deep.equal({ alpn: false });
      expect(await handshake(port, server.ca, [id]), listener).to.deep.equal({ alpn: id });
      expect(await handshake(port, server.ca, ['h2', 'http/1.1', id]), listener).to.deep.equal({ alpn: id });
      expect(await handshake(port, server.ca, ['h2', 'http/1.1']), listener).to.deep.equal(REFUSED);
      // Another mail protocol's id is refused too: an IMAP client sent to the POP3 port is the same confusion.
      const other = id === 'imap' ? 'pop3' : 'imap';
      expect(await handshake(port, server.ca, [other]), listener).to.deep.equal(REFUSED);
    }
  });

  it('records the negotiated id in the security state (SMTP onSecure hook), and none when the client offered none', async () => {
    secured.length = 0;
    const withAlpn = await LineClient.connect(server.ports.smtps!, { tls: { ca: server.ca, servername: 'localhost', ALPNProtocols: ['smtp'] } });
    await withAlpn.expect(/^220 /);
    await withAlpn.close();
    const without = await LineClient.connect(server.ports.smtps!, { tls: { ca: server.ca, servername: 'localhost' } });
    await without.expect(/^220 /);
    await without.close();
    expect(secured.map((p) => p.security.alpnProtocol)).to.deep.equal(['smtp', undefined]);
  });

  it('applies to STARTTLS too: an ALPN offer without smtp fails the upgrade with the alert, and the session ends', async () => {
    const c = await LineClient.connect(server.ports.smtp!);
    await c.expect(/^220 /);
    await c.command('EHLO client.test', /^250 /);
    await c.command('STARTTLS', /^220 /);
    const err = await c.startTls({ ca: server.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(err).to.equal('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    await c.closed();
  });

  it('openssl s_client: -alpn http/1.1 gets alert 120 (no application protocol), -alpn imap negotiates imap', async function () {
    if (!(await hasOpenssl())) throw new Error('openssl is not installed (.ci/run installs it)');
    const refused = await sClient(server.ports.imaps!, ['-alpn', 'http/1.1', '-servername', 'localhost']);
    expect(refused.stderr).to.match(/alert no application protocol/);
    expect(refused.stderr).to.match(/SSL alert number 120/);
    const accepted = await sClient(server.ports.imaps!, ['-alpn', 'imap', '-servername', 'localhost']);
    expect(accepted.stdout).to.match(/^ALPN protocol: imap$/m);
  });

  it('curl https:// to the IMAPS port (ALPN h2, http/1.1) fails at the handshake with exit 35', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-alpn-'));
    try {
      await writeFile(path.join(dir, 'ca.pem'), server.ca);
      const run = await runTool('curl', ['-sS', '--max-time', '10', '--cacert', path.join(dir, 'ca.pem'), `https://localhost:${server.ports.imaps}/`]);
      if (run === undefined) throw new Error('curl is not installed (.ci/run installs it)');
      expect(run.code).to.equal(35);
      expect(run.stderr).to.match(/no application protocol/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the rule while an ACME TLS-ALPN-01 validation is pending (ALPN then chosen in JavaScript)', async () => {
    const security = server.container.get(ServerSecurityToken);
    const certs = await testCertificates();
    security.acmeChallenges.add('acme.test', certs.server.key, certs.server.cert);
    try {
      const port = server.ports.imaps!;
      expect(await handshake(port, server.ca, ['h2', 'http/1.1'])).to.deep.equal(REFUSED);
      expect(await handshake(port, server.ca, ['http/1.1', 'imap'])).to.deep.equal({ alpn: 'imap' });
      expect(await handshake(port, server.ca, undefined)).to.deep.equal({ alpn: false });
    } finally {
      security.acmeChallenges.remove('acme.test');
    }
  });

  describe('a real browser', function () {
    this.timeout(CHROMIUM_LAUNCH_TIMEOUT_MS + 60_000);
    let profile: string;
    before(function () {
      if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (.ci/run installs Debian's chromium)`);
    });
    afterEach(async () => {
      if (profile) await rm(profile, { recursive: true, force: true });
    });

    /** Navigates headless Chromium (trusting any certificate: the attacker's page has a valid one) to `url`. */
    async function navigate(url: string): Promise<string> {
      profile = await mkdtemp(path.join(os.tmpdir(), 'postern-alpaca-'));
      const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, ignoreHTTPSErrors: true, timeout: CHROMIUM_LAUNCH_TIMEOUT_MS });
      try {
        const page = context.pages()[0] ?? (await context.newPage());
        return await page.goto(url, { timeout: 15_000 }).then(
          (r) => `status ${r?.status()}`,
          (err: Error) => err.message,
        );
      } finally {
        await context.close();
      }
    }

    it('Chromium navigating to https://…:IMAPS/ is refused in the handshake; no IMAP session starts', async () => {
      const result = await navigate(`https://localhost:${server.ports.imaps}/`);
      expect(result).to.match(/net::ERR_SSL_PROTOCOL_ERROR|net::ERR_SSL_NO_APPLICATION_PROTOCOL/);
    });

    it('control: with alpnProtocols false the same navigation reaches the IMAP session, which closes at the GET line', async () => {
      const open = await startMailServer({ protocols: ['imaps'], tls: { alpnProtocols: false } });
      try {
        const result = await navigate(`https://localhost:${open.ports.imaps}/`);
        // The session answered (greeting, then BYE at the GET line), which Chromium does not take as HTTP.
        expect(result).to.match(/net::ERR_INVALID_HTTP_RESPONSE/);
      } finally {
        await open.stop();
      }
    });
  });

  describe('ServerSecurityOptions.alpnProtocols', () => {
    it('replaces the protocol ids with its own list, and false turns ALPN off (any offer accepted, none negotiated)', async () => {
      const own = await startMailServer({ protocols: ['imaps'], tls: { alpnProtocols: ['imap', 'x-postern-test'] } });
      const off = await startMailServer({ protocols: ['imaps'], tls: { alpnProtocols: false } });
      try {
        expect(await handshake(own.ports.imaps!, own.ca, ['x-postern-test'])).to.deep.equal({ alpn: 'x-postern-test' });
        expect(await handshake(own.ports.imaps!, own.ca, ['http/1.1'])).to.deep.equal(REFUSED);
        expect(await handshake(off.ports.imaps!, off.ca, ['http/1.1'])).to.deep.equal({ alpn: false });
      } finally {
        await own.stop();
        await off.stop();
      }
    });

    it('refuses an empty id, one longer than 255 octets, or one with a comma at construction, naming it', () => {
      const why = String.raw`is not a valid ALPN protocol id \(1 to 255 printable ASCII characters, no space or comma; e\.g\. imap\)`;
      expect(() => new ServerSecurity({ alpnProtocols: [''] })).to.throw(new RegExp(`^alpnProtocols: "" ${why}$`));
      expect(() => new ServerSecurity({ alpnProtocols: ['imap', 'x'.repeat(256)] })).to.throw(new RegExp(`^alpnProtocols: "x{40}…" ${why}$`));
      expect(() => new ServerSecurity({ alpnProtocols: ['imap,pop3'] })).to.throw(new RegExp(`^alpnProtocols: "imap,pop3" ${why}$`));
      expect(() => new ServerSecurity({ alpnProtocols: ['http 1.1'] })).to.throw(new RegExp(`^alpnProtocols: "http 1.1" ${why}$`));
      expect(() => new ServerSecurity({ alpnProtocols: ['x'.repeat(255), 'acme-tls/1', 'h2'] })).not.to.throw();
    });
  });
});
