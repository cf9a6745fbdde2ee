import type tls from 'node:tls';
import type { Container } from 'inversify';
import { MailStore } from '../../lib/contracts/mail-store.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import type { ServerSecurityOptions } from '../../lib/core/server-security.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { createContainer } from '../../lib/di/create-container.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import type { SmtpOptions } from '../../lib/smtp/smtp-options.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';
import { allMessages } from '../../lib/test-double/store-queries.js';

/** A running SMTP server pair for one test. */
export interface SmtpFixture {
  readonly container: Container;
  /** STARTTLS listener port. */
  readonly port: number;
  /** Implicit-TLS listener port. */
  readonly tlsPort: number;
  readonly store: MailStore;
  readonly certs: DevCertificates;
  readonly listeners: Listener[];
  /** Connects a LineClient (plain, or TLS on the implicit port with `implicit`) and reads the greeting. */
  connect(opts?: { implicit?: boolean; tls?: tls.ConnectionOptions; timeoutMs?: number }): Promise<LineClient>;
  /** Connects, reads the greeting, sends EHLO. */
  ehlo(opts?: { implicit?: boolean; tls?: tls.ConnectionOptions }): Promise<LineClient>;
  /** Client TLS options that trust the test CA. */
  trust(): tls.ConnectionOptions;
  close(): Promise<void>;
}

/** Options of {@link startSmtp}. */
export interface StartOptions {
  smtp?: SmtpOptions;
  tls?: Partial<ServerSecurityOptions>;
  config?: Partial<PosternConfig>;
  users?: Array<{ username: string; password: string; addresses?: string[] }>;
  /** Rebinds done before the listeners are resolved (hooks, backend). */
  setup?: (container: Container) => void;
}

/** Starts the real modules in a fresh container on port 0; `close()` stops everything. */
export async function startSmtp(o: StartOptions = {}): Promise<SmtpFixture> {
  const certs = await testCertificates();
  const config: PosternConfig = {
    log: { silent: true },
    tls: { certificate: certs.server, ...o.tls },
    ...o.config,
    smtp: { hostname: 'mx.test', failedLoginDelayMs: 5, smtp: { port: 0 }, smtps: { port: 0 }, ...o.smtp } as Record<string, unknown>,
  };
  const container = createContainer(config, [memoryModule, smtpModule]);
  o.setup?.(container);
  const store = container.get(MailStore);
  for (const u of o.users ?? [{ username: 'alice', password: 'secret', addresses: ['alice@example.com'] }]) await store.users.add(u);
  const listeners = container.getAll(Listener);
  for (const l of listeners) await l.start();
  const byName = (n: string): number => {
    const l = listeners.find((x) => x.name === n);
    if (!l) throw new Error(`no listener ${n}`);
    return l.address().port;
  };
  const clients: LineClient[] = [];
  const trust = (): tls.ConnectionOptions => ({ ca: certs.ca.cert, servername: 'localhost' });
  const fixture: SmtpFixture = {
    container,
    port: byName('smtp'),
    tlsPort: byName('smtps'),
    store,
    certs,
    listeners,
    trust,
    async connect(opts = {}) {
      const c = await LineClient.connect(opts.implicit ? fixture.tlsPort : fixture.port, {
        tls: opts.implicit ? { ...trust(), ...opts.tls } : undefined,
        timeoutMs: opts.timeoutMs,
      });
      clients.push(c);
      await c.expect(/^220 /);
      return c;
    },
    async ehlo(opts = {}) {
      const c = await fixture.connect(opts);
      await c.command('EHLO client.test', /^250 /);
      return c;
    },
    async close() {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(listeners.map((l) => l.close()));
      await container.unbindAllAsync();
    },
  };
  return fixture;
}

/** Upgrades a client with STARTTLS and sends EHLO again; returns the second EHLO reply. */
export async function upgrade(c: LineClient, f: SmtpFixture, extra: tls.ConnectionOptions = {}): Promise<string[]> {
  await c.command('STARTTLS', /^220 /);
  await c.startTls({ ...f.trust(), ...extra });
  return c.command('EHLO client.test', /^250 /);
}

/** Base64 of a SASL PLAIN message. */
export function plainAuth(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString('base64');
}

/** The raw messages in the store, as latin1 text, oldest first. */
export async function storedTexts(store: MailStore): Promise<string[]> {
  const all = await allMessages(store);
  return Promise.all(all.map(async (m) => (await m.message.raw()).toString('latin1')));
}
