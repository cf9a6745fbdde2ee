/**
 * Throwaway development and test certificates: a dev CA, a localhost server certificate, client
 * certificates (valid, untrusted, expired, self-signed) and a server certificate for the wrong
 * host. Never use them outside localhost testing.
 *
 * Keys are EC P-256 with ECDSA-SHA256 signatures: about 10x faster to generate than RSA 2048
 * (measured with selfsigned 5 on Node 20: ~85 ms vs ~820 ms for a CA plus six leaves).
 */
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { generate as Generate } from 'selfsigned';
import { toPkcs12 } from './to-pkcs12.js';

export { toPkcs12 } from './to-pkcs12.js';

/** A PEM certificate and its unencrypted PKCS#8 PEM private key. */
export interface PemPair {
  /** PEM certificate (one `BEGIN CERTIFICATE` block). */
  readonly cert: string;
  /** PEM PKCS#8 private key. Never log it. */
  readonly key: string;
}

/** The whole development certificate set; see {@link generateDevCertificates}. */
export interface DevCertificates {
  /** Dev CA: self-signed, basicConstraints cA, keyCertSign. The one trust anchor for tests. */
  readonly ca: PemPair;
  /** Server certificate for the requested hosts (default localhost, 127.0.0.1, ::1), serverAuth, signed by `ca`. */
  readonly server: PemPair;
  /** Client certificate CN=postern-client, clientAuth, signed by `ca`. */
  readonly client: PemPair;
  /** A second CA that nobody trusts. */
  readonly untrustedCa: PemPair;
  /** Client certificate CN=postern-untrusted-client signed by `untrustedCa`. */
  readonly untrustedClient: PemPair;
  /** Client certificate CN=postern-expired-client signed by `ca`, whose notAfter is in the past. */
  readonly expiredClient: PemPair;
  /** Self-signed client certificate CN=postern-self-signed-client (a leaf that is its own root). */
  readonly selfSignedClient: PemPair;
  /** Server certificate for other.example only (CN and SAN), signed by `ca`: for name-mismatch tests. */
  readonly wrongHostServer: PemPair;
}

/** Options for {@link generateDevCertificates}. */
export interface DevCertificateOptions {
  /** Server certificate names; IP literals become IP SANs, the rest DNS SANs. The first is the CN. */
  hosts?: string[];
  /** Validity in days of every certificate except `expiredClient`. */
  days?: number;
}

/** Default server names: the loopback name and both loopback addresses. */
export const DEV_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];
/** Default validity: long enough for a dev setup, short enough that leaked files go stale. */
export const DEV_CERT_DAYS = 90;
const DAY_MS = 86_400_000;
/** Backdate notBefore by an hour so peers with a slightly slow clock accept the certificates. */
const CLOCK_SKEW_MS = 3_600_000;

type Extensions = NonNullable<NonNullable<Parameters<typeof Generate>[1]>['extensions']>;
type SubjectAltName = Extract<Extensions[number], { name: 'subjectAltName' }>['altNames'][number];

interface LeafSpec {
  cn: string;
  issuer?: PemPair;
  usage: 'serverAuth' | 'clientAuth';
  altNames?: SubjectAltName[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * Generates a fresh certificate set in memory (about 100 ms). Nothing is written to disk; see
 * {@link writeDevCertificates}. Throws only if key generation or signing fails.
 */
export async function generateDevCertificates(options: DevCertificateOptions = {}): Promise<DevCertificates> {
  const hosts = options.hosts !== undefined && options.hosts.length > 0 ? options.hosts : [...DEV_HOSTS];
  const days = options.days ?? DEV_CERT_DAYS;
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(now + days * DAY_MS);

  const [ca, untrustedCa] = await Promise.all([
    makeCa('Postern Dev CA', notBefore, notAfter),
    makeCa('Postern Untrusted CA', notBefore, notAfter),
  ]);
  const valid = { notBefore, notAfter };
  const [server, client, untrustedClient, expiredClient, selfSignedClient, wrongHostServer] = await Promise.all([
    makeLeaf({ cn: hosts[0], issuer: ca, usage: 'serverAuth', altNames: hosts.map(altName), ...valid }),
    makeLeaf({ cn: 'postern-client', issuer: ca, usage: 'clientAuth', ...valid }),
    makeLeaf({ cn: 'postern-untrusted-client', issuer: untrustedCa, usage: 'clientAuth', ...valid }),
    makeLeaf({
      cn: 'postern-expired-client',
      issuer: ca,
      usage: 'clientAuth',
      notBefore: new Date(now - 30 * DAY_MS),
      notAfter: new Date(now - DAY_MS),
    }),
    makeLeaf({ cn: 'postern-self-signed-client', usage: 'clientAuth', ...valid }),
    makeLeaf({ cn: 'other.example', issuer: ca, usage: 'serverAuth', altNames: [altName('other.example')], ...valid }),
  ]);
  return { ca, server, client, untrustedCa, untrustedClient, expiredClient, selfSignedClient, wrongHostServer };
}

/**
 * Generates a client certificate (extended key usage `clientAuth`) signed by `issuer`, valid `days` from an hour
 * ago, with subject `CN=cn` and the given SAN e-mail addresses (rfc822Name, RFC 5280 §4.2.1.6). For tests and samples
 * of certificate logins (SASL EXTERNAL).
 */
export async function generateClientCertificate(issuer: PemPair, cn: string, options: { emails?: readonly string[]; days?: number } = {}): Promise<PemPair> {
  const now = Date.now();
  const altNames: SubjectAltName[] = (options.emails ?? []).map((value) => ({ type: 1, value }));
  return makeLeaf({
    cn,
    issuer,
    usage: 'clientAuth',
    ...(altNames.length > 0 ? { altNames } : {}),
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + (options.days ?? DEV_CERT_DAYS) * DAY_MS),
  });
}

/**
 * Generates a development CA alone ("Postern Dev CA" unless `cn` is given), valid `days` from an hour ago. For
 * callers that sign many server certificates with one CA (the test double caches one per process).
 */
export async function generateDevCa(cn = 'Postern Dev CA', days: number = DEV_CERT_DAYS): Promise<PemPair> {
  const now = Date.now();
  return makeCa(cn, new Date(now - CLOCK_SKEW_MS), new Date(now + days * DAY_MS));
}

/**
 * Generates a server certificate (serverAuth, SANs from `hosts`, the first is the CN) signed by `ca`, valid `days`
 * from an hour ago.
 */
export async function generateServerCertificate(ca: PemPair, hosts: readonly string[] = DEV_HOSTS, days: number = DEV_CERT_DAYS): Promise<PemPair> {
  const now = Date.now();
  const list = hosts.length > 0 ? [...hosts] : [...DEV_HOSTS];
  return makeLeaf({ cn: list[0], issuer: ca, usage: 'serverAuth', altNames: list.map(altName), notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + days * DAY_MS) });
}

