import type { ContainerModule } from 'inversify';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MailStore } from '../../lib/contracts/mail-store.js';
import { createMailServerContainer, MailServer, type MailServerConfig, type ReadyListener } from '../../lib/di/mail-server.js';
import { allMessages } from '../../lib/test-double/store-queries.js';
import { testCertificates } from '../support/certs.js';
import { LineClient } from '../support/line-client.js';

/** A running LMTP server (plus whatever else `only` names) over a memory store with alice, bob and carol. */
export interface LmtpFixture {
  readonly server: MailServer;
  readonly store: MailStore;
  readonly ready: readonly ReadyListener[];
  port(name: string): number;
  /** A temp dir removed by {@link close} (for socket paths). */
  readonly dir: string;
  /** `<dir>/lmtp.sock`: where the socket listens when started `withSocket`. */
  readonly socketPath: string;
  /** Connects to `lmtp` (TCP) and reads the greeting. */
  connect(): Promise<LineClient>;
  close(): Promise<void>;
}

export const USERS = [
  { username: 'alice', password: 'secret', addresses: ['alice@example.com'] },
  { username: 'bob', password: 'secret', addresses: ['bob@example.com'] },
  { username: 'carol', password: 'secret', addresses: ['carol@example.com'] },
];

/**
 * Starts the server: LMTP on a free port; bob's quota is 10 octets, so any message to bob is over quota. With
 * `withSocket`, also on the Unix socket `<dir>/lmtp.sock` (see {@link LmtpFixture.socketPath}).
 */
export async function startLmtp(config: MailServerConfig = {}, modules: readonly ContainerModule[] = [], withSocket = false): Promise<LmtpFixture> {
  const certs = await testCertificates();
  const dir = await mkdtemp(join(tmpdir(), 'postern-lmtp-'));
  const container = createMailServerContainer({
    only: ['lmtp'],
    anyPort: true,
    log: { silent: true },
    tls: { certificate: certs.server },
    users: USERS,
    quota: { users: { bob: 10 } },
    ...config,
    lmtp: { hostname: 'lmtp.test', ...(withSocket ? { socket: join(dir, 'lmtp.sock') } : {}), ...(config.lmtp || {}) },
    modules,
  });
  const server = new MailServer(container);
  let ready: ReadyListener[];
  try {
    ready = await server.start();
  } catch (err) {
    await container.unbindAllAsync();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const clients: LineClient[] = [];
  const port = (name: string): number => {
    const l = ready.find((r) => r.name === name);
    if (!l) throw new Error(`no ${name} listener`);
    return l.port;
  };
  return {
    server,
    store: server.store,
    ready,
    port,
    dir,
    socketPath: join(dir, 'lmtp.sock'),
    async connect() {
      const c = await LineClient.connect(port('lmtp'));
      clients.push(c);
      await c.expect(/^220 /);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
      await container.unbindAllAsync();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The raw text of every stored message, by username. */
export async function storedByUser(store: MailStore): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const row of await allMessages(store)) (out[row.username] ??= []).push((await row.message.raw()).toString('utf8'));
  return out;
}

/** Connects a line client to a Unix socket path. */
export function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path }, () => resolve(s));
    s.once('error', reject);
  });
}
