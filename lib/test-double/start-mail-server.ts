import '../vendor/inversify.js'; // first: the global Reflect metadata API (reflect-metadata/lite, inside the inversify bundle)
import type { CertificateLoginOption } from '../backends/certificate-login-mappers.js';
import type { Container, ContainerModule } from 'inversify';
import { readFile } from 'node:fs/promises';
import { ServerSecurityToken, splitPemList, type ServerSecurity, type ServerSecurityOptions } from '../core/server-security.js';
import { MailStore } from '../contracts/mail-store.js';
import type { QuotaOptions } from '../contracts/quota.js';
import type { DsnRelayOptions } from '../smtp/dsn-relay.js';
import { createMailServerContainer, MailServer, MAIL_LISTENER_NAMES, type ListenerName, type MailServerConfig } from '../di/mail-server.js';
import type { LoggerOptions } from '../log/logger.js';
import type { ImapOptions } from '../imap/imap-options.js';
import type { Pop3Options } from '../pop3/pop3-options.js';
import type { SmtpOptions } from '../smtp/smtp-options.js';
import type { SmtpHooks } from '../smtp/smtp-backend.js';
import { SmtpServer } from '../smtp/smtp-server.js';
import { LmtpServer } from '../lmtp/lmtp-server.js';
import type { LmtpOptions } from '../lmtp/lmtp-options.js';
import { ChaosToken, type Chaos, type ChaosConfig } from '../chaos/chaos.js';
import { HttpListener } from '../http/http-listener.js';
import type { HttpOptions } from '../http/http-options.js';
import { parseUserSpec, type UserSpec } from './user-spec.js';
import { MessageCatalog, type ReceivedMessage } from './received-message.js';
import { testDoubleCertificates } from './dev-tls.js';

export type { ReceivedMessage, MailAddress, ReceivedAttachment } from './received-message.js';

/** Options of {@link startMailServer}. Everything is optional. */
export interface MailServerOptions {
  /**
   * Listeners to start (default the six mail ones: smtp, smtps, pop3, pop3s, imap, imaps; add `lmtp` for LMTP, and
   * `http` or set `http`).
   */
  protocols?: readonly ListenerName[];
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Fixed ports; unlisted listeners get a free port (port 0), so parallel test files never collide. */
  ports?: Partial<Record<ListenerName, number>>;
  /** Users: `"login:password@domain"` strings or objects. */
  users?: ReadonlyArray<string | UserSpec>;
  /** Any login works and unknown recipients get a mailbox (GreenMail's auth-disabled mode). Default false. */
  authDisabled?: boolean;
  /** Allow AUTH/LOGIN/USER before TLS (default false: tests exercise TLS like production). */
  allowInsecureAuth?: boolean;
  /**
   * TLS settings; by default the process's development CA (made once per process and cached, so later servers
   * start fast) and a localhost certificate signed by it (see `ca`).
   */
  tls?: ServerSecurityOptions;
  /**
   * SASL EXTERNAL from client certificates (`'cn'`, `'email'` or a fingerprint table, see `PosternConfig.certLogin`);
   * ask for certificates with `tls: { requestClientCertificate: true, trustedCertificates }`.
   */
  certLogin?: CertificateLoginOption;
  /** `memory` (default), `maildir:PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` (shared with other nodes). */
  store?: string;
  /** Logging (default: silent). */
  log?: LoggerOptions;
  /** Protocol sections passed through (`smtp: { maxMessageSize }`, …); listener ports come from `ports`. */
  smtp?: SmtpOptions;
  pop3?: Pop3Options;
  imap?: ImapOptions;
  /** LMTP options (with `protocols` naming `lmtp`); `lmtp: { socket: PATH }` also listens on that Unix socket. */
  lmtp?: LmtpOptions;
  /** With your own `tls.certificate`: the CA (PEM) clients should trust, reported back as `ca`. */
  ca?: string;
  /**
   * Storage quota (RFC 9208), in octets: `{ storage }` for every user, `users` per canonical username. Past it SMTP
   * and LMTP answer `552 5.2.2`, IMAP APPEND/COPY `NO [OVERQUOTA]`, and IMAP offers QUOTA.
   */
  quota?: QuotaOptions;
  /** With `smtp.dsn`: where delivery notices for senders that are not local go (an SMTP relay); see `PosternConfig.dsnRelay`. */
  dsnRelay?: DsnRelayOptions;
  /** Extra container modules (your hooks, or rebinding). */
  modules?: readonly ContainerModule[];
  /** PROXY protocol on the listeners (see `PosternConfig.proxyProtocol`): `{ trusted: ['127.0.0.1/32'] }`. */
  proxyProtocol?: MailServerConfig['proxyProtocol'];
  /**
   * Fault injection to start with: `{ rules: [{ protocol: 'smtp', stage: 'rcpt', reply: '451 4.3.0 try later', times: 1 }], seed: 7 }`
   * (see `ChaosRule`); change it later with `server.chaos.set(…)` / `clear()`.
   */
  chaos?: ChaosConfig;
  /**
   * Also start the HTTP API and web inbox (`server.ports.http`, on a free port unless `ports.http`): `true`, or its
   * options (`{ auth: 'user:password', cors: 'http://localhost:3000' }`).
   */
  http?: boolean | HttpOptions;
  /** SMTP hooks that {@link RunningMailServer.setSmtpHooks} can replace later (run after hooks bound in `modules`). */
  smtpHooks?: readonly SmtpHooks[];
}

