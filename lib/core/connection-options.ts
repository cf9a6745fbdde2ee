/**
 * What a {@link Connection} is made from and reports: its constructor's options, its events with the close reasons,
 * its security state, and the owner that hears how a server-side upgrade ended. Re-exported by `connection.ts`.
 */
import type { X509Certificate } from 'node:crypto';
import type { Connection } from './connection.js';
import type { SslPolicyErrors, X509Chain } from './policy-errors.js';

/** The security state of a connection: one record, never a pile of booleans. */
export interface SecurityState {
  /** True once a TLS handshake succeeded and the policy accepted the peer. */
  readonly tls: boolean;
  readonly protocol?: string;
  readonly cipher?: string;
  /** SNI server name the client asked for (server side) or the target host (client side). */
  readonly sni?: string;
  /** The peer's certificate (a client certificate on the server side). */
  readonly peerCertificate?: X509Certificate;
  /** The peer's chain with statuses. */
  readonly chain?: X509Chain;
  /** Policy errors the validation saw (accepted ones included). */
  readonly policyErrors: SslPolicyErrors;
  /** The ALPN protocol id negotiated (`imap`, `smtp`…), if the client offered one the listener speaks. */
  readonly alpnProtocol?: string;
}

/** Why a connection closed. */
export type CloseReason = 'peer-closed' | 'closed' | 'idle-timeout' | 'error' | 'tls-failed' | 'server-shutdown' | 'refused';

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  data: [chunk: Buffer];
  /** The idle timer fired. Without a listener the connection closes itself with reason `idle-timeout`. */
  timeout: [];
  /** Emitted exactly once. */
  close: [reason: CloseReason];
  /** A TLS handshake succeeded (implicit TLS or STARTTLS) and the policy accepted the peer. */
  secured: [security: SecurityState];
  /** A TLS handshake failed; `reason` is the `TlsHandshakeError` reason. */
  'tls-failed': [reason: string];
  drain: [];
}

/**
 * @internal Who hears how a server-side upgrade started by {@link Connection.secureAccepted} ended: `TcpServer`'s
 * implicit-TLS accept path (no promise per connection, issue 15), and {@link Connection.authenticateAsServer}'s promise.
 */
export interface UpgradeOwner<A> {
  connectionSecured(connection: Connection, arg: A): void;
  /** The upgrade failed; the connection is closed (reason `tls-failed`) or closing by then, except when `prepare()` failed. */
  connectionNotSecured(connection: Connection, err: unknown, arg: A): void;
}

/** Options of the {@link Connection} constructor. */
export interface ConnectionOptions {
  /** Client side: the host name or address dialled. */
  dialledHost?: string;
  /** Server side: the client's endpoints from a trusted PROXY protocol header (see `TcpServerOptions.proxyProtocol`). */
  proxied?: { readonly source: { address: string; port: number }; readonly destination?: { address: string; port: number } };
  /** Prepended to the id (`w2-` gives `w2-c1f`), so ids stay unique when several processes serve one listener. */
  idPrefix?: string;
  /**
   * The owner calls {@link Connection.authenticateAsServer} (or closes) in the same turn, before any plaintext could
   * be read (an implicit-TLS listener): the plaintext socket then gets only the error listener, not the read, idle
   * and drain listeners the upgrade would remove again at once.
   */
  secureAtOnce?: boolean;
  /**
   * Server side: the ALPN ids of the protocol spoken on this connection (`ConnectionHandler.alpnProtocols`), which
   * {@link authenticateAsServer} and the implicit-TLS accept negotiate unless the `ServerSecurity` sets its own.
   */
  alpnProtocols?: readonly string[];
}
