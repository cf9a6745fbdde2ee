import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CertificateLoginMapper } from '../contracts/certificate-login.js';
import type { PeerInfo } from '../contracts/peer-info.js';

/**
 * How `--cert-login` (config `certLogin`) maps a validated client certificate to a login for SASL EXTERNAL:
 * `cn` (the subject's common name), `email` (the first `email:` subjectAltName, RFC 5280 §4.2.1.6 rfc822Name), or a
 * fingerprint table (a file, see {@link parseFingerprintTable}, or the table itself).
 */
export type CertificateLoginOption =
  | 'cn'
  | 'email'
  | { readonly fingerprintFile: string }
  | { readonly fingerprints: Readonly<Record<string, string | { readonly login: string; readonly mayActAs?: readonly string[] }>> };

/** The subject's common names, in order (`CN=` relative distinguished names). */
export function subjectCommonNames(certificate: X509Certificate): string[] {
  return certificate.subject.split('\n').flatMap((rdn) => (rdn.startsWith('CN=') ? [rdn.slice(3)] : []));
}

/** The certificate's SAN e-mail addresses (`email:` entries), in order. */
export function subjectEmailAddresses(certificate: X509Certificate): string[] {
  return (certificate.subjectAltName ?? '').split(', ').flatMap((san) => (san.startsWith('email:') ? [san.slice(6)] : []));
}

/** Maps a certificate to its subject's first common name (`--cert-login cn`). Never allows another authzid. */
export class CommonNameLoginMapper implements CertificateLoginMapper {
  loginFor(certificate: X509Certificate): string | undefined {
    return subjectCommonNames(certificate)[0];
  }
}

/** Maps a certificate to its first SAN e-mail address (`--cert-login email`). Never allows another authzid. */
export class EmailLoginMapper implements CertificateLoginMapper {
  loginFor(certificate: X509Certificate): string | undefined {
    return subjectEmailAddresses(certificate)[0];
  }
}

/** One row of a fingerprint table: the login, and the other authorization identities it may act as. */
export interface FingerprintEntry {
  readonly login: string;
  readonly mayActAs: readonly string[];
}

/** Normalises a SHA-256 fingerprint: upper-case hex pairs joined by `:` (as `X509Certificate.fingerprint256`). */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

/**
 * Parses a fingerprint table (`--cert-login FILE`): one certificate per line,
 * `SHA256-FINGERPRINT LOGIN [AUTHZID…]`, fields separated by spaces or tabs; the fingerprint is 64 hex digits with
 * or without colons, any case (`openssl x509 -noout -fingerprint -sha256 -in client.pem` prints one after
 * `sha256 Fingerprint=`, which is accepted too); the optional further words are authorization identities that
 * certificate may act as. Blank lines and lines starting with `#` are ignored.
 * @throws Error naming the line for a malformed line or a fingerprint listed twice.
 */
export function parseFingerprintTable(text: string): Map<string, FingerprintEntry> {
  const table = new Map<string, FingerprintEntry>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim().replace(/^sha256 Fingerprint=/i, '');
    if (line === '' || line.startsWith('#')) return;
    const [first, login, ...mayActAs] = line.split(/\s+/);
    const fingerprint = normalizeFingerprint(first);
    if (!fingerprint || !login) throw new Error(`line ${i + 1}: expected "SHA256-FINGERPRINT LOGIN [AUTHZID…]"`);
    if (table.has(fingerprint)) throw new Error(`line ${i + 1}: fingerprint listed twice`);
    table.set(fingerprint, { login, mayActAs });
  });
  return table;
}

/** Maps certificates by their SHA-256 fingerprint (`--cert-login FILE`); a row may allow other authzids. */
export class FingerprintLoginMapper implements CertificateLoginMapper {
  constructor(private readonly table: ReadonlyMap<string, FingerprintEntry>) {}

  /** Reads a table file in the {@link parseFingerprintTable} format. @throws Error when unreadable or malformed. */
  static fromFile(path: string): FingerprintLoginMapper {
    try {
      return new FingerprintLoginMapper(parseFingerprintTable(readFileSync(path, 'utf8')));
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message}`);
    }
  }

  loginFor(certificate: X509Certificate): string | undefined {
    return this.table.get(certificate.fingerprint256)?.login;
  }

  /** True when this certificate's row lists `authzid`. */
  mayAuthorize(_login: string, authzid: string, peer: PeerInfo): boolean {
    const fingerprint = peer.security.peerCertificate?.fingerprint256;
    return fingerprint !== undefined && (this.table.get(fingerprint)?.mayActAs.includes(authzid) ?? false);
  }
}

/** Builds the mapper a {@link CertificateLoginOption} names. @throws Error for an unreadable or malformed table. */
export function certificateLoginMapper(option: CertificateLoginOption): CertificateLoginMapper {
  if (option === 'cn') return new CommonNameLoginMapper();
  if (option === 'email') return new EmailLoginMapper();
  if ('fingerprintFile' in option) return FingerprintLoginMapper.fromFile(option.fingerprintFile);
  const table = new Map<string, FingerprintEntry>();
  for (const [fp, row] of Object.entries(option.fingerprints)) {
    const fingerprint = normalizeFingerprint(fp);
    if (!fingerprint) throw new Error(`certLogin: "${fp}" is not a SHA-256 fingerprint`);
    table.set(fingerprint, typeof row === 'string' ? { login: row, mayActAs: [] } : { login: row.login, mayActAs: row.mayActAs ?? [] });
  }
  return new FingerprintLoginMapper(table);
}
