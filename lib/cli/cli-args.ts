import { readFileSync } from 'node:fs';
import { certificateLoginMapper, type CertificateLoginOption } from '../backends/certificate-login-mappers.js';
import { parseArgs } from 'node:util';
import type { AcmeChallengeType, AcmeOptions } from '../core/acme-certificates.js';
import type { ServerLimits } from '../core/connection-limits.js';
import type { AuthThrottleOptions } from '../protocol/auth-throttle.js';
import { availableParallelism } from 'node:os';
import { ProxyConfigError, ProxyTrust } from '../core/proxy-protocol.js';
import type { CertificateSource, ServerSecurityOptions } from '../core/server-security.js';
import { parseSslProtocols, protocolsFrom } from '../core/ssl-protocols.js';
import { checkPostgresUrl } from '../backends/postgres/postgres-mail-store.js';
import { DEFAULT_PORTS, LISTENER_NAMES, MAIL_LISTENER_NAMES, isPostgresUrl, type ListenerName, type MailServerConfig } from '../di/mail-server.js';
import { parseUserSpec } from '../test-double/user-spec.js';
import { parseChaosConfig, type ChaosConfig } from '../chaos/chaos.js';
import { certificateDirectory, isTlsFlag, listenerTlsSections, splitTlsFlags, type SplitTlsFlags } from './cli-tls.js';

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `postern --help`. */
export const HELP = `Usage: postern [options]

Runs an SMTP, POP3 and IMAP server (STARTTLS and implicit TLS), and LMTP when asked, over one mail store.

Listeners (default: all six on 127.0.0.1)
  --host ADDR               bind address (default 127.0.0.1; :: or 0.0.0.0 for all)
  --only LIST               comma-separated subset of: ${LISTENER_NAMES.join(',')}
                            (default: all but lmtp)
  --port-offset N           add N to every default port
${LISTENER_NAMES.map((n) => `  --${n}-port PORT`.padEnd(28) + `default ${DEFAULT_PORTS[n]}`).join('\n')}
                            (--lmtp-port also turns LMTP on; RFC 2033, LHLO, one reply per recipient)
  --lmtp-socket PATH        also serve LMTP on this Unix socket (Postfix: mailbox_transport = lmtp:unix:PATH)
  --lmtp-socket-mode MODE   the socket's file mode, octal (e.g. 660; default 777 less the umask)

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
  --cert-login cn|email|FILE     SASL EXTERNAL: log a validated client certificate in as its subject CN, its
                            SAN e-mail address, or the login FILE maps its SHA-256 fingerprint to (lines
                            "FINGERPRINT LOGIN [AUTHZID...]"); needs --client-cert
  --tls-min 1.2|1.3         lowest TLS version (default 1.2)
  --cert-dir DIR            certificates per SNI name from a directory of PEM/PFX files (watched; --passphrase
                            opens encrypted ones); names it has no certificate for get --cert/--pfx's
  VALUE@LISTENER            any of the TLS flags above for one listener only, e.g. --client-cert require@imaps,
                            --cert FILE@smtps --key FILE@smtps (--client-cert none@LISTENER turns it off there)
  --allow-insecure-auth     allow AUTH/LOGIN/USER before TLS (off by default)

HTTP API and web inbox (listener "http", see README "HTTP API")
  --http-auth USER:PASSWORD require HTTP Basic authentication (all but /healthz)
  --http-cors ORIGIN        allow browser calls to /api/v1 from ORIGIN (none by default)

Fault injection (see README "Fault injection")
  --chaos JSON|@FILE        rules to start with, as for PUT /api/v1/chaos:
                            '{"rules":[{"protocol":"smtp","stage":"rcpt","reply":"451 4.3.0 try later"}],"seed":7}'
Automatic certificates (ACME, RFC 8555; instead of --cert/--pfx)
  --acme-directory URL      the CA's directory, e.g. https://acme-v02.api.letsencrypt.org/directory
  --acme-email ADDR         account contact (expiry notices); you agree to the CA's terms of service
  --acme-domain NAME[,NAME…]     names on the certificate; the CA validates them over TLS-ALPN-01 on the
                            implicit-TLS listeners (it connects to port 443: forward it to one of them)
  --acme-state DIR          account key and certificates (default ./postern-acme)
  --acme-ca FILE            trust this CA for the directory's HTTPS (a private or test CA such as Pebble)
  --acme-challenge LIST     challenge types in order of preference (default tls-alpn-01,http-01); http-01 is
                            answered by the HTTP listener (the CA connects to port 80: forward it there)
                            SIGHUP orders a new certificate now; with --workers the primary orders for all

Limits (0 turns one off)
  --max-connections N       connections per listener (default 1000)
  --max-connections-per-address N         per client address and listener (default 100)
  --max-connections-per-address-total N   per client address, all listeners (default 300)
  --max-connections-total N               all listeners together (default 6000)
  --pre-auth-timeout SECONDS    end sessions not logged in by then; SMTP: no login and no MAIL (default 120)
  --command-timeout SECONDS     longest time one command line may trickle in (default 60)
  --auth-failures-per-address N   failed logins from one address before it is refused for a while (default 30)
  --auth-failures-per-account N   failed logins on one account before it is refused (default 10)

Metrics
  --metrics-port PORT       serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP on --host)

Scaling out
  --workers N|auto          serve with N processes sharing the ports (auto: one per CPU core; default 1).
                            Needs a store shared between processes (maildir:PATH, postgres://…), not memory
  --proxy-protocol          expect a PROXY protocol v1/v2 header (HAProxy send-proxy/send-proxy-v2) first on
                            every connection; the client address in it is the one logged and recorded
  --proxy-trusted CIDR[,CIDR…]   the proxies allowed to send it (required with --proxy-protocol)
  --proxy-listeners LIST    only these listeners expect the header (default: every listener)

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
        'lmtp-socket': { type: 'string' },
        'lmtp-socket-mode': { type: 'string' },
        user: { type: 'string', multiple: true },
        'auth-disabled': { type: 'boolean' },
        store: { type: 'string' },
        postmaster: { type: 'string' },
        cert: { type: 'string', multiple: true },
        key: { type: 'string', multiple: true },
        pfx: { type: 'string', multiple: true },
        passphrase: { type: 'string', multiple: true },
        ca: { type: 'string', multiple: true },
        'client-cert': { type: 'string', multiple: true },
        'cert-login': { type: 'string' },
        'tls-min': { type: 'string', multiple: true },
        'cert-dir': { type: 'string', multiple: true },
        'allow-insecure-auth': { type: 'boolean' },
        'http-auth': { type: 'string' },
        'http-cors': { type: 'string' },
        chaos: { type: 'string' },
        'acme-directory': { type: 'string' },
        'acme-email': { type: 'string' },
        'acme-domain': { type: 'string' },
        'acme-state': { type: 'string' },
        'acme-ca': { type: 'string' },
        'acme-challenge': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-address': { type: 'string' },
        'max-connections-per-address-total': { type: 'string' },
        'max-connections-total': { type: 'string' },
        'pre-auth-timeout': { type: 'string' },
        'command-timeout': { type: 'string' },
        'auth-failures-per-address': { type: 'string' },
        'metrics-port': { type: 'string' },
        'auth-failures-per-account': { type: 'string' },
        workers: { type: 'string' },
        'proxy-protocol': { type: 'boolean' },
        'proxy-trusted': { type: 'string' },
        'proxy-listeners': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  // The TLS flags may be given once per listener (`VALUE@LISTENER`); `str` reads their shared value.
  let tlsFlags: SplitTlsFlags = { shared: {}, listeners: {} };
  const str = (k: string): string | undefined => (isTlsFlag(k) ? tlsFlags.shared[k] : (values[k] as string | undefined));

  const only = str('only')?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const n of only ?? []) if (!LISTENER_NAMES.includes(n as ListenerName)) throw new UsageError(`--only: unknown listener "${n}" (use ${LISTENER_NAMES.join(', ')})`);
  if (only && only.length === 0) throw new UsageError('--only: no listener named');
  tlsFlags = asUsage(() => splitTlsFlags(values, MAIL_LISTENER_NAMES, only ?? LISTENER_NAMES));

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

  const workers = parseWorkers(str('workers'));
  if (workers !== undefined && workers !== 1 && store === 'memory') {
    throw new UsageError(`--workers ${str('workers')}: the memory store lives inside one process; use --store maildir:PATH (or another shared store)`);
  }
  const proxyProtocol = proxyOptions(values['proxy-protocol'] === true, str('proxy-trusted'), str('proxy-listeners'));

  const acmeChallenges = str('acme-challenge')?.split(',').map((c) => c.trim().toLowerCase());
  if (acmeChallenges?.length === 1 && acmeChallenges[0] === 'http-01' && only !== undefined && !only.includes('http')) {
    throw new UsageError('--acme-challenge http-01: the HTTP listener answers it; add http to --only');
  }
  const httpAuth = str('http-auth');
  if (httpAuth !== undefined && !/^[^:]+:.+$/.test(httpAuth)) throw new UsageError('--http-auth: expected USER:PASSWORD');
  // The HTTP API and web inbox show every stored message: safe by default means never open to the network unguarded.
  const host = str('host') ?? '127.0.0.1';
  if ((only === undefined || only.includes('http')) && httpAuth === undefined && !isLoopbackHost(host)) {
    throw new UsageError(`http: the HTTP API and web inbox show every message; on --host ${host} they need --http-auth USER:PASSWORD (or leave http out with --only)`);
  }
  const chaos = chaosOption(str('chaos'));

  let users;
  try {
    users = ((values.user as string[] | undefined) ?? []).map(parseUserSpec);
  } catch (err) {
    throw new UsageError(`--user: ${(err as Error).message}`);
  }

  const tls = tlsOptions(str);
  const listenerTls = asUsage(() => listenerTlsSections(tlsFlags, tls));
  const smtpSection = { ...(str('postmaster') !== undefined ? { postmaster: str('postmaster') } : {}), ...listenerTls.smtp };

  return {
    help: values.help === true,
    version: values.version === true,
    config: {
      host: str('host') ?? '127.0.0.1',
      // The command also serves the HTTP API and inbox unless --only says otherwise; LMTP when --lmtp-port asks for it.
      only: (only as ListenerName[] | undefined) ?? [...MAIL_LISTENER_NAMES, ...(ports.lmtp !== undefined ? ['lmtp'] : []), 'http'],
      ports,
      portOffset: offset,
      users,
      authDisabled: values['auth-disabled'] === true,
      // A client certificate asked for on one listener only (`--client-cert require@imaps`) is enough for EXTERNAL there.
      ...certLoginOption((k) => (k === 'client-cert' ? (str(k) ?? Object.values(tlsFlags.listeners).map((f) => f[k]).find((v) => v !== undefined && v !== 'none')) : str(k))),
      allowInsecureAuth: values['allow-insecure-auth'] === true,
      store,
      tls,
      acme: acmeOptions(str),
      log: { level: logLevel ?? 'info', format: (logFormat as 'text' | 'json' | undefined) ?? 'text' },
      ...listenerTls,
      smtp: Object.keys(smtpSection).length > 0 ? smtpSection : undefined,
      ...withListenerTls(lmtpOptions(str('lmtp-socket'), str('lmtp-socket-mode'), str('postmaster')), listenerTls.lmtp),
      limits: limitOptions(str),
      authThrottle: throttleOptions(str),
      metricsPort: str('metrics-port') === undefined ? undefined : parsePort(str('metrics-port')!, '--metrics-port'),
      ...(workers !== undefined ? { workers } : {}),
      ...(proxyProtocol ? { proxyProtocol } : {}),
      http: { auth: httpAuth, cors: str('http-cors') },
      chaos,
    },
  };
}

/** The LMTP section with the `security` of an `…@lmtp` TLS flag added. */
function withListenerTls(options: Pick<MailServerConfig, 'lmtp'>, tls: Record<string, unknown> | undefined): Pick<MailServerConfig, 'lmtp'> {
  if (tls === undefined) return options;
  return { lmtp: { ...options.lmtp, ...tls } as MailServerConfig['lmtp'] };
}

/** `--lmtp-socket PATH` (and the postmaster, which LMTP's default backend needs when SMTP is off) → `lmtp`. */
function lmtpOptions(socket: string | undefined, mode: string | undefined, postmaster: string | undefined): Pick<MailServerConfig, 'lmtp'> {
  if (mode !== undefined && socket === undefined) throw new UsageError('--lmtp-socket-mode needs --lmtp-socket');
  if (mode !== undefined && !/^0?[0-7]{3}$/.test(mode)) throw new UsageError(`--lmtp-socket-mode: expected an octal file mode such as 660, got "${mode}"`);
  if (socket === undefined) return postmaster !== undefined ? { lmtp: { postmaster } } : {};
  if (socket === '' || socket.includes('\0')) throw new UsageError('--lmtp-socket: expected a file path');
  return { lmtp: { socket, ...(mode !== undefined ? { socketMode: parseInt(mode, 8) } : {}), ...(postmaster !== undefined ? { postmaster } : {}) } };
}

/** A whole-number flag, undefined when absent. */
function wholeNumber(str: (k: string) => string | undefined, flag: string): number | undefined {
  const v = str(flag);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag}: expected a whole number, got "${v}"`);
  return Number(v);
}

