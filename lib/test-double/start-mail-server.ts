import 'reflect-metadata';
import type { Container, ContainerModule } from 'inversify';
import { simpleParser, type AddressObject } from 'mailparser';
import { generateDevCertificates } from '../core/dev-certificates.js';
import { readFile } from 'node:fs/promises';
import { ServerSecurityToken, splitPemList, type ServerSecurity, type ServerSecurityOptions } from '../core/server-security.js';
import { MailStore, supportsWatch, type MailboxEvent } from '../contracts/mail-store.js';
import { createMailServerContainer, MailServer, LISTENER_NAMES, type ListenerName, type MailServerConfig } from '../di/mail-server.js';
import type { LoggerOptions } from '../log/logger.js';
import type { ImapOptions } from '../imap/imap-options.js';
import type { Pop3Options } from '../pop3/pop3-options.js';
import type { SmtpOptions } from '../smtp/smtp-options.js';
import { allMessages, purgeMessages } from './store-queries.js';
import { parseUserSpec, type UserSpec } from './user-spec.js';

/** Options of {@link startMailServer}. Everything is optional. */
export interface MailServerOptions {
  /** Listeners to start (default all six: smtp, smtps, pop3, pop3s, imap, imaps). */
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
  /** TLS settings; by default a fresh development CA and a localhost certificate signed by it (see `ca`). */
  tls?: ServerSecurityOptions;
  /** `memory` (default), `maildir:PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` (shared with other nodes). */
  store?: string;
  /** Logging (default: silent). */
  log?: LoggerOptions;
  /** Protocol sections passed through (`smtp: { maxMessageSize }`, …); listener ports come from `ports`. */
  smtp?: SmtpOptions;
  pop3?: Pop3Options;
  imap?: ImapOptions;
  /** With your own `tls.certificate`: the CA (PEM) clients should trust, reported back as `ca`. */
  ca?: string;
  /** Extra container modules (your hooks, or rebinding). */
  modules?: readonly ContainerModule[];
  /** PROXY protocol on the listeners (see `PosternConfig.proxyProtocol`): `{ trusted: ['127.0.0.1/32'] }`. */
  proxyProtocol?: MailServerConfig['proxyProtocol'];
}

/** A message as a test sees it: parsed by mailparser, with the raw source. */
export interface ReceivedMessage {
  /** The mailbox owner. */
  readonly username: string;
  readonly mailbox: string;
  readonly uid: number;
  readonly from?: string;
  readonly to: string[];
  readonly cc: string[];
  readonly subject?: string;
  readonly text?: string;
  readonly html?: string;
  readonly attachments: ReadonlyArray<{ filename?: string; contentType: string; size: number; content: Buffer }>;
  readonly headers: ReadonlyMap<string, unknown>;
  /** The exact octets stored. */
  readonly raw: Buffer;
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
  /** Adds a user (`"login:password@domain"` or an object). */
  addUser(user: string | UserSpec): Promise<void>;
  /** Every stored message, parsed, oldest first. */
  receivedMessages(): Promise<ReceivedMessage[]>;
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
    const dev = await generateDevCertificates({ hosts: ['localhost', '127.0.0.1', '::1', ...(options.host && !['127.0.0.1', '::1', 'localhost'].includes(options.host) ? [options.host] : [])] });
    tls = { ...tls, certificate: dev.server };
    ca ??= dev.ca.cert;
  }
  const config: MailServerConfig = {
    host: options.host ?? '127.0.0.1',
    only: options.protocols ?? LISTENER_NAMES,
    ports: options.ports,
    anyPort: true,
    authDisabled: options.authDisabled,
    allowInsecureAuth: options.allowInsecureAuth,
    tls,
    store: options.store,
    log: options.log ?? { silent: true },
    users: (options.users ?? []).map((u) => (typeof u === 'string' ? parseUserSpec(u) : u)),
    smtp: options.smtp,
    pop3: options.pop3,
    imap: options.imap,
    modules: options.modules,
    proxyProtocol: options.proxyProtocol,
  };
  const container = createMailServerContainer(config);
  const server = new MailServer(container);
  const ready = await server.start();
  const store = container.get(MailStore);
  ca ??= await trustAnchorOf(container.get(ServerSecurityToken));
  const ports: Partial<Record<ListenerName, number>> = {};
  for (const l of ready) ports[l.name as ListenerName] = l.port;
  let stopped = false;

  const receivedMessages = async (): Promise<ReceivedMessage[]> => {
    const all = await allMessages(store);
    return Promise.all(all.map(async ({ username, mailbox, message }) => parseMessage(username, mailbox, message.uid, await message.raw())));
  };

  return {
    host: config.host ?? '127.0.0.1',
    ports,
    ca: ca ?? '',
    container,
    store,
    addUser: async (u) => store.users.add(typeof u === 'string' ? parseUserSpec(u) : u),
    receivedMessages,
    waitForMessages: async (count, timeoutMs = 5_000) => {
      // Counts stored messages, never events: a MOVE emits `exists` without adding a message, a purge removes
      // some. The watch is set before the first count, so a delivery racing it is not missed, and each recount
      // waits for the current store operation to finish (setImmediate), so a MOVE is not seen half done.
      await new Promise<void>((resolve, reject) => {
        let have = 0;
        let done = false;
        let pending: NodeJS.Immediate | undefined;
        const finish = (err?: Error): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (pending) clearImmediate(pending);
          unwatch();
          if (err) reject(err);
          else resolve();
        };
        const recount = (): void => {
          pending = undefined;
          allMessages(store).then(
            (all) => {
              have = all.length;
              if (have >= count) finish();
            },
            (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
          );
        };
        const timer = setTimeout(() => finish(new Error(`waitForMessages: ${have} of ${count} message(s) after ${timeoutMs} ms`)), timeoutMs);
        let unwatch: () => void;
        if (supportsWatch(store)) {
          unwatch = store.watch((e: MailboxEvent) => {
            if (!done && !pending && (e.type === 'exists' || e.type === 'expunge')) pending = setImmediate(recount);
          });
        } else {
          // A store without change notifications is polled instead.
          const poll = setInterval(() => {
            if (!done && !pending) pending = setImmediate(recount);
          }, 50);
          unwatch = () => clearInterval(poll);
        }
        recount();
      });
      return receivedMessages();
    },
    purge: () => purgeMessages(store),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await container.unbindAllAsync();
    },
  };
}

async function parseMessage(username: string, mailbox: string, uid: number, raw: Buffer): Promise<ReceivedMessage> {
  const m = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true });
  const addresses = (a: AddressObject | AddressObject[] | undefined): string[] =>
    (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value.map((v) => v.address ?? '')).filter(Boolean);
  return {
    username,
    mailbox,
    uid,
    from: addresses(m.from)[0],
    to: addresses(m.to),
    cc: addresses(m.cc),
    subject: m.subject,
    text: m.text,
    html: m.html === false ? undefined : m.html,
    attachments: m.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.size, content: a.content })),
    headers: m.headers,
    raw,
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
