import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { buildOcspRequest, fetchOcspResponse, ocspResponderUrl, parseOcspResponse, type OcspStatus } from './ocsp.js';

/** Refresh bounds: at least a minute apart (a responder that answers with no window), at most a day. */
const MIN_REFRESH_MS = 60_000;
const MAX_REFRESH_MS = 86_400_000;
/** After a failed fetch, try again after this long, doubling up to an hour. */
const RETRY_MS = 60_000;
const MAX_RETRY_MS = 3_600_000;

/** Where stapling reports what it does (a {@link Logger} fits). */
export interface OcspStaplerEvents {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

interface Tracked {
  readonly leaf: X509Certificate;
  readonly issuer: X509Certificate;
  readonly url: string;
  response?: OcspStatus;
  timer?: NodeJS.Timeout;
  failures: number;
}

/**
 * OCSP stapling (RFC 6066 §8, RFC 6961's single-response form) for the certificates of a {@link ServerSecurity}:
 * fetches a response from each certificate's OCSP responder, checks it (successful, signed by the issuer, about this
 * certificate, status `good`) and refreshes it half-way to its `nextUpdate`. Handshakes that ask for a status get
 * the current response; a certificate without a responder, or whose response is missing, stale or not `good`, gets
 * none (a client then asks the responder itself, as without stapling).
 *
 * Node calls stapling through a `tls.Server`'s `OCSPRequest` event even for sockets wrapped by hand, so the stapler
 * owns a never-listening {@link carrier} server that the socket options name.
 */
export class OcspStapler {
  /** Passed as the `server` of hand-wrapped TLS sockets; it never listens. */
  readonly carrier: tls.Server;
  private readonly tracked = new Map<string, Tracked>();
  private defaultFingerprint?: string;
  private closed = false;

  constructor(private readonly events?: OcspStaplerEvents) {
    this.carrier = tls.createServer();
    // `certificate` is the DER of the context in use: an SNI context's certificate, or null for the default one
    // (the carrier itself holds none).
    this.carrier.on('OCSPRequest', (certificate: Buffer | null, _issuer: Buffer | null, done: (err: Error | null, response?: Buffer) => void) => {
      done(null, this.responseFor(certificate) ?? undefined);
    });
  }

  /** True when some certificate has a responder, so handshakes should offer stapling. */
  get isActive(): boolean {
    return this.tracked.size > 0;
  }

  /**
   * Replaces the set of certificates to staple for. `certs[0]` is the default certificate. Each entry needs its
   * issuer (from the configured chain); entries without an issuer or an OCSP responder URL are skipped. Resolves once
   * every first fetch has settled (failures are reported and retried, not thrown).
   */
  async track(certs: ReadonlyArray<{ leaf: X509Certificate; issuer?: X509Certificate }>): Promise<void> {
    const next = new Map<string, Tracked>();
    for (const { leaf, issuer } of certs) {
      const url = ocspResponderUrl(leaf);
      if (!issuer || !url) continue;
      next.set(leaf.fingerprint256, this.tracked.get(leaf.fingerprint256) ?? { leaf, issuer, url, failures: 0 });
    }
    for (const [key, old] of this.tracked) if (!next.has(key) && old.timer) clearTimeout(old.timer);
    this.tracked.clear();
    for (const [key, entry] of next) this.tracked.set(key, entry);
    this.defaultFingerprint = certs[0]?.leaf.fingerprint256;
    await Promise.all([...next.values()].filter((entry) => entry.response === undefined).map((entry) => this.refresh(entry)));
  }

  /** The response to staple for a certificate (DER), or undefined. */
  responseFor(certificateDer: Buffer | null): Buffer | undefined {
    let entry: Tracked | undefined;
    if (certificateDer === null) entry = this.defaultFingerprint ? this.tracked.get(this.defaultFingerprint) : undefined;
    else for (const candidate of this.tracked.values()) if (candidate.leaf.raw.equals(certificateDer)) entry = candidate;
    const response = entry?.response;
    if (!response || response.status !== 'good') return undefined;
    if (response.nextUpdate && response.nextUpdate.getTime() < Date.now()) return undefined; // stale: better none
    return response.der;
  }

  /** Stops refreshing. Idempotent. */
  close(): void {
    this.closed = true;
    for (const entry of this.tracked.values()) if (entry.timer) clearTimeout(entry.timer);
    this.tracked.clear();
  }

  private async refresh(entry: Tracked): Promise<void> {
    if (this.closed) return;
    try {
      const der = await fetchOcspResponse(entry.url, buildOcspRequest(entry.leaf, entry.issuer));
      const status = parseOcspResponse(der, entry.leaf, entry.issuer);
      entry.response = status;
      entry.failures = 0;
      if (status.status === 'good') this.events?.info('ocsp response stapled', { subject: entry.leaf.subject, nextUpdate: status.nextUpdate?.toISOString() });
      else this.events?.warn('ocsp status not good, not stapling', { subject: entry.leaf.subject, status: status.status });
      const window = status.nextUpdate ? status.nextUpdate.getTime() - Date.now() : MAX_REFRESH_MS * 2;
      this.schedule(entry, Math.min(Math.max(window / 2, MIN_REFRESH_MS), MAX_REFRESH_MS));
    } catch (err) {
      entry.failures++;
      const delay = Math.min(RETRY_MS * 2 ** (entry.failures - 1), MAX_RETRY_MS);
      this.events?.warn('ocsp fetch failed', { subject: entry.leaf.subject, responder: entry.url, error: (err as Error).message, retryInMs: delay });
      this.schedule(entry, delay);
    }
  }

  private schedule(entry: Tracked, delayMs: number): void {
    if (this.closed || this.tracked.get(entry.leaf.fingerprint256) !== entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.refresh(entry), delayMs);
    entry.timer.unref();
  }
}
