import type net from 'node:net';
import { parseProxyHeader, type ProxyHeader, type ProxyHeaderErrorReason, type ProxyParseResult } from './proxy-protocol.js';
import { readAhead, type Examined } from './read-ahead.js';

/** Why reading a PROXY header failed: a parse refusal, the deadline, or the peer going away. */
export type ProxyReadFailure = ProxyHeaderErrorReason | 'timeout' | 'peer-closed';

/** Thrown by {@link readProxyHeader}; the socket is still open (the caller closes it). */
export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
  constructor(
    readonly reason: ProxyReadFailure,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A proxy writes its header in the same segment as (or right before) the client's first bytes, so a header that
 * takes longer than this is a slow-loris or not a proxy at all. 5 s tolerates a loaded proxy host.
 */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;

/**
 * Reads one PROXY header from the start of `socket` and gives back what followed it: the bytes after the header
 * are pushed back into the socket (`unshift`), so whoever reads next (the line reader, or TLS, which drains the
 * socket's buffer when it wraps it) sees the stream exactly as the client sent it.
 *
 * Called by `TcpServer` right after accept, before any greeting and before the implicit-TLS handshake. Reads in
 * paused mode and leaves the socket paused-but-not-flowing, so a later `'data'` listener starts the flow.
 * @throws ProxyHeaderError (`malformed`, `too-long`, `unsupported`, `timeout`, `peer-closed`); the caller closes.
 */
export async function readProxyHeader(socket: net.Socket, timeoutMs = PROXY_HEADER_TIMEOUT_MS): Promise<ProxyHeader> {
  const read = await readAhead(socket, timeoutMs, (bytes): Examined<Exclude<ProxyParseResult, { state: 'incomplete' }>> => {
    const r = parseProxyHeader(bytes);
    if (r.state === 'incomplete') return 'more';
    return { value: r, unread: r.state === 'done' ? bytes.subarray(r.length) : Buffer.alloc(0) };
  });
  if ('failure' in read) {
    throw read.failure === 'timeout'
      ? new ProxyHeaderError('timeout', `no complete PROXY header within ${timeoutMs} ms`)
      : new ProxyHeaderError('peer-closed', 'peer closed before a complete PROXY header');
  }
  const r = read.value;
  if (r.state === 'error') throw new ProxyHeaderError(r.reason, r.detail);
  return r.header;
}
