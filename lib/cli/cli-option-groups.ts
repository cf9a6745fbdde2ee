/**
 * The option groups of the command line: each turns the flags of one area (TLS, limits, ACME, PROXY protocol, LMTP…)
 * into its part of the {@link MailServerConfig}, checking them together, so `parseCliArgs` only wires them up.
 */
import { availableParallelism } from 'node:os';
import { certificateLoginMapper, type CertificateLoginOption } from '../backends/certificate-login-mappers.js';
import type { AcmeChallengeType, AcmeOptions } from '../core/acme-certificates.js';
import type { ServerLimits } from '../core/connection-limits.js';
import { ProxyConfigError, ProxyTrust } from '../core/proxy-protocol.js';
import type { CertificateSource, ServerSecurityOptions } from '../core/server-security.js';
import { parseSslProtocols, protocolsFrom } from '../core/ssl-protocols.js';
import type { AuthThrottleOptions } from '../protocol/auth-throttle.js';
import { LISTENER_NAMES, type MailServerConfig } from '../di/mail-server.js';
import { parseChaosConfig, type ChaosConfig } from '../chaos/chaos.js';
import { certificateDirectory, tlsAlpn, tlsGroups } from './cli-tls.js';
import type { QuotaOptions } from '../contracts/quota.js';
import { parseDsnRelayUrl, type DsnRelayOptions } from '../smtp/dsn-relay.js';
import { asUsage, readFile, readFileBuffer, UsageError, wholeNumber } from './cli-usage.js';

/** The LMTP section with the `security` of an `…@lmtp` TLS flag added. */
export function withListenerTls(options: Pick<MailServerConfig, 'lmtp'>, tls: Record<string, unknown> | undefined): Pick<MailServerConfig, 'lmtp'> {
  if (tls === undefined) return options;
  return { lmtp: { ...options.lmtp, ...tls } as MailServerConfig['lmtp'] };
}

/** `--lmtp-socket PATH` (and the postmaster, which LMTP's default backend needs when SMTP is off) → `lmtp`. */
export function lmtpOptions(socket: string | undefined, mode: string | undefined, postmaster: string | undefined, dsn = false): Pick<MailServerConfig, 'lmtp'> {
  if (mode !== undefined && socket === undefined) throw new UsageError('--lmtp-socket-mode needs --lmtp-socket');
  if (mode !== undefined && !/^0?[0-7]{3}$/.test(mode)) throw new UsageError(`--lmtp-socket-mode: expected an octal file mode such as 660, got "${mode}"`);
  const shared = { ...(postmaster !== undefined ? { postmaster } : {}), ...(dsn ? { dsn } : {}) };
  if (socket === undefined) return Object.keys(shared).length > 0 ? { lmtp: shared } : {};
  if (socket === '' || socket.includes('\0')) throw new UsageError('--lmtp-socket: expected a file path');
  return { lmtp: { socket, ...(mode !== undefined ? { socketMode: parseInt(mode, 8) } : {}), ...shared } };
}

