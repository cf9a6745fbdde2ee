/**
 * Sample: SASL EXTERNAL (RFC 4422 appendix A) — the client certificate is the login, on SMTP, POP3 and IMAP alike.
 *
 * The implicit-TLS listeners ask for a client certificate issued by a trusted CA. When one passed validation, EHLO,
 * CAPA and CAPABILITY offer `EXTERNAL`, and `AUTH EXTERNAL =` / `a AUTHENTICATE EXTERNAL =` logs in as the user the
 * certificate maps to. The mapping is a `CertificateLoginMapper` bound in a module (the built-in ones are
 * `--cert-login cn|email|FILE`): the first SAN e-mail address, else the subject CN; and the `support` certificate may
 * act as any user (its authorization identity, RFC 4422 §3.4.1). Any other authorization identity is refused like a
 * wrong password (535 5.7.8, `NO [AUTHENTICATIONFAILED]`, `-ERR [AUTH]`).
 *
 * ```sh
 * npm run certs                                  # writes certs/ (CA, server, client CN=postern-client)
 * node dist/samples/external-login.js            # SMTPS 4465, POP3S 4995, IMAPS 4993; --any-port for free ports
 * openssl s_client -quiet -crlf -connect 127.0.0.1:4993 -CAfile certs/ca.pem \
 *     -cert certs/client.pem -key certs/client-key.pem       # then: a AUTHENTICATE EXTERNAL =
 * ```
 * `POSTERN_CERTS=DIR` overrides `certs/`. Prints one ready line per listener; SIGINT/SIGTERM stop gracefully.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContainerModule } from 'inversify';
import {
  CertificateLoginMapper,
  createMailServerContainer,
  MailServer,
  subjectCommonNames,
  subjectEmailAddresses,
  type LoggerOptions,
  type MailStore,
  type ReadyListener,
} from '../lib/index.js';

/** Settings of {@link startExternalLoginServer}. */
export interface ExternalLoginOptions {
  /** Server certificate and key (PEM). */
  certificate: { cert: string; key: string };
  /** CA(s) that issue client certificates. */
  clientCa: string;
  /** Users (their login is the certificate's e-mail address or CN); they get no usable password. */
  users: readonly string[];
  /** Logins whose certificate may act as any user (support staff). */
  support?: readonly string[];
  /** Free ports instead of 4465, 4995 and 4993. */
  anyPort?: boolean;
  /** Logging (default: warnings and errors on stderr). */
  log?: LoggerOptions;
}

/** The mapper: the first SAN e-mail address, else the subject CN; `support` logins may act as anyone. */
export function sampleMapper(support: readonly string[]): CertificateLoginMapper {
  return {
    loginFor: (certificate) => subjectEmailAddresses(certificate)[0] ?? subjectCommonNames(certificate)[0],
    mayAuthorize: (login) => support.includes(login),
  };
}

/** Starts SMTPS, POP3S and IMAPS asking for client certificates, with EXTERNAL. The caller calls `close()`. */
export async function startExternalLoginServer(options: ExternalLoginOptions): Promise<{ ready: ReadyListener[]; store: MailStore; close(): Promise<void> }> {
  const certificateLogin = new ContainerModule(({ bind }) => {
    bind(CertificateLoginMapper).toConstantValue(sampleMapper(options.support ?? []));
  });
  const container = createMailServerContainer({
    only: ['smtps', 'pop3s', 'imaps'],
    ports: options.anyPort ? { smtps: 0, pop3s: 0, imaps: 0 } : { smtps: 4465, pop3s: 4995, imaps: 4993 },
    tls: { certificate: options.certificate, requestClientCertificate: true, trustedCertificates: options.clientCa },
    // Nobody types a password: a random one nobody knows. Addresses receive mail as usual.
    users: options.users.map((login) => ({ username: login, password: randomUUID(), addresses: login.includes('@') ? [login] : [] })),
    log: options.log ?? { level: 'warn' },
    modules: [certificateLogin],
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
  const running = await startExternalLoginServer({
    certificate: { cert: await pem('server.pem'), key: await pem('server-key.pem') },
    clientCa: await pem('ca.pem'),
    users: ['postern-client', 'alice@example.test'],
    anyPort: process.argv.includes('--any-port'),
  });
  for (const l of running.ready) process.stdout.write(`external-login: ${l.name} ready on ${l.host}:${l.port} (${l.tls})\n`);
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
