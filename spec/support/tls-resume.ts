import tls from 'node:tls';

/** What one {@link resumeHandshake} saw. */
export interface ResumeResult {
  /** The server resumed the offered session. */
  readonly reused: boolean;
  /** The session (ticket) the server handed out, to offer next. */
  readonly session?: Buffer;
  /** The negotiated protocol (`TLSv1.3`…). */
  readonly protocol: string | null;
  /** The client's local port (which worker of a cluster answered shows in its logs by that port). */
  readonly localPort: number;
}

/**
 * One TLS handshake to 127.0.0.1:`port` with `options` (offering `options.session` when given). It waits for the
 * server's first data, the greeting, which comes after the server has sent its TLS 1.3 tickets, so the session is
 * known by then. Then it ends the connection: it writes `goodbye` and ends when one is given, otherwise it destroys
 * the socket. It resolves once the socket has closed.
 */
export function resumeHandshake(port: number, options: tls.ConnectionOptions, goodbye?: string): Promise<ResumeResult> {
  return new Promise((resolve, reject) => {
    let next: Buffer | undefined;
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
    s.on('session', (b: Buffer) => (next = b));
    s.once('error', reject);
    s.once('data', () => {
      const result = { reused: s.isSessionReused(), protocol: s.getProtocol(), localPort: s.localPort ?? 0 };
      s.once('close', () => resolve({ ...result, session: next }));
      if (goodbye !== undefined) s.end(goodbye);
      else s.destroy();
    });
  });
}