/** `--auth-failures-per-*` → `authThrottle` (only the flags given). */
function throttleOptions(str: (k: string) => string | undefined): AuthThrottleOptions {
  const o: AuthThrottleOptions = {
    maxFailuresPerAddress: wholeNumber(str, 'auth-failures-per-address'),
    maxFailuresPerAccount: wholeNumber(str, 'auth-failures-per-account'),
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** `--max-connections*`, `--pre-auth-timeout`, `--command-timeout` → `limits` (only the flags given). */
function limitOptions(str: (k: string) => string | undefined): ServerLimits {
  const count = (flag: string): number | undefined => wholeNumber(str, flag);
  const seconds = (flag: string): number | undefined => {
    const v = count(flag);
    return v === undefined ? undefined : v * 1000;
  };
  const limits: ServerLimits = {
    maxConnections: count('max-connections'),
    maxConnectionsPerAddress: count('max-connections-per-address'),
    maxConnectionsPerAddressTotal: count('max-connections-per-address-total'),
    maxConnectionsTotal: count('max-connections-total'),
    preAuthTimeoutMs: seconds('pre-auth-timeout'),
    commandTimeoutMs: seconds('command-timeout'),
  };
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

function tlsOptions(str: (k: string) => string | undefined): ServerSecurityOptions {
  const cert = str('cert');
  const key = str('key');
  const pfx = str('pfx');
  if ((cert && !key) || (key && !cert)) throw new UsageError('--cert and --key go together');
  if (pfx && cert) throw new UsageError('use either --cert/--key or --pfx, not both');
  if (str('passphrase') !== undefined && !pfx && !key && str('cert-dir') === undefined) throw new UsageError('--passphrase needs --pfx, --key or --cert-dir');
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
    ...(str('cert-dir') !== undefined ? { certificateStore: asUsage(() => certificateDirectory(str('cert-dir')!, '--cert-dir', str('passphrase'))) } : {}),
    requestClientCertificate: clientCert === 'request' || clientCert === 'require',
    requireClientCertificate: clientCert === 'require',
  };
}

/** `--cert-login cn|email|FILE` → `certLogin` (a FILE is read and checked now, so a bad table stops the start). */
function certLoginOption(str: (k: string) => string | undefined): { certLogin?: CertificateLoginOption } {
  const v = str('cert-login');
  if (v === undefined) return {};
  if (str('client-cert') === undefined) throw new UsageError('--cert-login needs --client-cert request|require (no certificate, no EXTERNAL)');
  if (v === 'cn' || v === 'email') return { certLogin: v };
  try {
    certificateLoginMapper({ fingerprintFile: v });
  } catch (err) {
    throw new UsageError(`--cert-login: ${(err as Error).message}`);
  }
  return { certLogin: { fingerprintFile: v } };
}

/** `--chaos JSON` or `--chaos @FILE`, validated like `PUT /api/v1/chaos`. */
function chaosOption(value: string | undefined): ChaosConfig | undefined {
  if (value === undefined) return undefined;
  const text = value.startsWith('@') ? readFile(value.slice(1), '--chaos') : value;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError('--chaos: not valid JSON');
  }
  try {
    return parseChaosConfig(json);
  } catch (err) {
    throw new UsageError(`--chaos: ${(err as Error).message}`);
  }
}

function acmeOptions(str: (k: string) => string | undefined): AcmeOptions | undefined {
  const directoryUrl = str('acme-directory');
  const email = str('acme-email');
  const domains = str('acme-domain')?.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean);
  const given = ['acme-directory', 'acme-email', 'acme-domain', 'acme-state', 'acme-ca', 'acme-challenge'].filter((k) => str(k) !== undefined);
  if (given.length === 0) return undefined;
  if (!directoryUrl || !email || !domains || domains.length === 0) throw new UsageError('--acme-directory, --acme-email and --acme-domain go together');
  if (!/^https?:\/\//.test(directoryUrl)) throw new UsageError(`--acme-directory: expected an http(s) URL, got "${directoryUrl}"`);
  if (str('cert') !== undefined || str('pfx') !== undefined) throw new UsageError('use either --cert/--pfx or --acme-*, not both');
  const ca = str('acme-ca');
  const challenges = str('acme-challenge')?.split(',').map((c) => c.trim().toLowerCase());
  for (const c of challenges ?? []) if (c !== 'tls-alpn-01' && c !== 'http-01') throw new UsageError(`--acme-challenge: expected tls-alpn-01 or http-01, got "${c}"`);
  return {
    directoryUrl,
    email,
    domains,
    stateDir: str('acme-state') ?? 'postern-acme',
    directoryCa: ca ? readFile(ca, '--acme-ca') : undefined,
    ...(challenges ? { challenges: challenges as AcmeChallengeType[] } : {}),
  };
}

/** `--workers N|auto`: 1..{@link MAX_WORKERS}, or `auto` (one per core). */
function parseWorkers(v: string | undefined): number | 'auto' | undefined {
  if (v === undefined) return undefined;
  if (v === 'auto') return 'auto';
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_WORKERS) throw new UsageError(`--workers: expected a number from 1 to ${MAX_WORKERS} or auto, got "${v}"`);
  return Number(v);
}

