import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import tls from 'node:tls';
import type { ServiceIdentifier } from 'inversify';
import { toVersionRange, DEFAULT_PROTOCOLS } from './ssl-protocols.js';
import { TlsAlpnChallenges, withAcmeChallenges } from './tls-alpn-challenges.js';
import { AcmeHttpChallenges } from './acme-http-challenges.js';
import { OcspStapler, type OcspStaplerEvents } from './ocsp-stapler.js';
import { assertTicketKeys, derivedTicketKeys, TICKET_KEY_ROTATION_MS, TicketKeyRotation } from './ticket-keys.js';
import type { CertificateStore } from './certificate-store.js';
import type { ClientHelloSummary } from './client-hello.js';
import { certificateOfContext } from './certificate-store-loader.js';
import { CertificateError, filesOf, issuerOf, leafOf, loadMaterial, splitPemList, type Material } from './certificate-material.js';
import { assertAlpnProtocols, assertGroups, HANDSHAKE_TIMEOUT_MS, type CertificateSource, type ServerSecurityOptions } from './server-security-options.js';
import { createServerContext, openCertificateStore, StoreContexts } from './server-contexts.js';

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
  /** The certificate store serving SNI names and the contexts built for its certificates, once the store is open. */
  private storeContexts?: StoreContexts;
  private readonly stapler = new OcspStapler({
    info: (message, meta) => this.ocspEvents?.info(message, meta),
    warn: (message, meta) => this.ocspEvents?.warn(message, meta),
  });
  private stapling: Promise<void> = Promise.resolve();
  private defaultContext?: tls.SecureContext;
  private sniContexts = new Map<string, tls.SecureContext>();
  private preparing?: Promise<void>;
  private watchers: FSWatcher[] = [];
  private reloadTimer?: NodeJS.Timeout;
  private leaf?: X509Certificate;
  private generatedPem?: { cert: string; key: string };
  private readonly rotation?: TicketKeyRotation;
  /** The configuration this one was made from by {@link derive}. */
  private readonly parent?: ServerSecurity;
  /** True when made by {@link derive} without a certificate of its own: it serves the parent's. */
  private inheritsCertificate = false;
  private readonly derived = new Set<ServerSecurity>();
  private mainMaterial?: Material;
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
    for (const context of [this.defaultContext, ...this.sniContexts.values()]) {
      // tls.Server#setTicketKeys does exactly this on its own context; our contexts serve TLSSockets directly.
      (context as unknown as { context?: { setTicketKeys(k: Buffer): void } } | undefined)?.context?.setTicketKeys(this.ticketKeys);
    }
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
    return this.leaf;
  }

  /** SHA-256 fingerprint of the default certificate, `AB:CD:…` (after prepare). */
  get fingerprint256(): string | undefined {
    return this.leaf?.fingerprint256;
  }

  /** The PEM of the self-signed certificate generated because none was configured (clients may trust it). */
  get generatedCertificatePem(): string | undefined {
    return this.generatedPem?.cert ?? (this.inheritsCertificate ? this.parent?.generatedCertificatePem : undefined);
  }

  /** True while the certificate served is the one generated in memory (here, or by the configuration it inherits it from). */
  get isSelfSigned(): boolean {
    if (this.inheritsCertificate && this.parent) return this.parent.isSelfSigned;
    return this.generatedPem !== undefined && this.options.certificate === undefined;
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
      if (this.generatedPem && this.leaf) this.onSelfSigned?.(this.leaf.fingerprint256);
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
    return this.stapling;
  }

  /** The OCSP response currently stapled for the default certificate (DER), if any. */
  get stapledResponse(): Buffer | undefined {
    return this.stapler.responseFor(null);
  }

  /** True once {@link prepare} has finished: {@link contextFor} can then be called synchronously. */
  get isPrepared(): boolean {
    return this.defaultContext !== undefined;
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
    if (!this.defaultContext) throw new CertificateError('ServerSecurity.prepare() has not completed');
    if (servername) {
      const name = servername.toLowerCase();
      const exact = this.sniContexts.get(name);
      if (exact) return exact;
      const dot = name.indexOf('.');
      if (dot > 0) {
        const wild = this.sniContexts.get('*' + name.slice(dot));
        if (wild) return wild;
      }
      const stored = this.storeContexts?.contextFor(name);
      if (stored) return stored;
    }
    return this.defaultContext;
  }

  /** The certificate store serving SNI names (after prepare), if one is configured. */
  get certificateStore(): CertificateStore | undefined {
    return this.storeContexts?.store;
  }

  /** Opens (or adopts) the configured certificate store once; its changes drop the contexts built from it. */
  private async openStore(): Promise<void> {
    const o = this.options.certificateStore;
    if (!o || this.storeContexts) return;
    const opened = await openCertificateStore(o, this.parent, this.certificateStoreEvents);
    if (!opened) return;
    this.storeContexts = new StoreContexts(opened.store, opened.owned, (m) => this.createContext(m), (err) => this.onReloadError?.(err), () => {
      if (this.options.ocspStapling !== false && this.staplingEntries.length > 0) this.trackStapling();
    });
  }

  /**
   * Options for `new tls.TLSSocket(socket, …)` on the server side. `hello`, the connection's ClientHello read ahead
   * (see `peekClientHello`), lets a pending ACME validation be answered under TLS 1.2 too.
   */
  socketOptions(hello?: ClientHelloSummary, alpnProtocols?: readonly string[]): tls.TLSSocketOptions {
    const options: tls.TLSSocketOptions = {
      isServer: true,
      secureContext: this.contextFor(),
      requestCert: this.requestsClientCertificate,
      // Chain errors never fail Node's handshake (its verify callback accepts everything): our policy decides on them,
      // with the flags, once the handshake is done. A missing certificate that no callback may accept is refused by
      // OpenSSL inside the handshake instead, so the client gets a TLS alert (certificate_required in TLS 1.3,
      // handshake_failure in TLS 1.2) rather than a connection closed without a word.
      rejectUnauthorized: this.requiresClientCertificate && this.options.validationCallback === undefined,
      SNICallback: this.sniContexts.size > 0 || this.storeContexts ? (name, cb) => cb(null, this.contextFor(name)) : undefined,
    };
    // Node asks for a staple through a tls.Server's OCSPRequest event, also for sockets wrapped by hand. Assigned,
    // not spread into the literal: a spread there goes through V8's runtime on every handshake (issue 15).
    if (this.stapler.isActive) options.server = this.stapler.carrier;
    const alpn = this.alpnIds(alpnProtocols);
    // Node selects in C++ from this list and answers a client that offers none of it with no_application_protocol.
    if (alpn !== undefined) options.ALPNProtocols = this.alpnWire(alpn);
    return this.acmeChallenges.isActive ? withAcmeChallenges(this, options, hello, alpn) : options;
  }

  /**
   * The ALPN ids a handshake negotiates: this configuration's `alpnProtocols`, else the protocol's (`fromProtocol`);
   * undefined when ALPN is off (`false`, an empty list, or neither).
   */
  private alpnIds(fromProtocol: readonly string[] | undefined): readonly string[] | undefined {
    const ids = this.options.alpnProtocols ?? fromProtocol;
    return ids && ids.length > 0 ? ids : undefined;
  }

  /** ALPN lists in wire format (RFC 7301 §3.1), made once per list (the protocols' lists are frozen constants). */
  private readonly alpnWires = new Map<readonly string[], Buffer>();
  private alpnWire(ids: readonly string[]): Buffer {
    let wire = this.alpnWires.get(ids);
    if (wire === undefined) {
      wire = Buffer.concat(ids.map((id) => Buffer.concat([Buffer.from([id.length]), Buffer.from(id, 'latin1')])));
      this.alpnWires.set(ids, wire);
    }
    return wire;
  }

  /** Stops watching files and the ticket-key schedule. Idempotent. */
  close(): void {
    this.parent?.derived.delete(this);
    this.storeContexts?.close();
    this.rotation?.stop();
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.stapler.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
  }

  private async build(): Promise<void> {
    await this.openStore();
    const main = await this.loadMain();
    const defaultContext = this.createContext(main);
    const sni = new Map<string, tls.SecureContext>();
    const sniMaterials: Material[] = [];
    for (const [name, source] of Object.entries(this.options.sni ?? {})) {
      const material = await loadMaterial(source);
      sniMaterials.push(material);
      sni.set(name.toLowerCase(), this.createContext(material));
    }
    this.leaf = leafOf(main) ?? certificateOfContext(defaultContext);
    this.defaultContext = defaultContext;
    this.sniContexts = sni;
    this.mainMaterial = main;
    this.storeContexts?.reset();
    for (const child of this.derived) {
      // A derived configuration that serves this certificate follows it; its own failure is its own to report.
      if (child.inheritsCertificate && child.isPrepared) child.reload().catch((err: unknown) => child.onReloadError?.(err));
    }
    if (this.options.ocspStapling !== false && this.leaf) {
      const entries = [{ leaf: this.leaf, issuer: issuerOf(main) }];
      for (const material of sniMaterials) {
        const leaf = leafOf(material);
        if (leaf) entries.push({ leaf, issuer: issuerOf(material) });
      }
      this.staplingEntries = entries;
      this.trackStapling();
    }
  }

  /** The configured certificates to staple for (default first), without the store's. */
  private staplingEntries: Array<{ leaf: X509Certificate; issuer?: X509Certificate }> = [];

  /** Staples for the configured certificates and for the store's server certificates (issuer found in the store). */
  private trackStapling(): void {
    const serves = (c: X509Certificate): boolean => c.keyUsage === undefined || c.keyUsage.includes('1.3.6.1.5.5.7.3.1'); // EKU serverAuth
    const fromStore = (this.storeContexts?.store.certificates ?? []).filter((e) => e.hasPrivateKey && e.issuer && serves(e.certificate)).map((e) => ({ leaf: e.certificate, issuer: e.issuer }));
    this.stapling = this.stapler.track([...this.staplingEntries, ...fromStore]);
  }

  private async loadMain(): Promise<Material> {
    const parent = this.parent;
    if (parent && this.inheritsCertificate) {
      await parent.prepare();
      return parent.mainMaterial!;
    }
    return this.options.certificate ? await loadMaterial(this.options.certificate) : await this.selfSigned();
  }

  private async selfSigned(): Promise<Material> {
    if (!this.generatedPem) {
      const { generateSelfSigned } = await import('./self-signed.js');
      this.generatedPem = await generateSelfSigned(this.options.selfSignedHosts ?? ['localhost', '127.0.0.1', '::1']);
    }
    return { cert: this.generatedPem.cert, key: this.generatedPem.key };
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
