/**
 * Delivery notices for senders that are not local, relayed through an SMTP server (your MTA) with nodemailer's SMTP
 * client: from the null reverse-path (`MAIL FROM:<>`, RFC 3461 §6.2), to the original sender, the notice as built.
 * Notices for local senders still go into the store. `PosternConfig.dsnRelay` / `postern --dsn-relay URL`.
 */
import type { Logger } from '../log/logger.js';
import type { DsnNotice, DsnNoticeSender, LocalDsnNoticeSender } from './dsn-notices.js';
import { DsnRelayQueue, type DsnRelayQueueOptions } from './dsn-relay-queue.js';

/**
 * Where notices for senders that are not local go. They are relayed in the background (the client's `250` does not
 * wait), retried on `retryDelaysMs`' schedule while the relay is down or answers 4xx, and dropped with a warn line
 * after a 5xx or the last retry; held in memory, so a restart loses the ones still waiting (logged at shutdown).
 */
export interface DsnRelayOptions extends DsnRelayQueueOptions {
  /**
   * `smtp://[USER:PASSWORD@]HOST[:PORT]` (default port 25; STARTTLS when the relay offers it) or `smtps://…` (implicit
   * TLS, default port 465). With a user, the relay is logged in to (AUTH PLAIN/LOGIN, over TLS).
   */
  readonly url: string;
  /** PEM CA certificate(s) to verify the relay's certificate with, instead of Node's bundled roots. */
  readonly ca?: string | Buffer;
  /**
   * How long the relay may keep an attempt waiting: for the connection, for its greeting, and for each reply (default
   * 30 s, 30 s and 60 s). A timed-out attempt is retried like a relay that is down.
   */
  readonly timeoutMs?: number;
}

/** The relay's address, parsed and checked once. */
interface Relay {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly auth?: { readonly user: string; readonly pass: string };
}

/**
 * Reads a relay URL.
 * @throws Error naming what is wrong, never echoing a password.
 */
export function parseDsnRelayUrl(url: string): Relay {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('expected smtp://HOST[:PORT] or smtps://HOST[:PORT]');
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new Error(`expected smtp://HOST[:PORT] or smtps://HOST[:PORT], not a ${u.protocol} URL`);
  if (u.hostname === '') throw new Error('the relay URL names no host');
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') throw new Error('the relay URL takes no path, query or fragment');
  const secure = u.protocol === 'smtps:';
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const auth = u.username !== '' ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined;
  return { host, port: u.port !== '' ? Number(u.port) : secure ? 465 : 25, secure, ...(auth ? { auth } : {}) };
}

/** Sends nodemailer's way: one message, its envelope given. */
interface Transport {
  sendMail(message: { envelope: { from: false; to: string[] }; raw: Buffer; requireTLSExtensionEnabled?: boolean }): Promise<unknown>;
}

/** nodemailer's timeouts for the relay (its defaults wait up to 2 and 10 minutes): a stuck relay holds up the queue. */
const RELAY_TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 } as const;

/** nodemailer's three waits: {@link RELAY_TIMEOUTS}, or `timeoutMs` (`DsnRelayOptions.timeoutMs`) for each. */
function relayTimeouts(timeoutMs: number | undefined): { connectionTimeout: number; greetingTimeout: number; socketTimeout: number } {
  return timeoutMs === undefined ? RELAY_TIMEOUTS : { connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs };
}

/**
 * The {@link DsnNoticeSender} of `dsnRelay`: a notice for a local sender goes into the store as with
 * {@link LocalDsnNoticeSender}; any other is queued for the relay ({@link DsnRelayQueue}) and submitted in the
 * background. nodemailer is loaded on the first relayed notice.
 */
export class RelayDsnNoticeSender implements DsnNoticeSender {
  private readonly relay: Relay;
  private transport?: Promise<Transport>;
  private readonly queue: DsnRelayQueue;

  /** @throws Error for a bad {@link DsnRelayOptions.url} (at start, not at the first notice). */
  constructor(
    private readonly local: LocalDsnNoticeSender,
    private readonly options: DsnRelayOptions,
    private readonly log: Logger,
  ) {
    this.relay = parseDsnRelayUrl(options.url);
    this.queue = new DsnRelayQueue(this.relayOne.bind(this), options, log);
  }

  /** A local sender's notice is stored before this resolves; any other is queued for the relay (see {@link close}). */
  async send(notice: DsnNotice): Promise<void> {
    if (await this.local.isLocal(notice.to)) return this.local.send(notice);
    this.queue.add(notice);
  }

  /** Notices waiting for the relay. */
  get queued(): number {
    return this.queue.size;
  }

  /** Stops relaying (the container's shutdown): logs the notices still waiting, which are lost. */
  close(): Promise<void> {
    return this.queue.close();
  }

  private async relayOne(notice: DsnNotice, attempt: number): Promise<void> {
    const transport = await (this.transport ??= this.createTransport());
    // A report on a REQUIRETLS message is sent under REQUIRETLS too (RFC 8689 §5): nodemailer then refuses a relay
    // that does not offer it, or a session without TLS.
    await transport.sendMail({ envelope: { from: false, to: [notice.to] }, raw: notice.raw, ...(notice.requireTls ? { requireTLSExtensionEnabled: true } : {}) });
    this.log.info('delivery notice relayed', { to: notice.to, recipients: notice.recipients.length, relay: `${this.relay.host}:${this.relay.port}`, attempt });
  }

  private async createTransport(): Promise<Transport> {
    const { default: nodemailer } = await import('nodemailer');
    const { host, port, secure, auth } = this.relay;
    return nodemailer.createTransport({
      host,
      port,
      secure,
      ...(auth ? { auth } : {}),
      ...relayTimeouts(this.options.timeoutMs),
      tls: { minVersion: 'TLSv1.2', ...(this.options.ca !== undefined ? { ca: this.options.ca } : {}) },
    }) as unknown as Transport;
  }
}
