/** Shared POP3 test harness: a real container with the memory store, both POP3 listeners on port 0, and clients. */
import type tls from 'node:tls';
import type { Container } from 'inversify';
import { MailStore } from '../../lib/contracts/mail-store.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { createContainer } from '../../lib/di/create-container.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import type { Pop3Options } from '../../lib/pop3/pop3-options.js';
import { LineClient } from '../support/line-client.js';
import { testCertificates } from '../support/certs.js';

/** The test user: a password with a space, as RFC 1939 PASS permits. */
export const ALICE = { username: 'alice', password: 'open sesame', addresses: ['alice@example.com'] } as const;

/** A running POP3 server for one test. */
export interface Pop3Harness {
  readonly port: number;
  readonly securePort: number;
  readonly store: MailStore;
  readonly certs: DevCertificates;
  readonly container: Container;
  readonly listeners: Listener[];
  /** TLS options trusting the test CA. */
  trust(): tls.ConnectionOptions;
  /** A raw client on the STLS port (greeting not read). */
  connect(): Promise<LineClient>;
  /** A raw client on the implicit-TLS port (greeting not read). */
  connectTls(): Promise<LineClient>;
  /** Connects over implicit TLS, reads the greeting and logs alice in. */
  loginAlice(): Promise<LineClient>;
  /** Delivers a message to alice. */
  deliver(raw: string | Buffer): Promise<void>;
  /** Resolves once nobody holds the user's maildrop lock (the server noticed a dropped client). */
  lockReleased(username: string): Promise<void>;
  /** Closes clients, listeners and the container. */
  close(): Promise<void>;
}

/** Starts POP3 with short test timeouts; `pop3` overrides options, `config` global settings; `prepare` may rebind before anything resolves. */
export async function startPop3(
  pop3: Pop3Options = {},
  config: PosternConfig = {},
  modules = [memoryModule, pop3Module],
  prepare?: (container: Container) => void,
): Promise<Pop3Harness> {
  const certs = await testCertificates();
  const container = createContainer(
    {
      log: { silent: true },
      tls: { certificate: certs.server },
      ...config,
      pop3: { failedLoginDelayMs: 5, idleTimeoutMs: 10_000, ...pop3, pop3: { port: 0 }, pop3s: { port: 0 } } satisfies Pop3Options,
    },
    modules,
  );
  prepare?.(container);
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
  const h: Pop3Harness = {
    port: byName('pop3').address().port,
    securePort: byName('pop3s').address().port,
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
      await c.expect(/^\+OK /);
      await c.command(`USER ${ALICE.username}`, /^\+OK/);
      const [reply] = await c.command(`PASS ${ALICE.password}`, /^[+-]/);
      if (!reply.startsWith('+OK')) throw new Error(`login failed: ${reply}`);
      return c;
    },
    async deliver(raw) {
      await store.deliver(ALICE.addresses[0], Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1'));
    },
    async lockReleased(username) {
      for (let i = 0; i < 1000; i++) {
        const release = await store.lock(username, 'spec').catch(() => undefined);
        if (release) return release();
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error('lock never released');
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
  return `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\n\r\n${body}`;
}
