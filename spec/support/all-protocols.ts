/** A container with SMTP, POP3 and IMAP (all six listeners on port 0), the memory store, a recording logger and alice. */
import type tls from 'node:tls';
import type { Container, ContainerModule } from 'inversify';
import { MailStore } from '../../lib/contracts/mail-store.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { createContainer } from '../../lib/di/create-container.js';
import { imapModule } from '../../lib/di/imap.module.js';
import { Listener } from '../../lib/di/listener.js';
import { memoryModule } from '../../lib/di/memory.module.js';
import { pop3Module } from '../../lib/di/pop3.module.js';
import { smtpModule } from '../../lib/di/smtp.module.js';
import { Logger } from '../../lib/log/logger.js';
import { LineClient } from './line-client.js';
import { testCertificates } from './certs.js';
import { RecordingLogger } from './recording-logger.js';

/** alice's password in {@link startAll}. */
export const PASSWORD = 'open sesame';

/** What {@link startAll} returns. */
export interface AllProtocols {
  readonly container: Container;
  readonly log: RecordingLogger;
  readonly trust: tls.ConnectionOptions;
  port(name: string): number;
  /** A raw client (greeting not read); `tls` for the implicit-TLS listeners; `localAddress` e.g. `127.0.0.2`. */
  connect(name: string, opts?: { localAddress?: string; tls?: boolean }): Promise<LineClient>;
  close(): Promise<void>;
}

/**
 * Starts every listener; `config` is merged over test defaults (idle timeouts, 5 ms failed-login delays); `modules`
 * are loaded after the built-in ones.
 */
export async function startAll(config: PosternConfig = {}, idleTimeoutMs = 10_000, modules: readonly ContainerModule[] = []): Promise<AllProtocols> {
  const certs = await testCertificates();
  const log = new RecordingLogger();
  const container = createContainer(
    {
      tls: { certificate: certs.server },
      ...config,
      smtp: { hostname: 'mx.test', idleTimeoutMs, failedLoginDelayMs: 5, smtp: { port: 0 }, smtps: { port: 0 } },
      pop3: { idleTimeoutMs, failedLoginDelayMs: 5, pop3: { port: 0 }, pop3s: { port: 0 } },
      imap: { ...config.imap, idleTimeoutMs, failedLoginDelayMs: 5, imap: { port: 0 }, imaps: { port: 0 } },
    },
    [memoryModule, smtpModule, pop3Module, imapModule, ...modules],
  );
  container.rebind(Logger).toConstantValue(log);
  const store = container.get(MailStore);
  await store.users.add({ username: 'alice', password: PASSWORD, addresses: ['alice@example.com'] });
  await store.users.add({ username: 'bob', password: 'bob secret', addresses: ['bob@example.com'] });
  const listeners = container.getAll(Listener);
  for (const l of listeners) await l.start();
  const clients: LineClient[] = [];
  const trust: tls.ConnectionOptions = { ca: certs.ca.cert, servername: 'localhost' };
  const port = (name: string): number => {
    const l = listeners.find((x) => x.name === name);
    if (!l) throw new Error(`no listener ${name}`);
    return l.address().port;
  };
  return {
    container,
    log,
    trust,
    port,
    async connect(name, opts = {}) {
      const c = await LineClient.connect(port(name), { localAddress: opts.localAddress, tls: opts.tls ? trust : undefined });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      for (const l of listeners) await l.close();
      await container.unbindAllAsync();
    },
  };
}