/** More workers than this is a typo, not a plan: the largest common servers have 256 hardware threads. */
export const MAX_WORKERS = 256;

/** Resolves `workers` (a number or `auto`) to a process count. */
export function workerCount(workers: number | 'auto' | undefined): number {
  return workers === 'auto' ? availableParallelism() : (workers ?? 1);
}

function proxyOptions(enabled: boolean, trusted: string | undefined, listeners: string | undefined): MailServerConfig['proxyProtocol'] {
  if (!enabled) {
    if (trusted !== undefined) throw new UsageError('--proxy-trusted needs --proxy-protocol');
    if (listeners !== undefined) throw new UsageError('--proxy-listeners needs --proxy-protocol');
    return undefined;
  }
  if (trusted === undefined) throw new UsageError('--proxy-protocol needs --proxy-trusted CIDR[,CIDR…] (the addresses of your proxies)');
  const cidrs = trusted.split(',').map((c) => c.trim()).filter(Boolean);
  try {
    new ProxyTrust(cidrs);
  } catch (err) {
    if (err instanceof ProxyConfigError) throw new UsageError(`--proxy-trusted: ${err.message}`);
    throw err;
  }
  const names = listeners?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  // The HTTP listener is not a TcpServer: the PROXY protocol applies to the mail listeners only.
  const mail = LISTENER_NAMES.filter((n) => n !== 'http');
  for (const n of names ?? []) if (!mail.includes(n)) throw new UsageError(`--proxy-listeners: unknown listener "${n}" (use ${mail.join(', ')})`);
  return { trusted: cidrs, ...(names ? { listeners: names } : {}) };
}

function parsePort(v: string, flag: string, allowZeroBase = false): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: expected a number, got "${v}"`);
  const n = Number(v);
  if (n > 65535 || (!allowZeroBase && n < 0)) throw new UsageError(`${flag}: ${v} is not a port number`);
  return n;
}

/** Runs `fn`, turning its Error into a {@link UsageError} with the same message. */
function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
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

/** True for names and addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
