import { ContainerModule, type ContainerModuleLoadOptions, type ServiceIdentifier } from '../vendor/inversify.js';
import type { ServerSecurity } from '../core/server-security.js';
import type { ConnectionHandler, TcpServerOptions } from '../core/tcp-server.js';
import { PosternConfig } from './config.js';
import { ServerSecurityToken, TcpServerFactory } from './core.module.js';
import { Listener } from './listener.js';

/**
 * One listener a protocol declares (GreenMail's `ServerSetup`: protocol, port, TLS mode). The CLI makes
 * `--NAME-port` from it, `--only` accepts its name, the ready line prints its TLS mode.
 */
export interface ListenerDescriptor {
  /** Listener name: the key of its section in the protocol's config (`config.smtp.smtps`), of `ports` and of `--only`. */
  readonly name: string;
  /** Default port (GreenMail's convention: the standard port plus 3000), shifted by `portOffset`. */
  readonly defaultPort: number;
  /** True when TLS starts at connect (RFC 8314); false for a listener that upgrades with {@link startTlsVerb}. */
  readonly implicitTls: boolean;
  /** The verb that upgrades a plaintext session on the wire (`STARTTLS`, `STLS`); shown in the ready line. */
  readonly startTlsVerb?: string;
}

/** The plain per-listener options every protocol section accepts (`config.smtp.smtps = { port, host, enabled }`). */
export interface ListenerSectionOptions {
  /** Port; 0 = any free port (tests). */
  port?: number;
  /** Bind address; defaults to the global `host`. */
  host?: string;
  /** Set false to skip this listener: it is then not bound at all. */
  enabled?: boolean;
}

/**
 * Everything the assembly needs to know about one protocol, in one place: its config section, its listeners and
 * its container module. `createMailServerContainer`, `MailServer`, the CLI (`--only`, `--NAME-port`, ready lines)
 * and `startMailServer` loop over {@link PROTOCOLS}; adding a protocol is its own folder, a descriptor and one line
 * there. go-smtp's `Server.LMTP` flag and GreenMail's `ServerSetup` list are the models.
 */
export interface ProtocolDescriptor {
  /** Key of the protocol's section in {@link PosternConfig} (`smtp`, `lmtp`…); `false` there disables it. */
  readonly section: string;
  /** Its TCP listeners, in start order. */
  readonly listeners: readonly ListenerDescriptor[];
  /**
   * False for a protocol started only when asked for (named in `only`, or given a socket): LMTP. The six classic
   * listeners are on by default.
   */
  readonly onByDefault: boolean;
  /**
   * Name of an extra listener on a Unix domain socket, bound when the section has `socket: PATH` (LMTP: Postfix's
   * `lmtp:unix:PATH`), with the file mode `socketMode` when set. It speaks the protocol's plaintext mode (STARTTLS
   * still offered) and never expects a PROXY protocol header (its peers are local processes).
   */
  readonly unixSocketListener?: string;
  /** The container module (see {@link ProtocolModule}). */
  readonly module: ProtocolModule;
}

/**
 * The section of `config` a descriptor names: undefined when it is `false` or says `enabled: false`, else the
 * section (`{}` when absent).
 */
export function protocolSection(config: PosternConfig, section: string): Record<string, unknown> | undefined {
  const s = (config as Record<string, unknown>)[section];
  if (s === false) return undefined;
  const obj = (s ?? {}) as Record<string, unknown>;
  return obj.enabled === false ? undefined : obj;
}

/** The options of one listener inside a protocol section (`{}` when absent). */
export function listenerSection(section: Record<string, unknown> | undefined, name: string): ListenerSectionOptions {
  return ((section?.[name] as ListenerSectionOptions | undefined) ?? {}) as ListenerSectionOptions;
}

/** The part of a {@link ProtocolDescriptor} its module needs. */
export type ProtocolShape = Pick<ProtocolDescriptor, 'section' | 'listeners' | 'unixSocketListener'>;

/** How a protocol module binds its own server (the `ConnectionHandler` its listeners serve). */
export interface ProtocolBinding<H extends ConnectionHandler> {
  /** Binds the protocol's settings, server and anything else; returns the server's token. */
  bindServer(options: ContainerModuleLoadOptions): ServiceIdentifier<H>;
  /** Options every listener of this server gets (e.g. the idle timeout). */
  listenerOptions?(server: H): Partial<TcpServerOptions>;
}

/**
 * A protocol's `ContainerModule`. Loaded through `createContainer` (which calls {@link forConfig}), it binds the
 * server and one `Listener` per listener the config enables, and nothing for a listener with `enabled: false`. Loaded
 * as it is with `container.load(module)`, it cannot see the config and binds every declared listener (0.1
 * behaviour).
 */
export class ProtocolModule extends ContainerModule {
  /**
   * @param shape the protocol's section name and listeners (the same values its {@link ProtocolDescriptor} carries).
   * @param binding how the server is bound.
   */
  constructor(
    readonly shape: ProtocolShape,
    private readonly binding: ProtocolBinding<ConnectionHandler>,
  ) {
    super((options) => this.bindAll(options, undefined));
  }

  /** The module for one config: only enabled listeners are bound (none when the section is disabled). */
  forConfig(config: PosternConfig): ContainerModule {
    return new ContainerModule((options) => this.bindAll(options, config));
  }

  private bindAll(options: ContainerModuleLoadOptions, config: PosternConfig | undefined): void {
    const d = this.shape;
    const section = config ? protocolSection(config, d.section) : {};
    if (!section) return;
    const server = this.binding.bindServer(options);
    const extra = (h: ConnectionHandler): Partial<TcpServerOptions> => this.binding.listenerOptions?.(h) ?? {};
    for (const l of d.listeners) {
      if (config && listenerSection(section, l.name).enabled === false) continue;
      options
        .bind(Listener)
        .toResolvedValue(
          (factory: TcpServerFactory, handler: ConnectionHandler, cfg: PosternConfig, security: ServerSecurity) => {
            const own = listenerSection(protocolSection(cfg, d.section), l.name);
            return factory(handler, { ...extra(handler), name: l.name, host: own.host ?? cfg.host, port: own.port ?? l.defaultPort, security: l.implicitTls ? security : undefined });
          },
          [TcpServerFactory, server, PosternConfig, ServerSecurityToken],
        )
        .inSingletonScope()
        .onDeactivation((listener) => listener.close());
    }
    const socketName = d.unixSocketListener;
    const path = typeof section.socket === 'string' ? section.socket : undefined;
    const pathMode = typeof section.socketMode === 'number' ? section.socketMode : undefined;
    if (socketName !== undefined && path !== undefined) {
      options
        .bind(Listener)
        .toResolvedValue(
          (factory: TcpServerFactory, handler: ConnectionHandler) => factory(handler, { ...extra(handler), name: socketName, path, pathMode, proxyProtocol: undefined }),
          [TcpServerFactory, server],
        )
        .inSingletonScope()
        .onDeactivation((listener) => listener.close());
    }
  }
}

/** True when `module` is a {@link ProtocolModule} (createContainer then binds only the listeners `config` enables). */
export function isProtocolModule(module: ContainerModule): module is ProtocolModule {
  return module instanceof ProtocolModule;
}
