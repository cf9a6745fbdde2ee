/**
 * Sample: an LMTP server (RFC 2033) embedded in your code: the delivery agent an MTA such as Postfix hands mail to.
 *
 * - `lmtpModule` serves LMTP on TCP and, with `socket`, on a Unix socket; only the listeners the config enables are
 *   bound (the protocol descriptor decides, `createContainer` applies it).
 * - {@link HoldingBackend}: an `SmtpBackend` (the same contract SMTP uses) whose sessions also implement
 *   `LmtpDataSession`, so each recipient gets its own reply after the final dot: mailboxes on hold answer
 *   `450 4.2.1` (the MTA keeps that copy queued and retries) while the other recipients get the message.
 * - an `SmtpHooks` refusing recipients outside the accepted domain at RCPT time (`550 5.1.2`); hooks bound to
 *   `SmtpHooks` run for SMTP and LMTP alike.
 *
 * ```sh
 * node dist/samples/lmtp-server.js                         # LMTP on 127.0.0.1:4024 (STARTTLS offered)
 * node dist/samples/lmtp-server.js /tmp/lmtp.sock          # …and on that Unix socket (mode 0666)
 * # Postfix: mailbox_transport = lmtp:inet:127.0.0.1:4024   (or lmtp:unix:/tmp/lmtp.sock)
 * ```
 * Users: alice@example.test and bob@example.test; bob's mailbox is on hold. SIGINT/SIGTERM stop gracefully.
 */
import 'reflect-metadata';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { ContainerModule, type Container } from 'inversify';
import {
  createContainer,
  Listener,
  lmtpModule,
  MailStore,
  memoryModule,
  SmtpBackend,
  SmtpHooks,
  SmtpReplyError,
  type Envelope,
  type LmtpDataSession,
  type LmtpOptions,
  type RecipientStatus,
  type SmtpSession,
} from '../lib/index.js';

/**
 * An `SmtpBackend` that delivers into the bound `MailStore` and reports one outcome per recipient (LMTP), holding
 * the mailboxes in `onHold` (`450 4.2.1`, RFC 3463: mailbox busy or disabled for now).
 */
export class HoldingBackend implements SmtpBackend {
  constructor(
    private readonly store: MailStore,
    readonly onHold: Set<string>,
  ) {}

  async openSession(): Promise<SmtpSession & LmtpDataSession> {
    return new HoldingSession(this.store, this.onHold);
  }
}

/** One LMTP (or SMTP) session of {@link HoldingBackend}. */
class HoldingSession implements SmtpSession, LmtpDataSession {
  constructor(
    private readonly store: MailStore,
    private readonly onHold: ReadonlySet<string>,
  ) {}

  async mailFrom(): Promise<void> {}

  async rcptTo(to: string): Promise<void> {
    if ((await this.store.users.findByAddress(to)) === undefined) throw new SmtpReplyError(550, '5.1.1', 'No such user here');
  }

  /** Used by SMTP, and by LMTP for backends without `lmtpData`: one outcome for every recipient. */
  async data(body: Readable, envelope: Envelope): Promise<void> {
    await this.lmtpData(body, envelope, {
      set: (_rcpt: string, error?: unknown) => {
        if (error) throw error;
      },
    });
  }

  /** RFC 2033 §4.2: one status per recipient; a recipient left without one gets this method's own outcome. */
  async lmtpData(body: Readable, envelope: Envelope, status: RecipientStatus): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    for (const rcpt of new Set(envelope.rcptTo.map((r) => r.toLowerCase()))) {
      if (this.onHold.has(rcpt)) status.set(rcpt, new SmtpReplyError(450, '4.2.1', 'Mailbox on hold, try again later'));
      else
        await this.store.deliver(rcpt, raw).then(
          () => status.set(rcpt),
          (err: unknown) => status.set(rcpt, err), // not an SmtpReplyError: answered 451 4.3.0 and logged
        );
    }
  }

  reset(): void {}

  async close(): Promise<void> {}
}

/** An `onRcptTo` hook accepting only `domain` (`550 5.1.2` otherwise, RFC 3463: bad destination system). */
export function onlyDomain(domain: string): SmtpHooks {
  return {
    async onRcptTo(to: string) {
      if (!to.toLowerCase().endsWith(`@${domain}`)) throw new SmtpReplyError(550, '5.1.2', `Only ${domain} is delivered here`);
    },
  };
}

/** Options of {@link startLmtpServer}. */
export interface LmtpSampleOptions {
  /** TCP port (default 4024; 0 = any free port). */
  port?: number;
  /** Also listen on this Unix socket path (mode 0666, so Postfix's lmtp(8) can connect). */
  socket?: string;
  /** Addresses whose mailbox is on hold. */
  onHold?: readonly string[];
}

/** Starts the server; resolves the container, the bound listeners' addresses and a `close()`. */
export async function startLmtpServer(options: LmtpSampleOptions = {}): Promise<{ container: Container; store: MailStore; port: number; close(): Promise<void> }> {
  const lmtp: LmtpOptions = {
    hostname: 'lmtp.example.test',
    lmtp: { port: options.port ?? 4024 },
    ...(options.socket ? { socket: options.socket, socketMode: 0o666 } : {}),
  };
  const ours = new ContainerModule(({ rebind, bind }) => {
    // The same tokens as SMTP: replace the default backend (MailStoreSmtpBackend) and add a hook.
    rebind(SmtpBackend).toResolvedValue((store: MailStore) => new HoldingBackend(store, new Set(options.onHold ?? ['bob@example.test'])), [MailStore]);
    bind(SmtpHooks).toConstantValue(onlyDomain('example.test'));
  });
  const container = createContainer({ host: '127.0.0.1', lmtp, log: { level: 'warn' } }, [memoryModule, lmtpModule, ours]);
  const store = container.get(MailStore);
  for (const login of ['alice', 'bob']) await store.users.add({ username: login, password: 'secret', addresses: [`${login}@example.test`] });
  const listeners = container.getAll(Listener);
  let port = 0;
  for (const l of listeners) {
    const addr = await l.start();
    if (l.name === 'lmtp') port = addr.port;
    process.stdout.write(`lmtp-server: ${l.name} ready on ${addr.family === 'unix' ? addr.address : `${addr.address}:${addr.port}`}\n`);
  }
  return {
    container,
    store,
    port,
    close: async () => {
      await Promise.all(listeners.map((l) => l.close()));
      await container.unbindAllAsync();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const running = await startLmtpServer({ socket: process.argv[2] });
  const stop = (): void => void running.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
