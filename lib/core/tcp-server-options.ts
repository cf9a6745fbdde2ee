/**
 * What a listener ({@link TcpServer}) is made from and hands out: the handler contract, the options, what a handler
 * learns about the listener, the events, and the defaults. Re-exported by `tcp-server.ts`.
 */
import type { ServiceIdentifier } from '../vendor/inversify.js';
import type { CloseReason, Connection } from './connection.js';
import type { RefusalReason } from './connection-limits.js';
import type { ServerSecurity } from './server-security.js';

/**
 * The protocol spoken on a listener. `TcpServer` accepts, optionally performs the implicit-TLS handshake,
 * then hands the connection over. Bind your own to serve your own protocol.
 */
export interface ConnectionHandler {
  /** Runs one session. Called once per accepted (and, on implicit-TLS listeners, secured) connection. The returned promise settling is not awaited for anything but error logging. */
  handle(connection: Connection, listener: ListenerInfo): void | Promise<void>;
  /**
   * Called instead of `handle` when a connection cap refuses the connection: write a refusal line (e.g. `421`) if
   * the protocol has one. On an implicit-TLS listener the handshake has completed by then, so the line goes out
   * encrypted. The server closes the connection afterwards.
   */
  refuse?(connection: Connection, listener: ListenerInfo): void;
  /**
   * Implicit-TLS listeners only: asked right after accept, before the handshake. Returning false aborts it (the
   * connection is dropped before any TLS record is answered): fault injection's `tls-abort`.
   */
  beforeHandshake?(connection: Connection, listener: ListenerInfo): boolean;
  /** Called for each live session when the server closes: say goodbye (e.g. `421 shutting down`) and close. The server destroys what is left after the grace period. */
  shutdown?(connection: Connection): void | Promise<void>;
  /**
   * Awaited by {@link TcpServer.start} before it listens: load what sessions need (IMAP and POP3 load their session
   * code here rather than at `import 'postern'`), so no connection waits for it.
   */
  prepare?(): Promise<void>;
  /**
   * The ALPN protocol ids (RFC 7301) of the protocol this handler speaks (`['smtp']`, `['imap']`, `['pop3']`). A
   * client that offers ALPN during a handshake on this listener (implicit TLS or STARTTLS) without any of them is
   * refused with a `no_application_protocol` alert: a browser's HTTPS request sent to a mail port (the ALPACA
   * cross-protocol attacks; RFC 9325 §3.8) never gets a session. A client that offers no ALPN, as mail clients do,
   * is not affected. None: ALPN is not negotiated. `ServerSecurityOptions.alpnProtocols` overrides it.
   */
  readonly alpnProtocols?: readonly string[];
}
/** DI token for {@link ConnectionHandler}. */
export const ConnectionHandler = Symbol.for('postern.ConnectionHandler') as ServiceIdentifier<ConnectionHandler>;

