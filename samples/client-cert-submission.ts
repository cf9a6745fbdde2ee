/**
 * Sample: a submission server where the client certificate *is* the login (RFC 8314 §3.3 submission over TLS).
 *
 * Both SMTP listeners require a client certificate issued by a trusted CA: without one, or with one from another
 * CA, the TLS handshake fails and no SMTP is spoken. SMTP AUTH is unnecessary; instead two hooks do the mapping:
 * - `onSecure` maps the certificate's subject (each `CN`, then each `email:` subjectAltName) to a user through
 *   a table, and refuses unmapped certificates with `554 5.7.1` (the connection then closes);
 * - `onMailFrom` lets that user send only as its own address: any other reverse-path gets `553 5.7.1`
 *   (RFC 5321 §4.2.2: 553 mailbox name not allowed; RFC 3463 X.7.1: not authorized).
 * Mail goes into Postern's memory store, so only local users can receive it.
 *
 * ```sh
 * npm run certs                                       # writes certs/ (CA, server, client CN=postern-client)
 * node dist/samples/client-cert-submission.js         # SMTPS 4466, SMTP+STARTTLS 4587; --any-port for free ports
 * swaks --server 127.0.0.1:4466 --tls-on-connect --tls-cert certs/client.pem --tls-key certs/client-key.pem \
 *       --from alice@example.test --to bob@example.test
 * ```
 * `POSTERN_CERTS=DIR` overrides `certs/`. Prints one ready line per listener; SIGINT/SIGTERM stop gracefully.
 */
import 'reflect-metadata';
import { randomUUID, type X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContainerModule } from 'inversify';
import {
  createMailServerContainer,
  MailServer,
  SmtpHooks,
  SmtpReplyError,
  type LoggerOptions,
  type MailParams,
  type MailStore,
  type PeerInfo,
  type ReadyListener,
  type ServerSecurityOptions,
  type SmtpContext,
} from '../lib/index.js';

/** Certificate identity (a CN or an email SAN, compared case-insensitively) → the address that user may send as. */
export type CertificateUsers = Readonly<Record<string, string>>;

/** The identities a certificate claims: each subject `CN`, then each `email:` subjectAltName. */
export function certificateIdentities(cert: X509Certificate): string[] {
  const cns = cert.subject.split('\n').flatMap((rdn) => (rdn.startsWith('CN=') ? [rdn.slice(3)] : []));
  const emails = (cert.subjectAltName ?? '').split(', ').flatMap((san) => (san.startsWith('email:') ? [san.slice(6)] : []));
  return [...cns, ...emails];
}

/** The address the peer's certificate may send as, or undefined (no certificate, or not in `users`). */
export function userFor(peer: PeerInfo, users: CertificateUsers): string | undefined {
  const cert = peer.security.peerCertificate;
  if (!cert) return undefined;
  const table = new Map(Object.entries(users).map(([id, address]) => [id.toLowerCase(), address]));
  for (const id of certificateIdentities(cert)) {
    const address = table.get(id.toLowerCase());
    if (address !== undefined) return address;
  }
  return undefined;
}

/** The two hooks: refuse unmapped certificates after the handshake, and any sender but the mapped user's. */
export function certificateSubmissionPolicy(users: CertificateUsers): SmtpHooks {
  return {
    async onSecure(peer: PeerInfo): Promise<void> {
      if (userFor(peer, users) === undefined) throw new SmtpReplyError(554, '5.7.1', 'Certificate not authorized for submission');
    },
    async onMailFrom(from: string, _params: MailParams, context: SmtpContext): Promise<void> {
      const user = userFor(context.peer, users);
      // Plaintext on the STARTTLS port is already refused by `requireTls`; this covers it anyway.
      if (user === undefined) throw new SmtpReplyError(530, '5.7.0', 'Must present a client certificate');
      if (from.toLowerCase() !== user.toLowerCase()) throw new SmtpReplyError(553, '5.7.1', `Sender address must be <${user}>`);
    },
  };
}

/** Settings of {@link startSubmissionServer}. */
export interface SubmissionOptions {
  /** Server certificate and key (PEM). */
  certificate: { cert: string; key: string };
  /** CA(s) that issue client certificates. */
  clientCa: string;
  /** Who may send, and as what. */
  users: CertificateUsers;
  /** Local mailboxes that receive mail (the senders get one too). */
  recipients?: readonly string[];
  /** Free ports instead of 4466 (implicit TLS) and 4587 (STARTTLS). */
  anyPort?: boolean;
  /** Logging (default: warnings and errors on stderr). */
  log?: LoggerOptions;
}

/** Starts SMTPS and SMTP+STARTTLS requiring client certificates. The caller calls `close()`. */
export async function startSubmissionServer(options: SubmissionOptions): Promise<{ ready: ReadyListener[]; store: MailStore; close(): Promise<void> }> {
  const tls: ServerSecurityOptions = { certificate: options.certificate, requireClientCertificate: true, trustedCertificates: options.clientCa };
  const policy = new ContainerModule(({ bind }) => {
    bind(SmtpHooks).toConstantValue(certificateSubmissionPolicy(options.users));
  });
  const mailboxes = [...new Set([...Object.values(options.users), ...(options.recipients ?? [])].map((a) => a.toLowerCase()))];
  const container = createMailServerContainer({
    only: ['smtp', 'smtps'],
    ports: options.anyPort ? { smtp: 0, smtps: 0 } : { smtp: 4587, smtps: 4466 },
    tls,
    smtp: { requireTls: true },
    // Nobody logs in (the certificate is the credential): a random password nobody knows.
    users: mailboxes.map((address) => ({ username: address, password: randomUUID(), addresses: [address] })),
    log: options.log ?? { level: 'warn' },
    modules: [policy],
  });
  const server = new MailServer(container);
  const ready = await server.start();
  return {
    ready,
    store: server.store,
    async close() {
      await server.stop();
      await container.unbindAllAsync();
    },
  };
}

async function main(): Promise<void> {
  const dir = process.env.POSTERN_CERTS || 'certs';
  const pem = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');
  const running = await startSubmissionServer({
    certificate: { cert: await pem('server.pem'), key: await pem('server-key.pem') },
    clientCa: await pem('ca.pem'),
    users: { 'postern-client': 'alice@example.test' },
    recipients: ['bob@example.test'],
    anyPort: process.argv.includes('--any-port'),
  });
  for (const l of running.ready) process.stdout.write(`client-cert-submission: ${l.name} ready on ${l.host}:${l.port} (${l.tls})\n`);
  const stop = (): void => void running.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