/** A running test double. */
export interface RunningMailServer {
  /** Bind address. */
  readonly host: string;
  /** The port of every started listener. */
  readonly ports: Readonly<Partial<Record<ListenerName, number>>>;
  /**
   * PEM to trust in clients: the generated CA; with your own `tls.certificate`, `options.ca` if given, else the
   * last certificate of the configured chain (the leaf itself when it is self-signed); empty when unknown (PFX).
   */
  readonly ca: string;
  /** The container, for `get`/`rebind` in advanced tests. */
  readonly container: Container;
  /** The mail store all protocols share. */
  readonly store: MailStore;
  /**
   * Replaces the runtime SMTP hooks (those of `options.smtpHooks`) while the server runs: live sessions use the new
   * list from their next command on. `[]` removes them; hooks bound through `modules` stay.
   */
  setSmtpHooks(hooks: readonly SmtpHooks[]): void;
  /** The fault injector: `set(config)` replaces the rules (throws `ChaosConfigError`), `clear()`, `state` (with counts). */
  readonly chaos: Chaos;
  /** Adds a user (`"login:password@domain"` or an object). */
  addUser(user: string | UserSpec): Promise<void>;
  /**
   * Every stored message, oldest first, parsed once (later calls reuse the parse; flags are read fresh), with display
   * names, `messageId`, `date`, `flags`, typed `headers` and the raw octets.
   */
  receivedMessages(): Promise<ReceivedMessage[]>;
  /**
   * Resolves with the first message (oldest first) for which `predicate` is true, already stored or arriving within
   * `timeoutMs` (default 5 s).
   * @throws Error on timeout, naming every message seen (`waitForMessage: no message matched after 200 ms; saw 1 message(s): alice/INBOX uid 1 "Hi" from …`).
   */
  waitForMessage(predicate: (message: ReceivedMessage) => boolean, timeoutMs?: number): Promise<ReceivedMessage>;
  /**
   * Resolves once at least `count` messages are stored (by SMTP, APPEND or anything else), with all of them.
   * @throws Error after `timeoutMs` (default 5 s) saying how many arrived.
   */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Deletes every message (users stay). */
  purge(): Promise<void>;
  /** Stops every listener and closes live sessions. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts an embedded mail server for tests — GreenMail for Node. By default all six listeners on free ports of
 * 127.0.0.1, an in-memory store, TLS with a fresh CA (trust `server.ca`), and AUTH only after TLS.
 *
 * ```ts
 * const server = await startMailServer({ users: ['alice:secret@example.test'] });
 * // … send with nodemailer to server.ports.smtp, read with imapflow on server.ports.imaps …
 * await server.stop();
 * ```
 */
export async function startMailServer(options: MailServerOptions = {}): Promise<RunningMailServer> {
  let ca: string | undefined = options.ca;
  let tls = options.tls;
  if (!tls?.certificate) {
    const extra = options.host && !['127.0.0.1', '::1', 'localhost'].includes(options.host) ? [options.host] : [];
    const dev = await testDoubleCertificates(['localhost', '127.0.0.1', '::1', ...extra]);
    tls = { ...tls, certificate: dev.server };
    ca ??= dev.ca.cert;
  }
  const config: MailServerConfig = {
    host: options.host ?? '127.0.0.1',
    only: [...new Set([...(options.protocols ?? MAIL_LISTENER_NAMES), ...(options.http ? (['http'] as const) : [])])],
    http: typeof options.http === 'object' ? options.http : undefined,
    ports: options.ports,
    anyPort: true,
    authDisabled: options.authDisabled,
    allowInsecureAuth: options.allowInsecureAuth,
    ...(options.certLogin !== undefined ? { certLogin: options.certLogin } : {}),
    tls,
    store: options.store,
    log: options.log ?? { silent: true },
    users: (options.users ?? []).map((u) => (typeof u === 'string' ? parseUserSpec(u) : u)),
    smtp: options.smtp,
    pop3: options.pop3,
    imap: options.imap,
    lmtp: options.lmtp,
    modules: options.modules,
    proxyProtocol: options.proxyProtocol,
    chaos: options.chaos,
    ...(options.quota !== undefined ? { quota: options.quota } : {}),
    ...(options.dsnRelay !== undefined ? { dsnRelay: options.dsnRelay } : {}),
  };
  const container = createMailServerContainer(config);
  const server = new MailServer(container);
  const httpListener = container.isBound(HttpListener) ? container.get(HttpListener) : undefined;
  // SMTP and LMTP share the hooks: the runtime ones apply to both.
  const smtpServers = [SmtpServer, LmtpServer].filter((t) => container.isBound(t)).map((t) => container.get<SmtpServer>(t));
  for (const s of smtpServers) s.setRuntimeHooks(options.smtpHooks ?? []);
  let ready: Awaited<ReturnType<MailServer['start']>>;
  try {
    ready = await server.start();
  } catch (err) {
    // A start that fails after the store opened (bad users, postmaster, TLS material) releases it, and every
    // listener already bound: an embedding test process must still be able to exit (a PostgreSQL pool would hold it).
    await server.stop();
    await container.unbindAllAsync();
    throw err;
  }
  const store = container.get(MailStore);
  ca ??= await trustAnchorOf(container.get(ServerSecurityToken));
  const ports: Partial<Record<ListenerName, number>> = {};
  for (const l of ready) if (l.path === undefined) ports[l.name as ListenerName] = l.port;
  let stopped = false;

  // One parse cache for receivedMessages() and the HTTP API.
  const catalog = httpListener?.catalog ?? new MessageCatalog(store);

  return {
    host: config.host ?? '127.0.0.1',
    ports,
    ca: ca ?? '',
    container,
    store,
    chaos: container.get(ChaosToken),
    setSmtpHooks: (hooks) => {
      for (const s of smtpServers) s.setRuntimeHooks(hooks);
    },
    addUser: async (u) => store.users.add(typeof u === 'string' ? parseUserSpec(u) : u),
    receivedMessages: () => catalog.list(),
    waitForMessage: (predicate, timeoutMs = 5_000) => catalog.waitFor(predicate, timeoutMs),
    waitForMessages: (count, timeoutMs = 5_000) => catalog.waitForCount(count, timeoutMs),
    purge: async () => {
      await catalog.purge();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await container.unbindAllAsync();
    },
  };
}

/** The top of the configured chain: what a client must trust to verify this server (undefined for PFX). */
async function trustAnchorOf(security: ServerSecurity): Promise<string | undefined> {
  const source = security.options.certificate;
  if (!source) return undefined;
  let pem: string;
  if ('cert' in source) pem = `${String(source.cert)}\n${source.chain ? String(source.chain) : ''}`;
  else if ('certFile' in source) pem = (await readFile(source.certFile, 'utf8')) + (source.chainFile ? '\n' + (await readFile(source.chainFile, 'utf8')) : '');
  else return undefined;
  const all = splitPemList(pem);
  return all[all.length - 1];
}