/** Listener configuration. */
export interface TcpServerOptions {
  /** Name for logs and ready lines (`smtp`, `imaps`, …). */
  name?: string;
  /** Address to bind, default `127.0.0.1`; `::1`, `::`, `0.0.0.0` work too. */
  host?: string;
  /** Port, default 0 (any free port; read it back from {@link TcpServer.address}). */
  port?: number;
  /**
   * Listen on this Unix domain socket path instead of `host`/`port` (LMTP for Postfix's `lmtp:unix:PATH`). A stale
   * socket file nobody listens on is replaced; any other file at the path fails `start()` with EADDRINUSE. Peers
   * have no address (`remoteAddress` is `''`): the per-address caps count them together.
   */
  path?: string;
  /** File mode of the `path` socket, set right after listening (e.g. `0o660`); default: 0777 less the umask. */
  pathMode?: number;
  /** When set, the listener speaks implicit TLS (RFC 8314): the handshake runs right after accept. */
  security?: ServerSecurity;
  /** Concurrent connections allowed; further ones are refused through `ConnectionHandler.refuse`. Default 1000. */
  maxConnections?: number;
  /**
   * Concurrent connections one client address may hold on this listener (default `MAX_CONNECTIONS_PER_ADDRESS` (connection-limits.ts),
   * 0 = no cap). Keep it below `maxConnections` so one address cannot lock others out.
   */
  maxConnectionsPerAddress?: number;
  /**
   * Longest time (ms) a session may stay unauthenticated before the protocol says goodbye (0 or absent: none).
   * Handed to the handler in {@link ListenerInfo}; protocol sessions enforce it.
   */
  preAuthTimeoutMs?: number;
  /** Longest time (ms) one command line may take from its first octet to its CRLF (slowloris bound; see {@link ListenerInfo}). */
  commandTimeoutMs?: number;
  /** Idle timeout set on every connection before the handler runs (ms, 0 = none). Protocols usually set their own. */
  idleTimeoutMs?: number;
  /** How long `close()` lets live sessions finish before destroying them (ms). Default 5 s. */
  closeTimeoutMs?: number;
  /**
   * Expect a PROXY protocol header (v1 or v2) on every connection, before the greeting and before implicit TLS; the
   * client address it names replaces the peer's everywhere (logs, hooks, PeerInfo, Received). Peers outside
   * `trusted` are closed before any greeting. See {@link ProxyProtocolOptions}.
   */
  proxyProtocol?: ProxyProtocolOptions;
  /** Prefix of connection ids (`w2-`), so ids stay unique across cluster workers. */
  connectionIdPrefix?: string;
}

/** PROXY protocol settings of a listener (HAProxy's proxy-protocol.txt, v1 and v2). */
export interface ProxyProtocolOptions {
  /** CIDR blocks (or single addresses) of the proxies allowed to connect; required, never empty. */
  readonly trusted: readonly string[];
  /** Deadline for the complete header after accept (default `PROXY_HEADER_TIMEOUT_MS` (proxy-header-reader.ts)). */
  readonly headerTimeoutMs?: number;
}
/** DI token for {@link TcpServerOptions}. */
export const TcpServerOptions = Symbol.for('postern.TcpServerOptions') as ServiceIdentifier<TcpServerOptions>;

/** What a handler learns about the listener a connection arrived on. */
export interface ListenerInfo {
  readonly name: string;
  /** True on an implicit-TLS listener. */
  readonly implicitTls: boolean;
  readonly port: number;
  /** The listener's pre-authentication deadline in ms, when set (see {@link TcpServerOptions.preAuthTimeoutMs}). */
  readonly preAuthTimeoutMs?: number;
  /** The listener's whole-command deadline in ms, when set (see {@link TcpServerOptions.commandTimeoutMs}). */
  readonly commandTimeoutMs?: number;
}

/** Events of a {@link TcpServer}, for observers such as metrics. */
export interface TcpServerEvents {
  /** A connection was accepted and handed to the handler (before any implicit-TLS handshake). */
  accepted: [connection: Connection];
  /** A connection was refused by a cap. */
  refused: [reason: RefusalReason];
  /** An accepted connection closed. */
  closed: [connection: Connection, reason: CloseReason];
}

/** Default connection ceiling: enough for a busy test run, small enough to bound memory (a few KB each). */
export const MAX_CONNECTIONS = 1000;
/** Default time `close()` waits for sessions to say goodbye. */
export const CLOSE_TIMEOUT_MS = 5_000;
/**
 * Refused connections on an implicit-TLS listener that may be in their handshake at once (to send the goodbye
 * encrypted). Past this a refused connection is closed without one: a flood must not buy TLS handshakes.
 */
export const MAX_REFUSAL_HANDSHAKES = 16;
/** At most one `connection refused` warn line per client address and reason in this many ms (the rest are counted). */
export const REFUSAL_LOG_INTERVAL_MS = 1_000;
/** First and longest pause between two warnings about running out of file descriptors on accept. */
export const ACCEPT_ERROR_BACKOFF_MS = { first: 100, max: 30_000 } as const;
