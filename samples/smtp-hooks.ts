/**
 * Sample: an SMTP server with policy hooks and a store of your own.
 *
 * - `blockedDomains` hook: refuses recipients in some domains with `550 5.7.1` (RCPT time, before the backend).
 * - {@link CertificateRecorder} hook: after every TLS handshake (STARTTLS or implicit) records the client
 *   certificate's subject and the policy errors the validation saw. Client certificates are asked for but never
 *   required, and every certificate is accepted (as a receiving MX would: they are informational), so the
 *   record may show `RemoteCertificateChainErrors` for a certificate from an unknown CA.
 * - {@link EmlDirectoryBackend}: `SmtpBackend` rebound to write each message to `<dir>/<time>-<uuid>.eml`, with the
 *   server's `Received:` header first. `data()` resolves only once the file is fsynced and renamed into place:
 *   the client's `250` means the message is on disk (the `SmtpSession` contract).
 *
 * ```sh
 * node dist/samples/smtp-hooks.js ./eml-out            # SMTP 4025 (STARTTLS), SMTPS 4465; --any-port for free ports
 * swaks --to bob@example.test --server 127.0.0.1:4025 -tls   # lands in ./eml-out; --to x@blocked.test gets 550
 * ```
 * `POSTERN_CERTS=DIR` (default `certs/` when `npm run certs` wrote it) supplies `server.pem`, `server-key.pem`
 * and `ca.pem`; without it a self-signed certificate is generated. Prints one ready line per listener on stdout;
 * SIGINT/SIGTERM stop gracefully.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { ContainerModule } from 'inversify';
import {
  createMailServerContainer,
  describePolicyErrors,
  MailServer,
  SmtpBackend,
  SmtpHooks,
  SmtpReplyError,
  SslPolicyErrors,
  type Envelope,
  type PeerInfo,
  type ReadyListener,
  type ServerSecurityOptions,
  type SmtpContext,
  type SmtpSession,
} from '../lib/index.js';

/** What {@link CertificateRecorder} saw after one handshake. */
export interface CertificateRecord {
  /** Connection id (`cid` in the logs). */
  readonly connection: string;
  /** Listener: `smtp` (after STARTTLS) or `smtps`. */
  readonly listener: string;
  /** TLS version, e.g. `TLSv1.3`. */
  readonly tlsProtocol?: string;
  /** The client certificate's subject (`CN=…`, one attribute per line), or undefined when none was presented. */
  readonly subject?: string;
  readonly policyErrors: SslPolicyErrors;
}

/** An `onSecure` hook that records the client certificate of every TLS session. */
export class CertificateRecorder implements SmtpHooks {
  /** Oldest first. */
  readonly records: CertificateRecord[] = [];

  async onSecure(peer: PeerInfo): Promise<void> {
    const { protocol, peerCertificate, policyErrors } = peer.security;
    this.records.push({ connection: peer.id, listener: peer.protocol, tlsProtocol: protocol, subject: peerCertificate?.subject, policyErrors });
  }
}

/** An `onRcptTo` hook refusing every recipient in `domains` with `550 5.7.1` (RFC 3463: delivery not authorized). */
export function blockedDomains(domains: readonly string[]): SmtpHooks {
  const blocked = new Set(domains.map((d) => d.toLowerCase()));
  return {
    async onRcptTo(to: string): Promise<void> {
      const domain = to.slice(to.lastIndexOf('@') + 1).toLowerCase();
      if (blocked.has(domain)) throw new SmtpReplyError(550, '5.7.1', `Delivery to ${domain} is not allowed`);
    },
  };
}

/** An `SmtpBackend` that accepts every recipient and writes each message into a directory as an `.eml` file. */
export class EmlDirectoryBackend implements SmtpBackend {
  constructor(readonly dir: string) {}

