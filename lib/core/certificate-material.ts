/**
 * Certificate material as a `ServerSecurity` loads it: PEM or PKCS#12 from memory or files, the leaf and its
 * issuer picked out of a PEM chain, and the errors an operator sees when the material is wrong.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CertificateSource } from './server-security-options.js';

/** Thrown by {@link ServerSecurity.prepare} / reload when certificate material is missing, unreadable or inconsistent. */
export class CertificateError extends Error {
  override readonly name = 'CertificateError';
}

/** Loaded certificate material, as `tls.createSecureContext` takes it. */
export interface Material {
  cert?: string | Buffer;
  key?: string | Buffer;
  pfx?: Buffer;
  passphrase?: string;
}

/** The files a source is read from (watched for reloads). */
export function filesOf(s: CertificateSource): string[] {
  if ('certFile' in s) return [s.certFile, s.keyFile, ...(s.chainFile ? [s.chainFile] : [])];
  if ('pfxFile' in s) return [s.pfxFile];
  return [];
}

async function read(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new CertificateError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Reads a source's material (files now; PEM and PFX as they are, a PEM chain appended to its certificate). */
export async function loadMaterial(s: CertificateSource): Promise<Material> {
  if ('pfx' in s) return { pfx: s.pfx, passphrase: s.passphrase };
  if ('pfxFile' in s) return { pfx: await read(s.pfxFile), passphrase: s.passphrase };
  if ('certFile' in s) {
    const cert = await read(s.certFile);
    const chain = s.chainFile ? await read(s.chainFile) : undefined;
    return { cert: chain ? Buffer.concat([cert, Buffer.from('\n'), chain]) : cert, key: await read(s.keyFile), passphrase: s.passphrase };
  }
  const cert = s.chain ? `${String(s.cert)}\n${String(s.chain)}` : s.cert;
  return { cert, key: s.key, passphrase: s.passphrase };
}

/** The leaf certificate of PEM material (undefined for PFX: see `certificateOfContext`). */
export function leafOf(m: Material): X509Certificate | undefined {
  if (!m.cert) return undefined; // PFX: see certificateOfContext
  const first = splitPemList(m.cert)[0];
  return first ? new X509Certificate(first) : undefined;
}

/** The issuer of a PEM source's leaf, when the configured chain carries it (RFC 5246 §7.4.2 order: leaf first). */
export function issuerOf(m: Material): X509Certificate | undefined {
  const [leafPem, ...rest] = m.cert ? splitPemList(m.cert) : [];
  if (!leafPem) return undefined;
  const leaf = new X509Certificate(leafPem);
  for (const pem of rest) {
    const candidate = new X509Certificate(pem);
    if (leaf.checkIssued(candidate)) return candidate;
  }
  return undefined;
}

/** Splits PEM bundles into single certificates. */
export function splitPemList(input: string | Buffer | ReadonlyArray<string | Buffer> | undefined): string[] {
  if (input === undefined) return [];
  const list = Array.isArray(input) ? input : [input];
  const out: string[] = [];
  for (const item of list as ReadonlyArray<string | Buffer>) {
    const text = item.toString();
    const found = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    if (found) out.push(...found);
  }
  return out;
}

/** SHA-256 of a DER certificate as `AB:CD:…` (for logs and the CLI). */
export function fingerprintOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}
