/**
 * Delivery notices for senders that are not local, relayed through an SMTP server (your MTA) with nodemailer's SMTP
 * client: from the null reverse-path (`MAIL FROM:<>`, RFC 3461 §6.2), to the original sender, the notice as built.
 * Notices for local senders still go into the store. `PosternConfig.dsnRelay` / `postern --dsn-relay URL`.
 */
import type { Logger } from '../log/logger.js';
import type { DsnNotice, DsnNoticeSender, LocalDsnNoticeSender } from './dsn-notices.js';

/** Where notices for senders that are not local go. */
export interface DsnRelayOptions {
  /**
   * `smtp://[USER:PASSWORD@]HOST[:PORT]` (default port 25; STARTTLS when the relay offers it) or `smtps://…` (implicit
   * TLS, default port 465). With a user, the relay is logged in to (AUTH PLAIN/LOGIN, over TLS).
   */
  readonly url: string;
  /** PEM CA certificate(s) to verify the relay's certificate with, instead of Node's bundled roots. */
  readonly ca?: string | Buffer;
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

/**
 * The {@link DsnNoticeSender} of `dsnRelay`: a notice for a local sender goes into the store as with
 * {@link LocalDsnNoticeSender}; any other is submitted to the relay. nodemailer is loaded on the first relayed notice.
 */
export class RelayDsnNoticeSender implements DsnNoticeSender {
  private readonly relay: Relay;
  private transport?: Promise<Transport>;

  /** @throws Error for a bad {@link DsnRelayOptions.url} (at start, not at the first notice). */
  constructor(
    private readonly local: LocalDsnNoticeSender,
    private readonly options: DsnRelayOptions,
    private readonly log: Logger,
  ) {
    this.relay = parseDsnRelayUrl(options.url);
  }

  async send(notice: DsnNotice): Promise<void> {
    if (await this.local.isLocal(notice.to)) return this.local.send(notice);
    const transport = await (this.transport ??= this.createTransport());
    // A report on a REQUIRETLS message is sent under REQUIRETLS too (RFC 8689 §5): nodemailer then refuses a relay
    // that does not offer it, or a session without TLS.
    await transport.sendMail({ envelope: { from: false, to: [notice.to] }, raw: notice.raw, ...(notice.requireTls ? { requireTLSExtensionEnabled: true } : {}) });
    this.log.info('delivery notice relayed', { to: notice.to, recipients: notice.recipients.length, relay: `${this.relay.host}:${this.relay.port}` });
  }

  private async createTransport(): Promise<Transport> {
    const { default: nodemailer } = await import('nodemailer');
    const { host, port, secure, auth } = this.relay;
    return nodemailer.createTransport({
      host,
      port,
      secure,
      ...(auth ? { auth } : {}),
      tls: { minVersion: 'TLSv1.2', ...(this.options.ca !== undefined ? { ca: this.options.ca } : {}) },
    }) as unknown as Transport;
  }
}