  async openSession(_context: SmtpContext): Promise<SmtpSession> {
    const dir = this.dir;
    return {
      async mailFrom(): Promise<void> {},
      async rcptTo(): Promise<void> {},
      async data(body: Readable, envelope: Envelope): Promise<void> {
        await mkdir(dir, { recursive: true });
        const name = `${Date.now()}-${randomUUID()}.eml`;
        const tmp = join(dir, `.${name}.tmp`); // dot-files are not messages: readers never see half a file
        const file = await open(tmp, 'wx', 0o600);
        try {
          // RFC 5321 §4.4: the final delivery adds Return-Path; the Received header is already in `body`.
          await file.write(`Return-Path: <${envelope.mailFrom}>\r\nX-Envelope-To: ${envelope.rcptTo.join(', ')}\r\n`);
          for await (const chunk of body) await file.write(chunk as Buffer);
          await file.sync();
        } catch (err) {
          await file.close();
          await rm(tmp, { force: true }); // the client vanished, or a hook refused: store nothing
          throw err;
        }
        await file.close();
        await rename(tmp, join(dir, name)); // only now is it stored, and the client gets 250
      },
      reset(): void {},
      async close(): Promise<void> {},
    };
  }
}

/** The messages in an {@link EmlDirectoryBackend} directory, oldest first. */
export async function readEmlDirectory(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const names = (await readdir(dir)).filter((n) => n.endsWith('.eml') && !n.startsWith('.')).sort();
  return Promise.all(names.map((n) => readFile(join(dir, n), 'latin1')));
}

/** Settings of {@link startHookedSmtpServer}. */
export interface HookedSmtpOptions {
  /** Where messages go. */
  dir: string;
  /** Recipient domains refused with 550 (default `blocked.test`). */
  blocked?: readonly string[];
  /** Certificate and trusted CAs; client certificates are always requested (never required) and never refused. */
  tls?: ServerSecurityOptions;
  /** Free ports instead of 4025/4465. */
  anyPort?: boolean;
}

/**
 * Builds the SMTP-only server: Postern's modules plus one of ours, which binds the two hooks and rebinds
 * `SmtpBackend` (rebinding inside a module loaded last replaces the default `MailStoreSmtpBackend`).
 * The caller calls `close()`.
 */
export async function startHookedSmtpServer(options: HookedSmtpOptions): Promise<{ ready: ReadyListener[]; recorder: CertificateRecorder; close(): Promise<void> }> {
  const recorder = new CertificateRecorder();
  const sample = new ContainerModule(({ bind, rebind }) => {
    bind(SmtpHooks).toConstantValue(blockedDomains(options.blocked ?? ['blocked.test']));
    bind(SmtpHooks).toConstantValue(recorder);
    rebind(SmtpBackend).toConstantValue(new EmlDirectoryBackend(options.dir));
  });
  const container = createMailServerContainer({
    only: ['smtp', 'smtps'],
    ports: options.anyPort ? { smtp: 0, smtps: 0 } : { smtp: 4025, smtps: 4465 },
    tls: { ...options.tls, requestClientCertificate: true, validationCallback: () => true },
    log: { level: 'warn' },
    modules: [sample],
  });
  const server = new MailServer(container);
  const ready = await server.start();
  return {
    ready,
    recorder,
    async close() {
      await server.stop();
      await container.unbindAllAsync();
    },
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--')) ?? 'eml-out';
  const certDir = process.env.POSTERN_CERTS || (existsSync(join('certs', 'server.pem')) ? 'certs' : undefined);
  const tls: ServerSecurityOptions = certDir
    ? {
        certificate: { certFile: join(certDir, 'server.pem'), keyFile: join(certDir, 'server-key.pem') },
        trustedCertificates: await readFile(join(certDir, 'ca.pem'), 'utf8'),
      }
    : {};
  const running = await startHookedSmtpServer({ dir, tls, anyPort: args.includes('--any-port') });
  for (const l of running.ready) process.stdout.write(`smtp-hooks: ${l.name} ready on ${l.host}:${l.port}, storing into ${dir}\n`);
  const stop = (): void => {
    for (const r of running.recorder.records) {
      process.stdout.write(`smtp-hooks: ${r.connection} ${r.subject?.replace(/\n/g, ', ') ?? 'no certificate'} (${describePolicyErrors(r.policyErrors).join(' | ')})\n`);
    }
    void running.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
