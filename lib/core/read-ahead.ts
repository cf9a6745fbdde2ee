import type net from 'node:net';

/** What a {@link readAhead} examiner says about the bytes read so far: wait for more, or done, with what to push back. */
export type Examined<T> = 'more' | { readonly value: T; readonly unread: Buffer };

/** How a {@link readAhead} ended without the examiner deciding. */
export type ReadAheadFailure = 'timeout' | 'peer-closed';

/**
 * Reads the first bytes of `socket` (in paused mode) until `examine` decides, then pushes back the bytes it says are
 * unread (`unshift`): whoever reads next (a line reader, or TLS, which drains the socket's buffer when it wraps it)
 * sees the stream as the client sent it from there. On a timeout or the peer's end every byte read is pushed back
 * (while the stream still takes it). Leaves the socket paused-but-not-flowing, so a later `'data'` listener starts
 * the flow. Used for a PROXY header and, during an ACME validation, a TLS ClientHello.
 */
export function readAhead<T>(socket: net.Socket, timeoutMs: number, examine: (bytes: Buffer) => Examined<T>): Promise<{ value: T } | { failure: ReadAheadFailure }> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    const finish = (outcome: { value: T } | { failure: ReadAheadFailure }, unread: Buffer): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (unread.length > 0 && !socket.readableEnded && !socket.destroyed) socket.unshift(unread);
      resolve(outcome);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      let grew = false;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
        grew = true;
      }
      if (!grew) return;
      const examined = examine(bytes);
      if (examined !== 'more') finish({ value: examined.value }, examined.unread);
    };
    const onEnd = (): void => finish({ failure: 'peer-closed' }, bytes);
    const timer = setTimeout(() => finish({ failure: 'timeout' }, bytes), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
