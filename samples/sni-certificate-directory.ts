/**
 * Sample: one mail server, several names. The certificates live in a directory (PEM pairs and PFX files, as a
 * deployment tool or an ACME client drops them there); each TLS handshake gets the certificate for the name the
 * client asked for (SNI), and a renewed or added file is served from the next handshake on, without a restart.
 * IMAPS, and only IMAPS, also insists on a client certificate from a CA found in that directory (per-listener TLS):
 * SMTP with STARTTLS stays open to any client.
 *
 * ```sh
 * mkdir -p sni && cp mail.a.test.pem mail.a.test-key.pem mail.b.test.pfx ca.pem sni/   # your files
 * node dist/samples/sni-certificate-directory.js sni        # SMTP 4025 (STARTTLS), IMAPS 4993; --any-port for free ports
 * openssl s_client -connect 127.0.0.1:4993 -servername mail.a.test -cert client.pem -key client-key.pem
 * openssl s_client -connect 127.0.0.1:4025 -starttls smtp -servername mail.b.test
 * ```
 * `POSTERN_PFX_PASSPHRASE` opens encrypted PFX/PEM files. Names with no certificate in the directory get a generated
 * self-signed one. Prints one ready line per listener; SIGINT/SIGTERM stop gracefully.
 */
import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import {
  CertificateStore,
  createMailServerContainer,
  MailServer,
  type CertificateSource,
  type LoggerOptions,
  type MailStore,
  type ReadyListener,
} from '../lib/index.js';

/** Settings of {@link startSniServer}. */
export interface SniSampleOptions {
  /** The certificate directory (PEM and PFX files; CA certificates in it are trusted for client certificates on IMAPS). */
  directory: string;
  /** Passphrase for encrypted PFX/PEM files in the directory. */
  passphrase?: string;
  /** Certificate for names the directory has none for (and clients without SNI); default: a generated one. */
  defaultCertificate?: CertificateSource;
  /** Quiet time before a changed directory is re-read (ms; the store's default when absent). */
  debounceMs?: number;
  /** Every listener on a free port (tests); otherwise SMTP 4025 and IMAPS 4993. */
  anyPort?: boolean;
  log?: LoggerOptions;
}

/**
 * Opens the certificate store and starts SMTP (STARTTLS) and IMAPS serving its certificates by SNI; IMAPS requires a
 * client certificate signed by a CA from the directory.
 * @throws Error when the directory cannot be read; CertificateError for a bad default certificate.
 * The caller calls `close()` (server, container, then the store it opened).
 */
export async function startSniServer(options: SniSampleOptions): Promise<{ ready: ReadyListener[]; store: MailStore; certificates: CertificateStore; close(): Promise<void> }> {
  const certificates = await CertificateStore.open({ directory: options.directory, passphrase: options.passphrase, debounceMs: options.debounceMs });
  const container = createMailServerContainer({
    only: ['smtp', 'imaps'],
    ports: options.anyPort ? { smtp: 0, imaps: 0 } : { smtp: 4025, imaps: 4993 },
    // Shared by both listeners: the default certificate, and the store for every name a client asks for.
    tls: { certificate: options.defaultCertificate, certificateStore: certificates },
    // IMAPS only: a client certificate is required, from a CA in the directory (not the system's CAs).
    imap: { imaps: { security: { requireClientCertificate: true, trustedCertificates: certificates.trustedCertificates({ system: false }) } } },
    log: options.log ?? { level: 'warn' },
  });
  const server = new MailServer(container);
  let ready: ReadyListener[];
  try {
    ready = await server.start();
  } catch (err) {
    await container.unbindAllAsync();
    certificates.close();
    throw err;
  }
  return {
    ready,
    store: server.store,
    certificates,
    async close() {
      await server.stop();
      await container.unbindAllAsync();
      certificates.close(); // opened here, so closed here (ServerSecurity closes only stores it opened itself)
    },
  };
}

async function main(): Promise<void> {
  const directory = process.argv.slice(2).find((a) => !a.startsWith('--'));
  if (!directory) throw new Error('usage: sni-certificate-directory.js DIR [--any-port]');
  const running = await startSniServer({ directory, passphrase: process.env.POSTERN_PFX_PASSPHRASE, anyPort: process.argv.includes('--any-port') });
  for (const l of running.ready) process.stdout.write(`sni-certificate-directory: ${l.name} ready on ${l.host}:${l.port} (${l.tls})\n`);
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
