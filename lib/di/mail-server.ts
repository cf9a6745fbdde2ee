import type { AddressInfo } from 'node:net';
import type { Container, ContainerModule } from 'inversify';
import { MailStore } from '../contracts/mail-store.js';
import { AcmeCertificateManager } from '../core/acme-certificates.js';
import { ListenerSecuritiesToken } from '../core/listener-securities.js';
import { ServerSecurityToken } from '../core/server-security.js';
import { Logger } from '../log/logger.js';
import { PosternConfig } from './config.js';
import { chaosModule } from './chaos.module.js';
import { httpModule } from './http.module.js';
import { HTTP_PORT, type HttpOptions } from '../http/http-options.js';
import { createContainer } from './create-container.js';
import { Listener } from './listener.js';
import { maildirModule } from './maildir.module.js';
import { memoryModule } from './memory.module.js';
import { postgresModule } from './postgres.module.js';
import { listenerSection, protocolSection, type ProtocolDescriptor } from './protocol-descriptor.js';
import { listenerDescriptor, PROTOCOLS, protocolListeners } from './protocols.js';

/**
 * A listener's name: the six standard mail listeners, `lmtp`, and `http` (the HTTP API and web inbox); a protocol
 * registered in `PROTOCOLS` brings its own names (hence `string` too).
 */
export type ListenerName = 'smtp' | 'smtps' | 'pop3' | 'pop3s' | 'imap' | 'imaps' | 'lmtp' | 'http' | (string & NonNullable<unknown>);
/** Every listener name, from the protocol descriptors, in start order (`http` last, so `/healthz` is up only after the mail listeners). */
export const LISTENER_NAMES: readonly ListenerName[] = [...protocolListeners().map((l) => l.name), 'http'];
/** The listeners on by default: the six mail listeners (the test double's default: `http` only with `http: true`; `lmtp` when asked for). */
export const MAIL_LISTENER_NAMES: readonly ListenerName[] = protocolListeners(PROTOCOLS.filter((p) => p.onByDefault)).map((l) => l.name);

/**
 * Default ports, from the descriptors: GreenMail's convention, the standard port plus 3000 (25 → 3025, 465 → 3465,
 * 110 → 3110, 995 → 3995, 143 → 3143, 993 → 3993, LMTP's 24 → 3024), so Postern can replace it in existing test
 * set-ups and needs no root; the HTTP API and web inbox use 8025, Mailpit's and MailHog's web port.
 */
export const DEFAULT_PORTS: Readonly<Record<ListenerName, number>> = { ...Object.fromEntries(protocolListeners().map((l) => [l.name, l.defaultPort])), http: HTTP_PORT } as Record<ListenerName, number>;

/** {@link PosternConfig} plus the listener selection the CLI and the test double offer. */
export interface MailServerConfig extends PosternConfig {
  /**
   * Listeners to start (default: the six mail listeners; add `http` for the HTTP API and web inbox, `lmtp` for LMTP).
   * A protocol's Unix socket (`lmtp.socket`) is started when configured, whatever this says.
   */
  only?: readonly ListenerName[];
  /** Per-listener ports (override `portOffset`). */
  ports?: Partial<Record<ListenerName, number>>;
  /** Added to every default port (`--port-offset`); ignored for ports set in `ports`. */
  portOffset?: number;
  /** Every listener on port 0 (any free port) unless set in `ports`: the test double's default. */
  anyPort?: boolean;
  /** Port of a plain-HTTP `/metrics` listener on `host` (Prometheus; see `MetricsServer`); absent: none. `postern --metrics-port`. */
  metricsPort?: number;
  /** Extra container modules loaded last (your hooks, backends, rebinding). */
  modules?: readonly ContainerModule[];
  /** The HTTP API and web inbox (when `http` is among the listeners): auth, CORS, own host. */
  http?: HttpOptions;
  /** Fault-injection rules to start with (a `ChaosConfig`; validated, changeable at run time through `ChaosToken`). */
  chaos?: unknown;
}

/** One started listener. */
export interface ReadyListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** `starttls` for the explicit ports, `implicit` for smtps/pop3s/imaps. */
  readonly tls: 'starttls' | 'implicit';
  /** The Unix socket path for a socket listener (`lmtp-socket`); `host` is the path too and `port` is 0. */
  readonly path?: string;
}

/**
 * Builds the container for a whole mail server: core, the store (`memory`, `maildir:PATH` or `postgres://…`), and
 * every registered protocol (`PROTOCOLS`: SMTP, POP3, IMAP, LMTP) with the selected listeners bound, and only those.
 * Protocol sections in `config` are merged, never replaced.
 */
export function createMailServerContainer(config: MailServerConfig = {}): Container {
  const only = new Set(config.only ?? MAIL_LISTENER_NAMES);
  const port = (name: ListenerName): number => listenerPort(config, name);
  const section = (p: ProtocolDescriptor): Record<string, unknown> | false => {
    const given = (config as Record<string, unknown>)[p.section];
    if (given === false) return false;
    const base = (given ?? {}) as Record<string, unknown>;
    const hasSocket = p.unixSocketListener !== undefined && typeof base.socket === 'string';
    if (!hasSocket && !p.listeners.some((l) => only.has(l.name))) return false;
    const listeners = p.listeners.map((l) => [l.name, { ...listenerSection(base, l.name), port: port(l.name), enabled: only.has(l.name) }]);
    return { ...base, ...Object.fromEntries(listeners) };
  };
  const sections = Object.fromEntries(PROTOCOLS.map((p) => [p.section, section(p)]));
  const full: PosternConfig = { ...config, ...sections };
  const modules: ContainerModule[] = [storeModule(config.store)];
  for (const p of PROTOCOLS) if (sections[p.section] !== false) modules.push(p.module);
  modules.push(chaosModule(config.chaos));
  if (only.has('http')) modules.push(httpModule(port('http'), config.http, isListenerEnabled));
  modules.push(...(config.modules ?? []));
  return createContainer(full, modules);
}

