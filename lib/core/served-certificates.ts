import type { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import { withAcmeChallenges } from './tls-alpn-challenges.js';
import { OcspStapler } from './ocsp-stapler.js';
import type { CertificateStore } from './certificate-store.js';
import type { ClientHelloSummary } from './client-hello.js';
import { certificateOfContext } from './certificate-store-loader.js';
import { CertificateError, issuerOf, leafOf, loadMaterial, type Material } from './certificate-material.js';
import type { CertificateSource } from './server-security-options.js';
import { openCertificateStore, StoreContexts } from './server-contexts.js';
import type { ServerSecurity } from './server-security.js';

/**
 * What the handshakes of one {@link ServerSecurity} are served: the contexts of its default certificate (configured,
 * inherited, or the self-signed one generated here) and of its SNI names, swapped whole by each {@link build}; the
 * certificate store's; the OCSP staples for them; and the `TLSSocket` options made from all that. The configuration
 * side (options, derivation, session-ticket keys, file watching, when to build) stays in ServerSecurity, which makes
 * one of these per configuration and closes it with {@link close}.
 */
export class ServedCertificates {
  /** The certificate store serving SNI names and the contexts built for its certificates, once the store is open. */
  private storeContexts?: StoreContexts;
  private readonly stapler = new OcspStapler({
    info: (message, meta) => this.security.ocspEvents?.info(message, meta),
    warn: (message, meta) => this.security.ocspEvents?.warn(message, meta),
  });
  private stapling: Promise<void> = Promise.resolve();
  private defaultContext?: tls.SecureContext;
  private sniContexts = new Map<string, tls.SecureContext>();
  private leafCertificate?: X509Certificate;
  private mainMaterial?: Material;
  private generatedPem?: { cert: string; key: string };

  /**
   * @param security the configuration served: its options, events and client-certificate policy are read when needed.
   * @param create builds a context with the configuration's TLS settings and session-ticket keys.
   */
  constructor(
    private readonly security: ServerSecurity,
    private readonly create: (m: Material) => tls.SecureContext,
  ) {}

  /** The default certificate (after the first build). */
  get leaf(): X509Certificate | undefined {
    return this.leafCertificate;
  }

  /** The default certificate's material (after the first build); derived configurations that inherit it serve it too. */
  get main(): Material | undefined {
    return this.mainMaterial;
  }

  /** True once a build has finished: {@link contextFor} can then be called. */
  get isBuilt(): boolean {
    return this.defaultContext !== undefined;
  }

  /**
   * Seals new session tickets with `keys`. OpenSSL seals and opens tickets with the keys of the context a socket
   * started with (its `session_ctx`, the default context here), also after the SNI callback switched it to a name's
   * context: the default's keys are the ones that count, for SNI and certificate-store names alike (ticket-keys.spec).
   * The SNI names' contexts get them too, so that nothing depends on that detail for them.
   */
  setTicketKeys(keys: Buffer): void {
    for (const context of [this.defaultContext, ...this.sniContexts.values()]) {
      // tls.Server#setTicketKeys does exactly this on its own context; our contexts serve TLSSockets directly.
      (context as unknown as { context?: { setTicketKeys(k: Buffer): void } } | undefined)?.context?.setTicketKeys(keys);
    }
  }

  /** The self-signed certificate and key (PEM) {@link selfSigned} generated, if it was needed. */
  get generated(): { readonly cert: string; readonly key: string } | undefined {
    return this.generatedPem;
  }

  /** The material served when no certificate is configured: a self-signed one, generated once (`selfSignedHosts`). */
  async selfSigned(): Promise<Material> {
    if (!this.generatedPem) {
      const { generateSelfSigned } = await import('./self-signed.js');
      this.generatedPem = await generateSelfSigned(this.security.options.selfSignedHosts ?? ['localhost', '127.0.0.1', '::1']);
    }
    return { cert: this.generatedPem.cert, key: this.generatedPem.key };
  }

  /** See {@link ServerSecurity.whenStapled}. */
  whenStapled(): Promise<void> {
    return this.stapling;
  }

  /** The OCSP response currently stapled for the default certificate (DER), if any. */
  get stapledResponse(): Buffer | undefined {
    return this.stapler.responseFor(null);
  }

  /** The context for an SNI name (exact match, then `*.parent` wildcard, then the store), else the default. */
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

  /** The certificate store serving SNI names (after the first build), if one is configured. */
  get certificateStore(): CertificateStore | undefined {
    return this.storeContexts?.store;
  }

  /**
   * Opens (or adopts) the configured certificate store once; its changes drop the contexts built from it.
   * @param parent the configuration `security` was derived from, whose open store it may share.
   */
  async openStore(parent: ServerSecurity | undefined): Promise<void> {
    const o = this.security.options.certificateStore;
    if (!o || this.storeContexts) return;
    const opened = await openCertificateStore(o, parent, this.security.certificateStoreEvents);
    if (!opened) return;
    this.storeContexts = new StoreContexts(opened.store, opened.owned, (m) => this.create(m), (err) => this.security.onReloadError?.(err), () => {
      if (this.security.options.ocspStapling !== false && this.staplingEntries.length > 0) this.trackStapling();
    });
  }

  /**
   * Builds the contexts of `main` and of the `sni` sources, then swaps them in at once (with the store's contexts
   * dropped): a source that cannot be loaded leaves the previous contexts serving.
   * @returns the SNI names' material, for {@link staple}.
   * @throws CertificateError as `loadMaterial` and `createServerContext`.
   */
  async build(main: Material, sni: Readonly<Record<string, CertificateSource>>): Promise<Material[]> {
    const defaultContext = this.create(main);
    const contexts = new Map<string, tls.SecureContext>();
    const sniMaterials: Material[] = [];
    for (const [name, source] of Object.entries(sni)) {
      const material = await loadMaterial(source);
      sniMaterials.push(material);
      contexts.set(name.toLowerCase(), this.create(material));
    }
    this.leafCertificate = leafOf(main) ?? certificateOfContext(defaultContext);
    this.defaultContext = defaultContext;
    this.sniContexts = contexts;
    this.mainMaterial = main;
    this.storeContexts?.reset();
    return sniMaterials;
  }

  /**
   * Staples from now on for the certificates of the last {@link build} (its `sniMaterials`) and the store's; a no-op
   * when no default certificate was found.
   */
  staple(sniMaterials: readonly Material[]): void {
    const defaultLeaf = this.leafCertificate;
    const main = this.mainMaterial;
    if (!defaultLeaf || !main) return;
    const entries = [{ leaf: defaultLeaf, issuer: issuerOf(main) }];
    for (const material of sniMaterials) {
      const leaf = leafOf(material);
      if (leaf) entries.push({ leaf, issuer: issuerOf(material) });
    }
    this.staplingEntries = entries;
    this.trackStapling();
  }

  /** The configured certificates to staple for (default first), without the store's. */
  private staplingEntries: Array<{ leaf: X509Certificate; issuer?: X509Certificate }> = [];

  /** Staples for the configured certificates and for the store's server certificates (issuer found in the store). */
  private trackStapling(): void {
    const serves = (c: X509Certificate): boolean => c.keyUsage === undefined || c.keyUsage.includes('1.3.6.1.5.5.7.3.1'); // EKU serverAuth
    const fromStore = (this.storeContexts?.store.certificates ?? []).filter((e) => e.hasPrivateKey && e.issuer && serves(e.certificate)).map((e) => ({ leaf: e.certificate, issuer: e.issuer }));
    this.stapling = this.stapler.track([...this.staplingEntries, ...fromStore]);
  }

  /** See {@link ServerSecurity.socketOptions}. */
  socketOptions(hello?: ClientHelloSummary, alpnProtocols?: readonly string[]): tls.TLSSocketOptions {
    const security = this.security;
    const options: tls.TLSSocketOptions = {
      isServer: true,
      secureContext: security.contextFor(),
      requestCert: security.requestsClientCertificate,
      // Chain errors never fail Node's handshake (its verify callback accepts everything): our policy decides on them,
      // with the flags, once the handshake is done. A missing certificate that no callback may accept is refused by
      // OpenSSL inside the handshake instead, so the client gets a TLS alert (certificate_required in TLS 1.3,
      // handshake_failure in TLS 1.2) rather than a connection closed without a word.
      rejectUnauthorized: security.requiresClientCertificate && security.options.validationCallback === undefined,
      SNICallback: this.sniContexts.size > 0 || this.storeContexts ? (name, cb) => cb(null, security.contextFor(name)) : undefined,
    };
    // Node asks for a staple through a tls.Server's OCSPRequest event, also for sockets wrapped by hand. Assigned,
    // not spread into the literal: a spread there goes through V8's runtime on every handshake (issue 15).
    if (this.stapler.isActive) options.server = this.stapler.carrier;
    const alpn = this.alpnIds(alpnProtocols);
    // Node selects in C++ from this list and answers a client that offers none of it with no_application_protocol.
    if (alpn !== undefined) options.ALPNProtocols = this.alpnWire(alpn);
    return security.acmeChallenges.isActive ? withAcmeChallenges(security, options, hello, alpn) : options;
  }

  /**
   * The ALPN ids a handshake negotiates: the configuration's `alpnProtocols`, else the protocol's (`fromProtocol`);
   * undefined when ALPN is off (`false`, an empty list, or neither).
   */
  private alpnIds(fromProtocol: readonly string[] | undefined): readonly string[] | undefined {
    const ids = this.security.options.alpnProtocols ?? fromProtocol;
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

  /** Stops following the store (closing it when opened here) and stops stapling. */
  close(): void {
    this.storeContexts?.close();
    this.stapler.close();
  }
}
