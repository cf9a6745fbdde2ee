/** Shared IMAP test harness: a real container with the memory store, both IMAP listeners on port 0, and raw clients. */
import type tls from 'node:tls';
import type { Container, ContainerModule } from 'inversify';
import { MailStore } from '../../lib/contracts/mail-store.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { createContainer } from '../../lib/di/create-container.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import type { ImapOptions } from '../../lib/imap/imap-options.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

/** The test user. */
export const ALICE = { username: 'alice', password: 'open sesame', addresses: ['alice@example.com'] } as const;

/** A running IMAP server for one test. */
export interface ImapHarness {
  /** STARTTLS port. */
  readonly port: number;
  /** Implicit-TLS port. */
  readonly securePort: number;
  readonly store: MailStore;
  readonly certs: DevCertificates;
  readonly container: Container;
  readonly listeners: Listener[];
  /** TLS options trusting the test CA. */
  trust(): tls.ConnectionOptions;
  /** A raw client on the STARTTLS port (greeting not read). */
  connect(): Promise<LineClient>;
  /** A raw client on the implicit-TLS port (greeting not read). */
  connectTls(): Promise<LineClient>;
  /** Connects over implicit TLS, reads the greeting and logs alice in (tag `L`). */
  loginAlice(): Promise<LineClient>;
  /** Delivers a message to alice's INBOX. */
  deliver(raw: string | Buffer): Promise<void>;
  /** Closes clients, listeners and the container. */
  close(): Promise<void>;
}

/** Starts IMAP with short test timeouts; `imap` overrides options, `config` global settings. */
export async function startImap(
  imap: ImapOptions = {},
  config: PosternConfig = {},
  modules: ContainerModule[] = [memoryModule, imapModule],
): Promise<ImapHarness> {
  const certs = await testCertificates();
  const container = createContainer(
    {
      log: { silent: true },
      tls: { certificate: certs.server },
      ...config,
      imap: { failedLoginDelayMs: 5, idleTimeoutMs: 10_000, ...imap, imap: { port: 0 }, imaps: { port: 0 } } satisfies ImapOptions,
    },
    modules,
  );
  const store = container.get(MailStore);
  await store.users.add({ ...ALICE, addresses: [...ALICE.addresses] });
  const listeners = container.getAll(Listener);
  for (const l of listeners) await l.start();
  const byName = (n: string): Listener => {
    const l = listeners.find((x) => x.name === n);
    if (!l) throw new Error(`no listener ${n}`);
    return l;
  };
  const clients: LineClient[] = [];
  const trust = (): tls.ConnectionOptions => ({ ca: certs.ca.cert, servername: 'localhost' });
  const h: ImapHarness = {
    port: byName('imap').address().port,
    securePort: byName('imaps').address().port,
    store,
    certs,
    container,
    listeners,
    trust,
    async connect() {
      const c = await LineClient.connect(h.port);
      clients.push(c);
      return c;
    },
    async connectTls() {
      const c = await LineClient.connect(h.securePort, { tls: trust() });
      clients.push(c);
      return c;
    },
    async loginAlice() {
      const c = await h.connectTls();
      await c.expect(/^\* OK /);
      const lines = await c.command(`L LOGIN alice "${ALICE.password}"`, /^L /);
      if (!lines[lines.length - 1].startsWith('L OK')) throw new Error(`login failed: ${lines.join('|')}`);
      return c;
    },
    async deliver(raw) {
      await store.deliver(ALICE.addresses[0], Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1'));
    },
    async close() {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      for (const l of listeners) await l.close();
      await container.unbindAllAsync();
    },
  };
  return h;
}

/** A small RFC 5322 message with CRLF line ends. */
export function message(subject: string, body = 'Hello.\r\n'): string {
  return `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.com>\r\n\r\n${body}`;
}
