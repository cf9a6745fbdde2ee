import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { AcmeOptions } from '../core/acme-certificates.js';
import type { CertificateSource, ServerSecurityOptions } from '../core/server-security.js';
import { parseSslProtocols, protocolsFrom } from '../core/ssl-protocols.js';
import { checkPostgresUrl } from '../backends/postgres/postgres-mail-store.js';
import { DEFAULT_PORTS, LISTENER_NAMES, isPostgresUrl, type ListenerName, type MailServerConfig } from '../di/mail-server.js';
import { parseUserSpec } from '../test-double/user-spec.js';

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `postern --help`. */
export const HELP = `Usage: postern [options]

Runs an SMTP, POP3 and IMAP server (STARTTLS and implicit TLS) over one mail store.

Listeners (default: all six on 127.0.0.1)
  --host ADDR               bind address (default 127.0.0.1; :: or 0.0.0.0 for all)
  --only LIST               comma-separated subset of: ${LISTENER_NAMES.join(',')}
  --port-offset N           add N to every default port
${LISTENER_NAMES.map((n) => `  --${n}-port PORT`.padEnd(28) + `default ${DEFAULT_PORTS[n]}`).join('\n')}

Users and mail store
  --user LOGIN:PASSWORD@DOMAIN   create a user (repeatable); mail for LOGIN@DOMAIN, login as LOGIN or the address
  --auth-disabled           any login works; unknown recipients get a mailbox (GreenMail style)
  --store memory|maildir:PATH    where mail lives (default memory)
  --store postgres://USER:PASSWORD@HOST:PORT/DB  PostgreSQL, shared by every node on that database
                            (also postgresql://; without a password in the URL, PGPASSWORD is used)
  --postmaster LOGIN        who receives mail for <postmaster> (default: the first user by name)

TLS
  --cert FILE --key FILE    PEM certificate (with chain) and key
  --pfx FILE [--passphrase P]    PKCS#12 instead of PEM
                            (none given: a self-signed certificate is generated and its fingerprint printed)
  --ca FILE                 CA bundle for client certificates
  --client-cert request|require  ask for (or insist on) a client certificate signed by --ca
  --tls-min 1.2|1.3         lowest TLS version (default 1.2)
  --allow-insecure-auth     allow AUTH/LOGIN/USER before TLS (off by default)

Automatic certificates (ACME, RFC 8555; instead of --cert/--pfx)
  --acme-directory URL      the CA's directory, e.g. https://acme-v02.api.letsencrypt.org/directory
  --acme-email ADDR         account contact (expiry notices); you agree to the CA's terms of service
  --acme-domain NAME[,NAME…]     names on the certificate; the CA validates them over TLS-ALPN-01 on the
                            implicit-TLS listeners (it connects to port 443: forward it to one of them)
  --acme-state DIR          account key and certificates (default ./postern-acme)
  --acme-ca FILE            trust this CA for the directory's HTTPS (a private or test CA such as Pebble)

Logging and misc
  --log-level error|warn|info|debug   (default info; logs go to stderr)
  --log-format text|json    (default text)
  -h, --help                this text
  -v, --version             print the version
`;

/** The parsed command line. */
export interface CliArgs {
  readonly help: boolean;
  readonly version: boolean;
  readonly config: MailServerConfig;
}

