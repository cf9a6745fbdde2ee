import type { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';
import type { LocalCertificate } from './policy-errors.js';
import { scanDirectory, systemCertificates, type CertificateFileProblem, type StoredCertificate } from './certificate-store-loader.js';

export type { CertificateFileProblem, StoredCertificate } from './certificate-store-loader.js';

/** How a {@link CertificateStore} is opened. */
export interface CertificateStoreOptions {
  /** Directory of PEM (`.pem .crt .cer .key`) and PKCS#12 (`.pfx .p12`) files; keys pair with certificates by public key. */
  directory: string;
  /** Passphrase for encrypted PEM keys and PFX files: one for all, or chosen per file path. */
  passphrase?: string | ((file: string) => string | undefined);
  /** Reload when files are added, replaced or removed (default true). */
  watch?: boolean;
  /** Quiet time after the last file event before reloading (ms, default {@link CERTIFICATE_STORE_DEBOUNCE_MS}). */
  debounceMs?: number;
  /** The system CA bundle to trust (default: the first of `SYSTEM_CA_BUNDLES` that exists, else Node's roots). */
  systemCaFile?: string;
  /** Where reloads and skipped files are reported (a `Logger` fits). */
  log?: { info(message: string, meta?: Record<string, unknown>): void; warn(message: string, meta?: Record<string, unknown>): void };
}

/**
 * Quiet time before a reload: editors, `cp` and ACME clients write a certificate and its key as several events
 * within a few ms; 200 ms collects them into one reload without delaying a renewal noticeably.
 */
export const CERTIFICATE_STORE_DEBOUNCE_MS = 200;

/** EKU OIDs (RFC 5280 §4.2.1.12): TLS server and client authentication. */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Certificates from a directory, searchable and watched: Postern's counterpart of .NET's `X509Store`
 * (`Certificates`, `Certificates.Find(X509FindType.FindByThumbprint | FindBySubjectName | …)`). It is the source of
 * server certificates per SNI name (`ServerSecurityOptions.certificateStore`), of the client certificates offered to
 * a `LocalCertificateSelectionCallback` (`ClientSecurityOptions.certificateStore`), and of trust anchors (its CA
 * certificates plus the system CA bundle, {@link trustedCertificates}).
 *
 * Lifecycle: `await CertificateStore.open(options)`; with `watch` (default) the directory is re-read
 * {@link CERTIFICATE_STORE_DEBOUNCE_MS} after the last change and {@link onChange} listeners run; a bad file is
 * reported (`log.warn('certificate file skipped')`, {@link problems}) and skipped; a reload never throws. `close()` stops
 * watching.
 */
export class CertificateStore {
  private entries: StoredCertificate[] = [];
  private fileProblems: CertificateFileProblem[] = [];
  private readonly listeners = new Set<() => void>();
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private reloading: Promise<void> = Promise.resolve();
  private system?: string[];
  private closed = false;
  /** Absolute path of the directory. */
  readonly directory: string;

  private constructor(private readonly options: CertificateStoreOptions) {
    this.directory = resolve(options.directory);
  }

  /**
   * Reads the directory and starts watching it.
   * @throws Error when the directory cannot be listed (a bad file inside it is only skipped).
   */
  static async open(options: CertificateStoreOptions): Promise<CertificateStore> {
    const store = new CertificateStore(options);
    await store.load(true);
    if (options.watch !== false) store.startWatching();
    return store;
  }

  /** Every certificate in the directory (CAs and intermediates too), in file-name order. */
  get certificates(): readonly StoredCertificate[] {
    return this.entries;
  }

  /** Files skipped at the last (re)load, and why. */
  get problems(): readonly CertificateFileProblem[] {
    return this.fileProblems;
  }

  /** By SHA-1 (40 hex digits, .NET's `Thumbprint`) or SHA-256 (64) thumbprint; case, colons and spaces are ignored. */
  findByThumbprint(thumbprint: string): StoredCertificate | undefined {
    const hex = thumbprint.replace(/[\s:]/g, '').toUpperCase();
    return this.entries.find((e) => e.thumbprint === hex || e.thumbprint256 === hex);
  }

  /** Certificates whose subject contains `text` (case-insensitive), like .NET's `X509FindType.FindBySubjectName`. */
  findBySubjectName(text: string): StoredCertificate[] {
    const needle = text.toLowerCase();
    return this.entries.filter((e) => e.certificate.subject.toLowerCase().includes(needle));
  }

  /**
   * Certificates valid for `name` by their subject alternative names: a DNS name (wildcards as RFC 6125 §6.4.3
   * allows), an IP address or an e-mail address; the subject CN counts only when there are no DNS names.
   */
  findBySan(name: string): StoredCertificate[] {
    return this.entries.filter((e) => matchesName(e.certificate, name));
  }

  /**
   * The certificate to serve for an SNI name: one with its private key, valid now, allowed for server authentication
   * (EKU serverAuth or none), matching `serverName`; an exact name wins over a wildcard, then the latest expiry.
   * Undefined when none fits (the server then uses its default certificate).
   */
  serverCertificateFor(serverName: string): StoredCertificate | undefined {
    const name = serverName.toLowerCase();
    const fits = this.entries.filter((e) => e.hasPrivateKey && isCurrent(e.certificate) && allows(e.certificate, SERVER_AUTH) && matchesName(e.certificate, name));
    const rank = (e: StoredCertificate): number => (e.certificate.checkHost(name, { wildcards: false }) !== undefined ? 1 : 0);
    return fits.sort((a, b) => rank(b) - rank(a) || Date.parse(b.certificate.validTo) - Date.parse(a.certificate.validTo))[0];
  }

  /** Certificates with private keys that are valid now and allowed for client authentication (EKU clientAuth or none), as node:tls takes them. */
  clientCertificates(): LocalCertificate[] {
    return this.entries.filter((e) => e.localCertificate && isCurrent(e.certificate) && allows(e.certificate, CLIENT_AUTH)).map((e) => e.localCertificate!);
  }

  /**
   * Trust anchors as PEM: the CA certificates in the directory, plus the system CA bundle unless `system` is false.
   * For `trustedCertificates` of a `ServerSecurity` (client certificates) or a `ClientSecurity` (servers).
   */
  trustedCertificates(options: { system?: boolean } = {}): string[] {
    const own = this.entries.filter((e) => e.certificate.ca).map((e) => e.certificate.toString());
    if (options.system === false) return own;
    this.system ??= systemCertificates(this.options.systemCaFile);
    return [...own, ...this.system];
  }

  /** Calls `listener` after every reload that changed the store; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the directory now (also what the watcher does). Never throws: problems are logged and kept. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.load(false));
    return this.reloading;
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
  }

  private async load(first: boolean): Promise<void> {
    let scan;
    try {
      scan = await scanDirectory(this.directory, (file) => this.passphraseFor(file));
    } catch (err) {
      if (first) throw new Error(`cannot read the certificate directory ${this.directory}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      this.options.log?.warn('certificate directory unreadable, keeping the certificates loaded before', { directory: this.directory, error: (err as Error).message });
      return;
    }
    for (const p of scan.problems) this.options.log?.warn('certificate file skipped', { file: p.file, error: p.error.message });
    const before = this.entries.map((e) => `${e.file}|${e.thumbprint256}|${e.hasPrivateKey}`).join('\n');
    this.entries = scan.certificates;
    this.fileProblems = scan.problems;
    const after = this.entries.map((e) => `${e.file}|${e.thumbprint256}|${e.hasPrivateKey}`).join('\n');
    if (first) return;
    this.options.log?.info('certificate store reloaded', { directory: this.directory, certificates: this.entries.length, skipped: scan.problems.length });
    if (before === after) return;
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.options.log?.warn('certificate store listener failed', { error: (err as Error).message });
      }
    }
  }

  private passphraseFor(file: string): string | undefined {
    const p = this.options.passphrase;
    return typeof p === 'function' ? p(file) : p;
  }

  private startWatching(): void {
    const w = watch(this.directory, () => {
      if (this.closed) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), this.options.debounceMs ?? CERTIFICATE_STORE_DEBOUNCE_MS);
      this.timer.unref();
    });
    w.on('error', (err) => this.options.log?.warn('certificate directory watch failed', { directory: this.directory, error: err.message }));
    w.unref();
    this.watcher = w;
  }
}

function isCurrent(c: X509Certificate): boolean {
  const now = Date.now();
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

/** True when the EKU extension is absent or lists `oid` (RFC 5280 §4.2.1.12). */
function allows(c: X509Certificate, oid: string): boolean {
  const eku = c.keyUsage;
  return eku === undefined || eku.includes(oid);
}

function matchesName(c: X509Certificate, name: string): boolean {
  // Stryker disable next-line ObjectLiteral: `subject: 'default'` is node:crypto's default for checkEmail, so `{}` checks the same
  if (name.includes('@')) return c.checkEmail(name, { subject: 'default' }) !== undefined;
  if (net.isIP(name) !== 0) return c.checkIP(name) !== undefined;
  // Stryker disable next-line ObjectLiteral: `subject: 'default'` is node:crypto's default for checkHost, so `{}` checks the same
  return c.checkHost(name, { subject: 'default' }) !== undefined;
}