/** `--auth-failures-per-*` → `authThrottle` (only the flags given). */
export function throttleOptions(str: (k: string) => string | undefined): AuthThrottleOptions {
  const o: AuthThrottleOptions = {
    maxFailuresPerAddress: wholeNumber(str, 'auth-failures-per-address'),
    maxFailuresPerAccount: wholeNumber(str, 'auth-failures-per-account'),
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** `--max-connections*`, `--pre-auth-timeout`, `--command-timeout` → `limits` (only the flags given). */
export function limitOptions(str: (k: string) => string | undefined): ServerLimits {
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

/** `--cert/--key`, `--pfx`, `--passphrase`, `--cert-dir`, `--ca`, `--client-cert`, `--tls-min`, `--tls-groups`, `--tls-alpn` → the listeners' `tls` (files read now). */
export function tlsOptions(str: (k: string) => string | undefined): ServerSecurityOptions {
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
  const groups = str('tls-groups');
  const alpn = str('tls-alpn');
  return {
    certificate,
    protocols,
    ...(groups !== undefined ? { groups: asUsage(() => tlsGroups(groups, '--tls-groups')) } : {}),
    ...(alpn !== undefined ? { alpnProtocols: asUsage(() => tlsAlpn(alpn, '--tls-alpn')) } : {}),
    trustedCertificates: ca ? readFile(ca, '--ca') : undefined,
    ...(str('cert-dir') !== undefined ? { certificateStore: asUsage(() => certificateDirectory(str('cert-dir')!, '--cert-dir', str('passphrase'))) } : {}),
    requestClientCertificate: clientCert === 'request' || clientCert === 'require',
    requireClientCertificate: clientCert === 'require',
  };
}

/** `--cert-login cn|email|FILE` → `certLogin` (a FILE is read and checked now, so a bad table stops the start). */
export function certLoginOption(str: (k: string) => string | undefined): { certLogin?: CertificateLoginOption } {
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
export function chaosOption(value: string | undefined): ChaosConfig | undefined {
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

/** `--acme-*` → `acme` (undefined when no ACME flag is given; the three main ones go together). */
export function acmeOptions(str: (k: string) => string | undefined): AcmeOptions | undefined {
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
export function parseWorkers(v: string | undefined): number | 'auto' | undefined {
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

/** `--proxy-protocol`, `--proxy-trusted`, `--proxy-listeners` → `proxyProtocol` (undefined when off). */
export function proxyOptions(enabled: boolean, trusted: string | undefined, listeners: string | undefined): MailServerConfig['proxyProtocol'] {
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

/** A port flag's value: 0–65535. */
export function parsePort(v: string, flag: string, allowZeroBase = false): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: expected a number, got "${v}"`);
  const n = Number(v);
  if (n > 65535 || (!allowZeroBase && n < 0)) throw new UsageError(`${flag}: ${v} is not a port number`);
  return n;
}

/** True for names and addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Octets per size suffix: powers of 1024, as Dovecot and Postfix read `K`, `M`, `G`. */
const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * A size in octets: a whole number, optionally followed by `K`, `M`, `G` or `T` (case-insensitive, powers of 1024),
 * above 0 and at most `Number.MAX_SAFE_INTEGER`.
 * @throws UsageError naming `flag`.
 */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)([KMGT]?)B?$/i.exec(text.trim());
  const octets = m === null ? NaN : Number(m[1]) * SIZE_UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(octets) || octets <= 0) throw new UsageError(`${flag}: expected a size such as 52428800, 512K, 50M or 2G, got "${text}"`);
  return octets;
}

/**
 * `--quota SIZE` (every user) and `--user-quota LOGIN:SIZE` (repeatable; LOGIN is the canonical username, and the
 * size overrides `--quota` for that user) → the storage quota (RFC 9208), or undefined when neither is given.
 */
export function quotaOptions(all: string | undefined, perUser: readonly string[] | undefined): QuotaOptions | undefined {
  if (all === undefined && (perUser === undefined || perUser.length === 0)) return undefined;
  const users: Record<string, number> = {};
  for (const spec of perUser ?? []) {
    const colon = spec.lastIndexOf(':');
    if (colon <= 0) throw new UsageError(`--user-quota: expected LOGIN:SIZE, got "${spec}"`);
    const login = spec.slice(0, colon);
    if (Object.prototype.hasOwnProperty.call(users, login)) throw new UsageError(`--user-quota: ${login} is given twice`);
    users[login] = parseSize(spec.slice(colon + 1), '--user-quota');
  }
  return { ...(all !== undefined ? { storage: parseSize(all, '--quota') } : {}), ...(Object.keys(users).length > 0 ? { users } : {}) };
}

/**
 * `--dsn-relay URL` (needs `--dsn`) and `--dsn-relay-ca FILE` → `dsnRelay`, the URL checked now (a bad one is a usage
 * error that never shows its password).
 */
export function dsnRelayOption(url: string | undefined, caFile: string | undefined, dsn: boolean): { dsnRelay?: DsnRelayOptions } {
  if (url === undefined) {
    if (caFile !== undefined) throw new UsageError('--dsn-relay-ca needs --dsn-relay');
    return {};
  }
  if (!dsn) throw new UsageError('--dsn-relay needs --dsn (it carries the notices DSN asks for)');
  asUsage(() => {
    try {
      parseDsnRelayUrl(url);
    } catch (err) {
      throw new Error(`--dsn-relay: ${(err as Error).message}`);
    }
  });
  return { dsnRelay: { url, ...(caFile !== undefined ? { ca: readFile(caFile, '--dsn-relay-ca') } : {}) } };
}