/** The files {@link writeDevCertificates} writes, by name, with the pair and part each holds. */
const FILES: ReadonlyArray<readonly [string, keyof DevCertificates, keyof PemPair]> = [
  ['ca.pem', 'ca', 'cert'],
  ['ca-key.pem', 'ca', 'key'],
  ['server.pem', 'server', 'cert'],
  ['server-key.pem', 'server', 'key'],
  ['client.pem', 'client', 'cert'],
  ['client-key.pem', 'client', 'key'],
  ['untrusted-ca.pem', 'untrustedCa', 'cert'],
  ['untrusted-client.pem', 'untrustedClient', 'cert'],
  ['untrusted-client-key.pem', 'untrustedClient', 'key'],
  ['expired-client.pem', 'expiredClient', 'cert'],
  ['expired-client-key.pem', 'expiredClient', 'key'],
];

/** Passphrase of the `server.pfx` that {@link writeDevCertificates} writes. Throwaway material only. */
export const DEV_PFX_PASSPHRASE = 'postern';

/**
 * Writes a certificate set as PEM files, plus `server.pfx` (passphrase
 * {@link DEV_PFX_PASSPHRASE}), into `dir` (created if missing), overwriting existing
 * files. Key files get mode 0600. Generates a fresh set unless `certs` is given.
 * Returns the set and the paths written, in a fixed order.
 */
export async function writeDevCertificates(
  dir: string,
  certs?: DevCertificates,
): Promise<{ certs: DevCertificates; files: string[] }> {
  const set = certs ?? (await generateDevCertificates());
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [name, which, part] of FILES) {
    const path = join(dir, name);
    const mode = part === 'key' ? 0o600 : 0o644;
    await writeFile(path, set[which][part], { mode });
    await chmod(path, mode); // writeFile's mode applies only when it creates the file
    files.push(path);
  }
  const pfxPath = join(dir, 'server.pfx');
  await writeFile(pfxPath, toPkcs12(set.server, DEV_PFX_PASSPHRASE), { mode: 0o600 });
  await chmod(pfxPath, 0o600);
  files.push(pfxPath);
  return { certs: set, files };
}

/** SHA-256 fingerprint of a PEM certificate, colon-separated upper-case hex (as OpenSSL prints it). */
export function fingerprint256(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

function altName(host: string): SubjectAltName {
  return isIP(host) !== 0 ? { type: 7, ip: host } : { type: 2, value: host };
}

async function makeCa(cn: string, notBefore: Date, notAfter: Date): Promise<PemPair> {
  const out = await (await import('selfsigned')).generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    // RFC 5280 §4.2.1.9 / §4.2.1.3: a CA certificate asserts cA and keyCertSign, both critical.
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: out.cert, key: out.private };
}

async function makeLeaf(spec: LeafSpec): Promise<PemPair> {
  const extensions: Extensions = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', [spec.usage]: true },
  ];
  if (spec.altNames !== undefined) extensions.push({ name: 'subjectAltName', altNames: spec.altNames });
  const out = await (await import('selfsigned')).generate([{ name: 'commonName', value: spec.cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: spec.notBefore,
    notAfterDate: spec.notAfter,
    extensions,
    ...(spec.issuer !== undefined ? { ca: { cert: spec.issuer.cert, key: spec.issuer.key } } : {}),
  });
  return { cert: out.cert, key: out.private };
}
