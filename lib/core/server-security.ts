import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import tls from 'node:tls';
import type { ServiceIdentifier } from 'inversify';
import { toVersionRange, DEFAULT_PROTOCOLS } from './ssl-protocols.js';
import { TlsAlpnChallenges } from './tls-alpn-challenges.js';
import { AcmeHttpChallenges } from './acme-http-challenges.js';
import type { OcspStaplerEvents } from './ocsp-stapler.js';
import { assertTicketKeys, derivedTicketKeys, TICKET_KEY_ROTATION_MS, TicketKeyRotation } from './ticket-keys.js';
import type { CertificateStore } from './certificate-store.js';
import type { ClientHelloSummary } from './client-hello.js';
import { filesOf, loadMaterial, splitPemList, type Material } from './certificate-material.js';
import { assertAlpnProtocols, assertGroups, HANDSHAKE_TIMEOUT_MS, type CertificateSource, type ServerSecurityOptions } from './server-security-options.js';
import { createServerContext } from './server-contexts.js';
import { ServedCertificates } from './served-certificates.js';

export { CertificateError, fingerprintOf, splitPemList } from './certificate-material.js';
export { DEFAULT_TLS12_CIPHERS, DEFAULT_TLS_GROUPS, HANDSHAKE_TIMEOUT_MS, type CertificateSource, type ServerSecurityOptions } from './server-security-options.js';

/**
 * DI token of the container's shared {@link ServerSecurity} (one per container, so contexts are built once).
 * It lives here, beside the class, so protocol layers can inject it without importing the assembly layer.
 */
export const ServerSecurityToken = Symbol.for('postern.ServerSecurity') as ServiceIdentifier<ServerSecurity>;

/**
 * A prepared TLS server configuration. `SecureContext`s are built once per configuration (and per SNI name),
 * never per connection, since building one costs about as much CPU as a handshake.
 *
 * Lifecycle: construct, `await prepare()` (done by `TcpServer.start()`), share among listeners; `reload()`
 * swaps in renewed certificates for new connections only; `close()` stops file watching.
 */
export class ServerSecurity {
  /** The configuration; `certificate` changes only through {@link useCertificate}. */
  options: Readonly<ServerSecurityOptions>;
  /** ACME TLS-ALPN-01 validations answered by this configuration's handshakes (RFC 8737); shared with derived ones. */
  readonly acmeChallenges: TlsAlpnChallenges;
  /** ACME HTTP-01 validations, answered by an HTTP listener that serves this configuration's names; shared with derived ones. */
  readonly acmeHttpChallenges: AcmeHttpChallenges;
  /** Where OCSP stapling reports fetches and failures (set by the assembly to the logger). */
  ocspEvents?: OcspStaplerEvents;
  /** Where a store opened from `certificateStore` options reports reloads and skipped files (set by the assembly). */
  certificateStoreEvents?: OcspStaplerEvents;
  /** The contexts, store and staples handshakes are served from, rebuilt by every prepare and reload. */
  private readonly served = new ServedCertificates(this, (m) => this.createContext(m));
  private preparing?: Promise<void>;
  private watchers: FSWatcher[] = [];
  private reloadTimer?: NodeJS.Timeout;
  private readonly rotation?: TicketKeyRotation;
  /** The configuration this one was made from by {@link derive}. */
  private readonly parent?: ServerSecurity;
  /** True when made by {@link derive} without a certificate of its own: it serves the parent's. */
  private inheritsCertificate = false;
  private readonly derived = new Set<ServerSecurity>();
  /** Called after every successful reload (for logging); errors of a watched reload go to `onReloadError`. */
  onReload?: () => void;
  /** Called once when a self-signed certificate was generated because none is configured (log its fingerprint). */
  onSelfSigned?: (fingerprint256: string) => void;
  onReloadError?: (err: unknown) => void;

  /**
   * @param options the configuration.
   * @param parent internal to {@link derive}: the configuration whose ACME challenges (and, unless overridden, certificate)
   *   this one follows.
   */
  constructor(options: ServerSecurityOptions = {}, parent?: ServerSecurity) {
    this.options = { ...options };
    toVersionRange(options.protocols ?? DEFAULT_PROTOCOLS); // fail fast on an impossible range
    if (options.groups !== undefined) assertGroups(options.groups);
    if (options.alpnProtocols) assertAlpnProtocols(options.alpnProtocols);
    this.acmeChallenges = parent?.acmeChallenges ?? new TlsAlpnChallenges();
    this.acmeHttpChallenges = parent?.acmeHttpChallenges ?? new AcmeHttpChallenges();
    this.parent = parent;
    if (options.sessionTickets !== false) {
      this.rotation = new TicketKeyRotation(options.ticketKeyRotationMs ?? TICKET_KEY_ROTATION_MS, (keys) => this.applyTicketKeys(keys), options.ticketKeys);
    }
  }

