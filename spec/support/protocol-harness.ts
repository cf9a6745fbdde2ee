/** The part every protocol harness shares: a real container on port 0 with the memory store, a user, and clients. */
import type tls from 'node:tls';
import type { Container, ContainerModule } from 'inversify';
import { MailStore } from '../../lib/contracts/mail-store.js';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import type { PosternConfig } from '../../lib/di/config.js';
import { createContainer } from '../../lib/di/create-container.js';
import { Listener } from '../../lib/di/listener.js';
import { LineClient } from './line-client.js';
import { testCertificates } from './certs.js';

/** A running server for one test: both listeners of one protocol. */
export interface ProtocolHarness {
  /** The plaintext (STARTTLS/STLS) listener's port. */
  readonly port: number;
  /** The implicit-TLS listener's port. */
  readonly securePort: number;
  readonly store: MailStore;
  readonly certs: DevCertificates;
  readonly container: Container;
  readonly listeners: Listener[];
  /** TLS options trusting the test CA. */
  trust(): tls.ConnectionOptions;
  /** A raw client on the plaintext port (greeting not read). */
  connect(): Promise<LineClient>;
  /** A raw client on the implicit-TLS port (greeting not read). */
  connectTls(): Promise<LineClient>;
  /** Closes clients, listeners and the container. */
  close(): Promise<void>;
}

/** What {@link startProtocol} builds. */
export interface ProtocolHarnessOptions {
  /** Config; `log` (silent) and `tls` (the test server certificate) are filled in unless given. */
  config: PosternConfig;
  modules: ContainerModule[];
  /** Listener names, e.g. `pop3` and `pop3s`. */
  plain: string;
  secure: string;
  users: ReadonlyArray<{ username: string; password: string; addresses?: readonly string[] }>;
  /** Rebinds before anything resolves. */
  prepare?: (container: Container) => void;
}

/** Starts the listeners of one protocol on port 0 with the given users. */
export async function startProtocol(o: ProtocolHarnessOptions): Promise<ProtocolHarness> {
  const certs = await testCertificates();
  const container = createContainer({ log: { silent: true }, tls: { certificate: certs.server }, ...o.config }, o.modules);
  o.prepare?.(container);
  const store = container.get(MailStore);
  for (const u of o.users) await store.users.add({ ...u, addresses: u.addresses ? [...u.addresses] : undefined });
  const listeners = container.getAll(Listener);
  for (const l of listeners) await l.start();
  const portOf = (name: string): number => {
    const l = listeners.find((x) => x.name === name);
    if (!l) throw new Error(`no listener ${name}`);
    return l.address().port;
  };
  const port = portOf(o.plain);
  const securePort = portOf(o.secure);
  const clients: LineClient[] = [];
  const trust = (): tls.ConnectionOptions => ({ ca: certs.ca.cert, servername: 'localhost' });
  const track = (c: LineClient): LineClient => {
    clients.push(c);
    return c;
  };
  return {
    port,
    securePort,
    store,
    certs,
    container,
    listeners,
    trust,
    connect: async () => track(await LineClient.connect(port)),
    connectTls: async () => track(await LineClient.connect(securePort, { tls: trust() })),
    async close() {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      for (const l of listeners) await l.close();
      await container.unbindAllAsync();
    },
  };
}
