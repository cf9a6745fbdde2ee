/**
 * The `SecureContext`s of a {@link ServerSecurity}: how one is built from certificate material with the
 * configuration's TLS settings ({@link createServerContext}), and the ones for the certificates of a certificate store,
 * built when an SNI name first picks them ({@link StoreContexts}).
 */
import { constants as cryptoConstants } from 'node:crypto';
import tls from 'node:tls';
import { CertificateError, splitPemList, type Material } from './certificate-material.js';
import { CertificateStore, type CertificateStoreOptions } from './certificate-store.js';
import type { OcspStaplerEvents } from './ocsp-stapler.js';
import { DEFAULT_TLS12_CIPHERS, DEFAULT_TLS_GROUPS, type ServerSecurityOptions } from './server-security-options.js';
import type { ServerSecurity } from './server-security.js';
import { toVersionRange, DEFAULT_PROTOCOLS } from './ssl-protocols.js';

/**
 * OpenSSL options of every server context. `SSL_OP_NO_RENEGOTIATION`: a TLS 1.2 client may not renegotiate (each
 * renegotiation costs the server a full handshake, a cheap DoS; RFC 5746 secure renegotiation stays signalled and
 * TLS 1.3 has none). `SSL_OP_NO_COMPRESSION`: CRIME (RFC 7457 §2.6); OpenSSL 3 already defaults to it.
 */
const SERVER_SECURE_OPTIONS = cryptoConstants.SSL_OP_NO_RENEGOTIATION | cryptoConstants.SSL_OP_NO_COMPRESSION;

/**
 * A server context for the material `m` with the TLS settings of `options` (versions, ciphers, groups, trusted
 * client CAs). `ticketKeys` seal the session tickets it issues; without them it issues none. Called by
 * {@link ServerSecurity} for its default, SNI and store certificates.
 * @throws CertificateError when OpenSSL refuses the material (a key that does not match, a wrong passphrase).
 */
export function createServerContext(options: Readonly<ServerSecurityOptions>, m: Material, ticketKeys: Buffer | undefined): tls.SecureContext {
  const { minVersion, maxVersion, legacy } = toVersionRange(options.protocols ?? DEFAULT_PROTOCOLS);
  const ciphers = legacy ? `${options.ciphers ?? tls.DEFAULT_CIPHERS}:@SECLEVEL=0` : (options.ciphers ?? DEFAULT_TLS12_CIPHERS);
  const ca = splitPemList(options.trustedCertificates);
  try {
    return tls.createSecureContext({
      cert: m.cert,
      key: m.key,
      pfx: m.pfx,
      passphrase: m.passphrase,
      minVersion,
      maxVersion,
      ciphers,
      ecdhCurve: options.groups ?? DEFAULT_TLS_GROUPS,
      ca: ca.length > 0 ? ca : undefined,
      honorCipherOrder: true,
      secureOptions: SERVER_SECURE_OPTIONS | (ticketKeys ? 0 : cryptoConstants.SSL_OP_NO_TICKET),
      ticketKeys,
    });
  } catch (err) {
    // OpenSSL's own wording goes into the message for the operator; we never branch on it.
    const hint = m.pfx !== undefined || m.passphrase !== undefined ? ' (is the passphrase right?)' : '';
    throw new CertificateError(`cannot use the certificate: ${(err as Error).message}${hint}`);
  }
}

/**
 * The store a configuration's `certificateStore` option names: the open store it is, the one of the configuration
 * it was derived from when that has the same option (after its `prepare()`), or a store opened here (`owned`: the
 * configuration closes it). Undefined when the parent has none.
 * @throws CertificateError when the directory cannot be read.
 */
export async function openCertificateStore(
  o: CertificateStore | CertificateStoreOptions,
  parent: ServerSecurity | undefined,
  log: OcspStaplerEvents | undefined,
): Promise<{ store: CertificateStore; owned: boolean } | undefined> {
  if (o instanceof CertificateStore) return { store: o, owned: false };
  if (parent && parent.options.certificateStore === o) {
    await parent.prepare();
    const store = parent.certificateStore;
    return store ? { store, owned: false } : undefined;
  }
  try {
    return { store: await CertificateStore.open({ ...o, log: o.log ?? log }), owned: true };
  } catch (err) {
    throw new CertificateError((err as Error).message);
  }
}

/**
 * Contexts for the server certificates of a {@link CertificateStore}, by SHA-256 thumbprint (bounded by the store's
 * size, not by client-chosen names): built when an SNI name first picks a certificate, dropped when the store
 * changes. Made by {@link ServerSecurity} once its store is open; {@link close} stops following the store.
 */
export class StoreContexts {
  private contexts = new Map<string, tls.SecureContext>();
  private readonly unsubscribe: () => void;

  /**
   * @param create builds a context with the configuration's settings.
   * @param failed hears of a store certificate that cannot be used (the name then gets the default context).
   * @param changed runs after a change of the store dropped the contexts.
   */
  constructor(
    /** The store serving SNI names. */
    readonly store: CertificateStore,
    private readonly owned: boolean,
    private readonly create: (m: Material) => tls.SecureContext,
    private readonly failed: (err: unknown) => void,
    changed: () => void,
  ) {
    this.unsubscribe = store.onChange(() => {
      this.contexts.clear();
      changed();
    });
  }

  /** The context of the store's certificate for `name` (lower case), if the store has a usable one. */
  contextFor(name: string): tls.SecureContext | undefined {
    const entry = this.store.serverCertificateFor(name);
    if (!entry?.localCertificate) return undefined;
    let context = this.contexts.get(entry.thumbprint256);
    if (!context) {
      try {
        context = this.create(entry.localCertificate);
      } catch (err) {
        this.failed(err);
        return undefined;
      }
      this.contexts.set(entry.thumbprint256, context);
    }
    return context;
  }

  /** Drops the contexts built so far (the configuration was rebuilt). */
  reset(): void {
    this.contexts = new Map();
  }

  /** Stops following the store, and closes it when it was opened for this configuration. */
  close(): void {
    this.unsubscribe();
    if (this.owned) this.store.close();
  }
}