  /**
   * Replaces the session-ticket keys of every context now (and of contexts built later by {@link reload}). New
   * tickets are sealed with them; tickets sealed with the previous keys no longer resume (Node's contexts hold one
   * key set), so those clients make one full handshake. Called by a cluster worker when its primary rotates.
   * @throws RangeError unless 48 bytes; Error when session tickets are off.
   */
  setTicketKeys(keys: Buffer): void {
    if (!this.rotation) throw new Error('session tickets are off (sessionTickets: false)');
    assertTicketKeys(keys);
    this.applyTicketKeys(keys);
  }

  /** Replaces the ticket keys with fresh random ones now (as the schedule does); a no-op when tickets are off. */
  rotateTicketKeys(): void {
    this.rotation?.rotate();
  }

  /**
   * A configuration for one listener: `overrides` on top of this one's options (a field given replaces this one's,
   * an absent field is inherited). When `overrides` has no `certificate`, the new configuration serves this one's
   * certificate and follows it (a generated one, {@link useCertificate} by ACME, a watched file's {@link reload});
   * it also answers this one's ACME challenges. Its session-ticket keys are derived from this one's and `label` (HKDF),
   * so a ticket issued under one configuration never resumes under another (whose client-certificate policy may
   * differ), while processes sharing this one's keys (cluster workers) still share the derived ones; they follow
   * {@link setTicketKeys} and rotation. Close it with {@link close}.
   * @param label distinguishes configurations derived from one parent (ListenerSecurities passes the listener name).
   * @throws SslProtocolsError for an impossible `protocols` range.
   */
  derive(overrides: ServerSecurityOptions, label = `derived-${this.derived.size}`): ServerSecurity {
    const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as ServerSecurityOptions;
    const inherits = given.certificate === undefined;
    const options: ServerSecurityOptions = { ...this.options, ...given };
    if (this.rotation && options.sessionTickets !== false) {
      Object.assign(options, { ticketKeyRotationMs: 0, ticketKeys: derivedTicketKeys(this.ticketKeys ?? this.rotation.current, label) });
    }
    const child = new ServerSecurity(options, this);
    child.inheritsCertificate = inherits;
    child.ticketLabel = label;
    child.onReloadError = this.onReloadError;
    child.ocspEvents = this.ocspEvents;
    child.certificateStoreEvents = this.certificateStoreEvents;
    this.derived.add(child);
    return child;
  }

  private ticketKeys?: Buffer;
  private ticketLabel = '';
  private applyTicketKeys(keys: Buffer): void {
    this.ticketKeys = Buffer.from(keys);
    for (const child of this.derived) if (child.rotation) child.applyTicketKeys(derivedTicketKeys(keys, child.ticketLabel));
    this.served.setTicketKeys(this.ticketKeys);
  }

  /** True when the client must present a certificate. */
  get requiresClientCertificate(): boolean {
    return this.options.requireClientCertificate === true;
  }

  /** True when the client is asked for a certificate. */
  get requestsClientCertificate(): boolean {
    return this.options.requestClientCertificate === true || this.requiresClientCertificate;
  }

  /** Handshake timeout in milliseconds. */
  get handshakeTimeoutMs(): number {
    return this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  }

  /** The default certificate (after prepare). */
  get certificate(): X509Certificate | undefined {
    return this.served.leaf;
  }

  /** SHA-256 fingerprint of the default certificate, `AB:CD:…` (after prepare). */
  get fingerprint256(): string | undefined {
    return this.served.leaf?.fingerprint256;
  }

  /** The PEM of the self-signed certificate generated because none was configured (clients may trust it). */
  get generatedCertificatePem(): string | undefined {
    return this.served.generated?.cert ?? (this.inheritsCertificate ? this.parent?.generatedCertificatePem : undefined);
  }

  /** True while the certificate served is the one generated in memory (here, or by the configuration it inherits it from). */
  get isSelfSigned(): boolean {
    if (this.inheritsCertificate && this.parent) return this.parent.isSelfSigned;
    return this.served.generated !== undefined && this.options.certificate === undefined;
  }

  /** The trusted client CAs as X509Certificate objects (for chain checks). */
  trustedCertificates(): X509Certificate[] {
    return splitPemList(this.options.trustedCertificates).map((pem) => new X509Certificate(pem));
  }

