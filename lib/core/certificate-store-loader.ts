import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import tls from 'node:tls';
import type { LocalCertificate } from './policy-errors.js';

/** One certificate of a {@link CertificateStore}, with what searching and serving need. */
export interface StoredCertificate {
  /** The certificate itself. */
  readonly certificate: X509Certificate;
  /** Issuers found in the store above it, nearest first, without the self-signed root (what a server sends). */
  readonly chain: readonly X509Certificate[];
  /** Its direct issuer when the store holds it, the root included (what OCSP stapling needs). */
  readonly issuer?: X509Certificate;
  /** The file it came from (absolute path). */
  readonly file: string;
  /** True when the store holds its private key (same file, another PEM file, or the PFX). */
  readonly hasPrivateKey: boolean;
  /** SHA-1 of the DER, upper-case hex without separators: .NET's `X509Certificate2.Thumbprint`. */
  readonly thumbprint: string;
  /** SHA-256 of the DER, upper-case hex without separators. */
  readonly thumbprint256: string;
  /** Certificate and key as node:tls takes them (PEM with the chain appended, or the PFX); only with a private key. */
  readonly localCertificate?: LocalCertificate;
}

/** A file that could not be used, and why (it is skipped; the rest of the directory loads). */
export interface CertificateFileProblem {
  readonly file: string;
  readonly error: Error;
}

/** What a scan of a directory found. */
export interface DirectoryScan {
  readonly certificates: StoredCertificate[];
  readonly problems: CertificateFileProblem[];
}

/** File name endings read as PEM text (certificates and/or private keys). */
export const PEM_EXTENSIONS: readonly string[] = ['.pem', '.crt', '.cer', '.key'];
/** File name endings read as PKCS#12 (RFC 7292). */
export const PFX_EXTENSIONS: readonly string[] = ['.pfx', '.p12'];
/** Longest issuer chain followed inside the store (real chains have 1–3 intermediates). */
const MAX_CHAIN_DEPTH = 8;
/** Where Debian, Fedora/RHEL and macOS/BSD keep the system CA bundle; the first that exists is used. */
export const SYSTEM_CA_BUNDLES: readonly string[] = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

const CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const KEY_RE = /-----BEGIN (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----[\s\S]*?-----END (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----/g;

interface Loose {
  certificate: X509Certificate;
  file: string;
  key?: { pem: string; passphrase?: string };
  pfx?: { data: Buffer; passphrase?: string };
}

/**
 * Reads every PEM (`.pem .crt .cer .key`) and PKCS#12 (`.pfx .p12`) file directly in `directory` (not below it;
 * hidden files skipped), pairs private keys with their certificates by public key, whatever file they are in, and
 * links issuers. A file that cannot be read or parsed (or a PFX whose passphrase is wrong) is reported in
 * `problems` and skipped.
 * @param passphrase for encrypted keys and PFX files, by file path.
 * @throws only when the directory itself cannot be listed.
 */
export async function scanDirectory(directory: string, passphrase: (file: string) => string | undefined): Promise<DirectoryScan> {
  const names = (await readdir(directory)).filter((n) => !n.startsWith('.')).sort();
  const loose: Loose[] = [];
  const keys: Array<{ key: KeyObject; pem: string; passphrase?: string }> = [];
  const problems: CertificateFileProblem[] = [];
  for (const name of names) {
    const ext = extname(name).toLowerCase();
    if (!PEM_EXTENSIONS.includes(ext) && !PFX_EXTENSIONS.includes(ext)) continue;
    const file = join(directory, name);
    try {
      if (!(await stat(file)).isFile()) continue;
      const data = await readFile(file);
      if (PFX_EXTENSIONS.includes(ext)) loose.push(readPfx(file, data, passphrase(file)));
      else readPem(file, data.toString('utf8'), passphrase(file), loose, keys);
    } catch (err) {
      problems.push({ file, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }
  for (const entry of loose) {
    if (entry.key || entry.pfx) continue;
    const match = keys.find((k) => entry.certificate.checkPrivateKey(k.key));
    if (match) entry.key = { pem: match.pem, passphrase: match.passphrase };
  }
  const all = loose.map((l) => l.certificate);
  return { certificates: loose.map((l) => stored(l, chainOf(l.certificate, all), issuerOf(l.certificate, all))), problems };
}

function readPfx(file: string, data: Buffer, passphrase: string | undefined): Loose {
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ pfx: data, passphrase });
  } catch (err) {
    throw new Error(`cannot open the PKCS#12 file (is the passphrase right?): ${(err as Error).message}`);
  }
  const certificate = certificateOfContext(context);
  if (!certificate) throw new Error('no certificate found in the PKCS#12 file');
  return { certificate, file, pfx: { data, passphrase } };
}

function readPem(file: string, text: string, passphrase: string | undefined, loose: Loose[], keys: Array<{ key: KeyObject; pem: string; passphrase?: string }>): void {
  const certs = text.match(CERT_RE) ?? [];
  const keyPems = text.match(KEY_RE) ?? [];
  if (certs.length === 0 && keyPems.length === 0) throw new Error('no PEM certificate or private key in the file');
  for (const pem of keyPems) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, passphrase });
    } catch (err) {
      throw new Error(`cannot read the private key${pem.includes('ENCRYPTED') ? ' (is the passphrase right?)' : ''}: ${(err as Error).message}`);
    }
    keys.push({ key, pem, passphrase });
  }
  const parsed = certs.map((pem) => new X509Certificate(pem));
  const own = keys.slice(keys.length - keyPems.length);
  for (const certificate of parsed) {
    const key = own.find((k) => certificate.checkPrivateKey(k.key));
    loose.push({ certificate, file, key: key ? { pem: key.pem, passphrase: key.passphrase } : undefined });
  }
}