/**
 * Parses the command line into a {@link MailServerConfig}. Reads certificate files named on it, so that an
 * unreadable file is a usage error before anything listens.
 * @throws UsageError with a one-line message.
 */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const portOptions = Object.fromEntries(LISTENER_NAMES.map((n) => [`${n}-port`, { type: 'string' as const }]));
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        only: { type: 'string' },
        'port-offset': { type: 'string' },
        ...portOptions,
        user: { type: 'string', multiple: true },
        'auth-disabled': { type: 'boolean' },
        store: { type: 'string' },
        postmaster: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        pfx: { type: 'string' },
        passphrase: { type: 'string' },
        ca: { type: 'string' },
        'client-cert': { type: 'string' },
        'tls-min': { type: 'string' },
        'allow-insecure-auth': { type: 'boolean' },
        'acme-directory': { type: 'string' },
        'acme-email': { type: 'string' },
        'acme-domain': { type: 'string' },
        'acme-state': { type: 'string' },
        'acme-ca': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  const str = (k: string): string | undefined => values[k] as string | undefined;

  const only = str('only')?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const n of only ?? []) if (!LISTENER_NAMES.includes(n as ListenerName)) throw new UsageError(`--only: unknown listener "${n}" (use ${LISTENER_NAMES.join(', ')})`);
  if (only && only.length === 0) throw new UsageError('--only: no listener named');

  const offset = str('port-offset') === undefined ? 0 : parsePort(str('port-offset')!, '--port-offset', true);
  const ports: Partial<Record<ListenerName, number>> = {};
  for (const n of LISTENER_NAMES) {
    const v = str(`${n}-port`);
    if (v !== undefined) ports[n] = parsePort(v, `--${n}-port`);
    else if (DEFAULT_PORTS[n] + offset > 65535) throw new UsageError(`--port-offset ${offset} moves ${n} past port 65535`);
  }

  const logLevel = str('log-level');
  if (logLevel && !['error', 'warn', 'info', 'debug'].includes(logLevel)) throw new UsageError(`--log-level: expected error, warn, info or debug, got "${logLevel}"`);
  const logFormat = str('log-format');
  if (logFormat && logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`--log-format: expected text or json, got "${logFormat}"`);

  const store = str('store') ?? 'memory';
  if (isPostgresUrl(store)) {
    try {
      checkPostgresUrl(store);
    } catch (err) {
      throw new UsageError(`--store: ${(err as Error).message}`);
    }
  } else if (store !== 'memory' && !(store.startsWith('maildir:') && store.length > 8)) {
    throw new UsageError(`--store: expected memory, maildir:PATH or postgres://USER:PASSWORD@HOST:PORT/DB, got "${store}"`);
  }

  let users;
  try {
    users = ((values.user as string[] | undefined) ?? []).map(parseUserSpec);
  } catch (err) {
    throw new UsageError(`--user: ${(err as Error).message}`);
  }

  return {
    help: values.help === true,
    version: values.version === true,
    config: {
      host: str('host') ?? '127.0.0.1',
      only: only as ListenerName[] | undefined,
      ports,
      portOffset: offset,
      users,
      authDisabled: values['auth-disabled'] === true,
      allowInsecureAuth: values['allow-insecure-auth'] === true,
      store,
      tls: tlsOptions(str),
      acme: acmeOptions(str),
      log: { level: logLevel ?? 'info', format: (logFormat as 'text' | 'json' | undefined) ?? 'text' },
      smtp: str('postmaster') !== undefined ? { postmaster: str('postmaster') } : undefined,
    },
  };
}

function tlsOptions(str: (k: string) => string | undefined): ServerSecurityOptions {
  const cert = str('cert');
  const key = str('key');
  const pfx = str('pfx');
  if ((cert && !key) || (key && !cert)) throw new UsageError('--cert and --key go together');
  if (pfx && cert) throw new UsageError('use either --cert/--key or --pfx, not both');
  if (str('passphrase') !== undefined && !pfx && !key) throw new UsageError('--passphrase needs --pfx or --key');
  let certificate: CertificateSource | undefined;
  if (cert && key) certificate = { cert: readFile(cert, '--cert'), key: readFile(key, '--key'), passphrase: str('passphrase') };
  else if (pfx) certificate = { pfx: readFileBuffer(pfx, '--pfx'), passphrase: str('passphrase') };

  const clientCert = str('client-cert');
  if (clientCert && clientCert !== 'request' && clientCert !== 'require') throw new UsageError(`--client-cert: expected request or require, got "${clientCert}"`);
  const ca = str('ca');
  if (clientCert && !ca) throw new UsageError('--client-cert needs --ca FILE (the CA that signs client certificates)');

  const tlsMin = str('tls-min');
  let protocols;
  if (tlsMin !== undefined) {
    if (tlsMin !== '1.2' && tlsMin !== '1.3') throw new UsageError(`--tls-min: expected 1.2 or 1.3, got "${tlsMin}"`);
    protocols = protocolsFrom(parseSslProtocols(tlsMin));
  }
  return {
    certificate,
    protocols,
    trustedCertificates: ca ? readFile(ca, '--ca') : undefined,
    requestClientCertificate: clientCert === 'request' || clientCert === 'require',
    requireClientCertificate: clientCert === 'require',
  };
}

function acmeOptions(str: (k: string) => string | undefined): AcmeOptions | undefined {
  const directoryUrl = str('acme-directory');
  const email = str('acme-email');
  const domains = str('acme-domain')?.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean);
  const given = ['acme-directory', 'acme-email', 'acme-domain', 'acme-state', 'acme-ca'].filter((k) => str(k) !== undefined);
  if (given.length === 0) return undefined;
  if (!directoryUrl || !email || !domains || domains.length === 0) throw new UsageError('--acme-directory, --acme-email and --acme-domain go together');
  if (!/^https?:\/\//.test(directoryUrl)) throw new UsageError(`--acme-directory: expected an http(s) URL, got "${directoryUrl}"`);
  if (str('cert') !== undefined || str('pfx') !== undefined) throw new UsageError('use either --cert/--pfx or --acme-*, not both');
  const ca = str('acme-ca');
  return { directoryUrl, email, domains, stateDir: str('acme-state') ?? 'postern-acme', directoryCa: ca ? readFile(ca, '--acme-ca') : undefined };
}

function parsePort(v: string, flag: string, allowZeroBase = false): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: expected a number, got "${v}"`);
  const n = Number(v);
  if (n > 65535 || (!allowZeroBase && n < 0)) throw new UsageError(`${flag}: ${v} is not a port number`);
  return n;
}

function readFile(path: string, flag: string): string {
  return readFileBuffer(path, flag).toString('utf8');
}

function readFileBuffer(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