  /**
   * Loads the material and builds the contexts. Idempotent; concurrent callers share one preparation.
   * @throws CertificateError when files are unreadable, the key does not match, or a PFX passphrase is wrong.
   */
  prepare(): Promise<void> {
    this.preparing ??= this.build().then(() => {
      if (this.served.generated && this.served.leaf) this.onSelfSigned?.(this.served.leaf.fingerprint256);
      this.startWatching();
      this.rotation?.start();
    });
    return this.preparing;
  }

  /**
   * Resolves once the OCSP responses of the last prepare/reload were fetched (or failed and were scheduled for a
   * retry). Handshakes do not wait for it: until then they go without a staple.
   */
  whenStapled(): Promise<void> {
    return this.served.whenStapled();
  }

  /** The OCSP response currently stapled for the default certificate (DER), if any. */
  get stapledResponse(): Buffer | undefined {
    return this.served.stapledResponse;
  }

  /** True once {@link prepare} has finished: {@link contextFor} can then be called synchronously. */
  get isPrepared(): boolean {
    return this.served.isBuilt;
  }

  /**
   * Re-reads every certificate source and swaps the contexts atomically. Live connections keep their TLS
   * session; new handshakes use the renewed certificate. On failure the old contexts stay in use.
   */
  async reload(): Promise<void> {
    await this.build();
    this.onReload?.();
  }

  /**
   * Switches the default certificate to `source` (e.g. one an ACME CA just issued) and rebuilds the contexts: new
   * handshakes use it, live sessions keep theirs. A file source is then also what {@link reload} re-reads.
   * @throws CertificateError when the material is unusable; the previous certificate then stays in use.
   */
  async useCertificate(source: CertificateSource): Promise<void> {
    const previous = this.options;
    this.options = { ...previous, certificate: source };
    try {
      await this.reload();
    } catch (err) {
      this.options = previous;
      throw err;
    }
  }

  /** The context for an SNI name (exact match, then `*.parent` wildcard), else the default. */
  contextFor(servername?: string): tls.SecureContext {
    return this.served.contextFor(servername);
  }

  /** The certificate store serving SNI names (after prepare), if one is configured. */
  get certificateStore(): CertificateStore | undefined {
    return this.served.certificateStore;
  }

  /**
   * Options for `new tls.TLSSocket(socket, …)` on the server side. `hello`, the connection's ClientHello read ahead
   * (see `peekClientHello`), lets a pending ACME validation be answered under TLS 1.2 too.
   */
  socketOptions(hello?: ClientHelloSummary, alpnProtocols?: readonly string[]): tls.TLSSocketOptions {
    return this.served.socketOptions(hello, alpnProtocols);
  }

  /** Stops watching files and the ticket-key schedule. Idempotent. */
  close(): void {
    this.parent?.derived.delete(this);
    this.served.close();
    this.rotation?.stop();
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
  }

  private async build(): Promise<void> {
    await this.served.openStore(this.parent);
    const main = await this.loadMain();
    const sniMaterials = await this.served.build(main, this.options.sni ?? {});
    for (const child of this.derived) {
      // A derived configuration that serves this certificate follows it; its own failure is its own to report.
      if (child.inheritsCertificate && child.isPrepared) child.reload().catch((err: unknown) => child.onReloadError?.(err));
    }
    if (this.options.ocspStapling !== false) this.served.staple(sniMaterials);
  }

  private async loadMain(): Promise<Material> {
    const parent = this.parent;
    if (parent && this.inheritsCertificate) {
      await parent.prepare();
      return parent.served.main!;
    }
    return this.options.certificate ? await loadMaterial(this.options.certificate) : await this.served.selfSigned();
  }

  private createContext(m: Material): tls.SecureContext {
    return createServerContext(this.options, m, this.rotation ? (this.ticketKeys ?? this.rotation.current) : undefined);
  }

  private startWatching(): void {
    if (!this.options.watchFiles) return;
    // An inherited certificate is watched (and reloaded) by the configuration it comes from.
    const main = this.inheritsCertificate ? undefined : this.options.certificate;
    const files = [main, ...Object.values(this.options.sni ?? {})].flatMap((s) => (s ? filesOf(s) : []));
    for (const file of files) {
      const w = watch(file, () => {
        // Editors and ACME clients write several files in a row: settle for 200 ms before reloading.
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => {
          this.reload().catch((err: unknown) => this.onReloadError?.(err));
        }, 200);
        this.reloadTimer.unref();
      });
      w.on('error', (err) => this.onReloadError?.(err));
      w.unref();
      this.watchers.push(w);
    }
  }
}
