import type { ServiceIdentifier } from 'inversify';
import { ServerSecurity, type ServerSecurityOptions } from './server-security.js';

/**
 * A listener's own TLS settings: options laid over the shared configuration (a field given replaces the shared
 * one, an absent field is inherited), or a ready {@link ServerSecurity} used as it is.
 */
export type ListenerSecurityOverride = ServerSecurityOptions | ServerSecurity;

/**
 * Which {@link ServerSecurity} each listener uses: its own when one was configured, otherwise the shared one. The
 * implicit-TLS handshake of a listener and the STARTTLS/STLS upgrade on it both ask {@link securityFor} with the
 * listener's name, so asking for client certificates on `imaps` does not ask on `smtp`.
 *
 * Options given per listener become configurations {@link ServerSecurity.derive | derived} from the shared one (they
 * serve its certificate unless they name their own); those are closed by {@link close}. Instances given as they are
 * belong to the caller.
 */
export class ListenerSecurities {
  private readonly own = new Map<string, ServerSecurity>();
  private readonly made: ServerSecurity[] = [];

  /**
   * @param shared the configuration of every listener without its own.
   * @param overrides per listener name; undefined entries are ignored.
   * @throws SslProtocolsError when an override's `protocols` is an impossible range.
   */
  constructor(
    readonly shared: ServerSecurity,
    overrides: Readonly<Record<string, ListenerSecurityOverride | undefined>> = {},
  ) {
    for (const [name, override] of Object.entries(overrides)) {
      if (override === undefined) continue;
      if (override instanceof ServerSecurity) {
        this.own.set(name, override);
      } else {
        const derived = shared.derive(override, name);
        this.made.push(derived);
        this.own.set(name, derived);
      }
    }
  }

  /** The configuration the listener called `listenerName` uses (its own, else the shared one). */
  securityFor(listenerName: string): ServerSecurity {
    return this.own.get(listenerName) ?? this.shared;
  }

  /** True when `listenerName` has a configuration of its own. */
  hasOwnSecurity(listenerName: string): boolean {
    return this.own.has(listenerName);
  }

  /** Names of the listeners with a configuration of their own. */
  get listenerNames(): string[] {
    return [...this.own.keys()];
  }

  /** Every distinct configuration in use, the shared one first. */
  all(): ServerSecurity[] {
    return [...new Set([this.shared, ...this.own.values()])];
  }

  /** Loads and checks every configuration's material. @throws CertificateError as {@link ServerSecurity.prepare}. */
  async prepare(): Promise<void> {
    for (const security of this.all()) await security.prepare();
  }

  /** Closes the configurations made from options (not the shared one, not instances given). Idempotent. */
  close(): void {
    for (const security of this.made) security.close();
  }
}

/** DI token of the container's {@link ListenerSecurities} (built from the shared security and each listener's `security`). */
export const ListenerSecuritiesToken = Symbol.for('postern.ListenerSecurities') as ServiceIdentifier<ListenerSecurities>;