/** Issuers of `leaf` among `all`, nearest first, stopping before a self-signed root. */
function chainOf(leaf: X509Certificate, all: readonly X509Certificate[]): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH && !isSelfIssued(current); depth++) {
    const issuer = all.find((c) => c !== current && current.checkIssued(c) && current.verify(c.publicKey));
    if (!issuer || isSelfIssued(issuer) || chain.includes(issuer)) break;
    chain.push(issuer);
    current = issuer;
  }
  return chain;
}

function issuerOf(c: X509Certificate, all: readonly X509Certificate[]): X509Certificate | undefined {
  if (isSelfIssued(c)) return undefined;
  return all.find((i) => i !== c && c.checkIssued(i) && c.verify(i.publicKey));
}

function isSelfIssued(c: X509Certificate): boolean {
  return c.checkIssued(c);
}

function stored(l: Loose, chain: X509Certificate[], issuer: X509Certificate | undefined): StoredCertificate {
  const hex = (colons: string): string => colons.replace(/:/g, '').toUpperCase();
  let localCertificate: LocalCertificate | undefined;
  if (l.pfx) localCertificate = { pfx: l.pfx.data, passphrase: l.pfx.passphrase };
  else if (l.key) localCertificate = { cert: [l.certificate, ...chain].map((c) => c.toString()).join('\n'), key: l.key.pem, passphrase: l.key.passphrase };
  return {
    certificate: l.certificate,
    chain,
    issuer,
    file: l.file,
    hasPrivateKey: localCertificate !== undefined,
    thumbprint: hex(l.certificate.fingerprint),
    thumbprint256: hex(l.certificate.fingerprint256),
    localCertificate,
  };
}

/**
 * The certificate a context serves (PFX material, whose PEM we never see). Node has no public API for it; its native
 * SecureContext's `getCertificate()` (what TLSSocket uses) returns the DER. Undefined if that ever changes.
 */
export function certificateOfContext(context: tls.SecureContext): X509Certificate | undefined {
  const native = (context as unknown as { context?: { getCertificate?: () => Buffer | undefined } }).context;
  try {
    const der = typeof native?.getCertificate === 'function' ? native.getCertificate() : undefined;
    return der ? new X509Certificate(der) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The system's trusted CAs as PEM: the first bundle of {@link SYSTEM_CA_BUNDLES} that exists (or `file`), else
 * Node's bundled Mozilla roots (`tls.rootCertificates`).
 */
export function systemCertificates(file?: string): string[] {
  const bundle = file ?? SYSTEM_CA_BUNDLES.find((f) => existsSync(f));
  if (bundle) {
    const found = readFileSync(bundle, 'utf8').match(CERT_RE);
    if (found && found.length > 0) return found;
  }
  return [...tls.rootCertificates];
}