/**
 * False when the listener's protocol section is `false` or says `enabled: false`, at its level or the listener's
 * (`config.smtp.smtps.enabled`); for a Unix socket listener, also when no `socket` path is set. Names no registered
 * protocol declares are enabled. Protocol modules loaded through `createContainer` bind only enabled listeners.
 */
export function isListenerEnabled(config: PosternConfig, name: string): boolean {
  const found = listenerDescriptor(name);
  if (!found) return true;
  const section = protocolSection(config, found.protocol.section);
  if (!section) return false;
  if (!found.listener) return typeof section.socket === 'string';
  return listenerSection(section, name).enabled !== false;
}

/** True for a `postgres://` or `postgresql://` store URL. */
export function isPostgresUrl(store: string): boolean {
  return /^postgres(ql)?:\/\//i.test(store);
}

/**
 * The store module for a `--store` value.
 * @throws Error for an unknown store kind.
 */
export function storeModule(store = 'memory'): ContainerModule {
  if (store === 'memory') return memoryModule;
  if (store.startsWith('maildir:') && store.length > 'maildir:'.length) return maildirModule(store.slice('maildir:'.length));
  if (isPostgresUrl(store)) return postgresModule(store);
  throw new Error(`unknown store "${store.replace(/\/\/[^@/]*@/, '//…@')}" (use memory, maildir:PATH or postgres://USER:PASSWORD@HOST:PORT/DB)`);
}

/**
 * A whole mail server: every bound `Listener`, started together and stopped together. Used by the `postern`
 * command and the embedded test double.
 */
export class MailServer {
  private started: Listener[] = [];
  private acmeManager?: AcmeCertificateManager;
  constructor(readonly container: Container) {}

  /** The ACME certificate manager when `config.acme` is set (after {@link start}). */
  get acme(): AcmeCertificateManager | undefined {
    return this.acmeManager;
  }

  /** The mail store every protocol serves. */
  get store(): MailStore {
    return this.container.get(MailStore);
  }

  /**
   * Starts every listener; if one fails (port in use…), the ones already started are closed again and the error
   * is rethrown with the listener's name.
   */
  async start(): Promise<ReadyListener[]> {
    const log = this.container.get(Logger);
    const config = this.container.get(PosternConfig);
    assertOneCertificateSource(config);
    // A store with a start step (PostgreSQL: connect and migrate) fails here, before any listener, not at first use.
    await (this.store as { start?: () => Promise<void> }).start?.();
    for (const user of config.users ?? []) await this.store.users.add({ ...user, addresses: user.addresses ? [...user.addresses] : undefined });
    const postmaster = config.smtp === false ? undefined : config.smtp?.postmaster;
    if (postmaster !== undefined && !config.authDisabled && (await this.store.users.find(postmaster)) === undefined) {
      throw new Error(`postmaster "${postmaster}" is not a user (add it with --user or users)`);
    }
    // Every TLS configuration is loaded and checked now, a STARTTLS listener's own too (not at its first upgrade):
    // bad material stops the start with its CertificateError.
    await this.container.get(ListenerSecuritiesToken, { optional: true })?.prepare();
    const ready: ReadyListener[] = [];
    // Only enabled listeners are bound (see createContainer), so every bound one starts.
    for (const listener of this.container.getAll(Listener)) {
      let addr: AddressInfo;
      try {
        addr = await listener.start();
      } catch (err) {
        await this.stop();
        const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
        const wrapped = new Error(`${listener.name}: ${e.code === 'EADDRINUSE' ? `${hostPort(e.address, e.port)} is already in use` : e.message}`, { cause: err });
        throw Object.assign(wrapped, { code: e.code });
      }
      this.started.push(listener);
      ready.push({
        name: listener.name,
        host: addr.address,
        port: addr.port,
        tls: listener.implicitTls ? 'implicit' : 'starttls',
        ...(addr.family === 'unix' ? { path: addr.address } : {}),
      });
    }
    log.debug('mail server started', { listeners: ready.length });
    if (config.acme) {
      // After the listeners: the CA's TLS-ALPN-01 validation connects to them. Failures are logged and retried;
      // until a certificate arrives the listeners serve the one they have (the generated one at first start).
      this.acmeManager = new AcmeCertificateManager(config.acme, this.container.get(ServerSecurityToken), log.child({ proto: 'acme' }));
      this.acmeManager.start().catch(() => undefined);
    }
    return ready;
  }

  /** Closes every listener (graceful, see TcpServer.close). Idempotent. */
  async stop(): Promise<void> {
    this.acmeManager?.stop();
    const started = this.started;
    this.started = [];
    await Promise.all(started.map((l) => l.close()));
  }
}

/** The port a listener of `config` binds: its own, else 0 with `anyPort`, else the default plus `portOffset`. */
export function listenerPort(config: MailServerConfig, name: ListenerName): number {
  return config.ports?.[name] ?? (config.anyPort ? 0 : DEFAULT_PORTS[name] + (config.portOffset ?? 0));
}

/** @throws Error when `config` names both a certificate and ACME (a start and `postern --check` refuse it alike). */
export function assertOneCertificateSource(config: MailServerConfig): void {
  if (config.acme && config.tls?.certificate) throw new Error('use either a configured certificate or ACME, not both');
}

/** `127.0.0.1:3525`, `[::1]:3525` — the address and port a listen error names (the port alone when the address is unknown). */
function hostPort(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return `port ${port ?? '?'}`;
  return `${address.includes(':') ? `[${address}]` : address}:${port ?? '?'}`;
}
