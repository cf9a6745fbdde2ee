import type { Connection, SecurityState } from '../core/connection.js';

/**
 * What backends and hooks may know about the peer of a session: addresses, the connection id for log
 * correlation, and the TLS facts. Never the socket.
 */
export interface PeerInfo {
  /** Connection id (`cid` in logs). */
  readonly id: string;
  /** Protocol/listener name (`smtp`, `imaps`…). */
  readonly protocol: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** TLS facts at the time of the call (protocol, cipher, client certificate, policy errors). */
  readonly security: SecurityState;
}

/** A snapshot of `connection` for hooks and backends (`protocol` is the listener's name). */
export function peerInfo(connection: Connection, protocol: string): PeerInfo {
  return {
    id: connection.id,
    protocol,
    remoteAddress: connection.remoteAddress,
    remotePort: connection.remotePort,
    localAddress: connection.localAddress,
    localPort: connection.localPort,
    security: connection.security,
  };
}
