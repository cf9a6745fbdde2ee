import net from 'node:net';
import tls from 'node:tls';
import { ServerSecurity } from '../lib/core/server-security.js';
import { TcpServer } from '../lib/core/tcp-server.js';
import { createLogger } from '../lib/log/logger.js';
import { NoteHandler } from '../samples/custom-protocol.js';
import type { DevCertificates } from '../lib/core/dev-certificates.js';

/** A started server with its port and a stop function. */
export interface Running {
  port: number;
  stop(): Promise<void>;
}

const silent = createLogger({ silent: true });

/** Postern's NOTE sample protocol on a TcpServer (optionally implicit TLS). */
export async function posternNote(certs: DevCertificates, implicitTls: boolean): Promise<Running> {
  const security = new ServerSecurity({ certificate: certs.server });
  const server = new TcpServer(new NoteHandler(security), { port: 0, security: implicitTls ? security : undefined, maxConnections: 100_000 }, silent);
  const { port } = await server.start();
  return { port, stop: () => server.close() };
}

/**
 * The reference: the same greeting and ECHO replies written straight on Node's own server with a naive
 * split-on-CRLF loop: no framing limits, no error budget, no logging.
 */
export async function reference(certs: DevCertificates, implicitTls: boolean): Promise<Running> {
  const onSocket = (s: net.Socket): void => {
    s.on('error', () => undefined);
    s.setNoDelay(true);
    s.write('+ NOTE ready\r\n');
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      let out = '';
      while ((i = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line.startsWith('ECHO ')) out += `+ ${line.slice(5)}\r\n`;
        else if (line === 'QUIT') {
          s.end(out + '+ bye\r\n');
          return;
        } else out += '+ hello\r\n';
      }
      if (out) s.write(out);
    });
  };
  const server = implicitTls ? tls.createServer({ cert: certs.server.cert, key: certs.server.key }, onSocket) : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    port,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Connects, waits for the first line, returns the socket. */
export function connectForGreeting(port: number, tlsOptions?: tls.ConnectionOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = tlsOptions ? tls.connect({ port, host: '127.0.0.1', ...tlsOptions }) : net.connect(port, '127.0.0.1');
    s.once('error', reject);
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) {
        s.off('data', onData);
        resolve(s);
      }
    };
    s.on('data', onData);
  });
}
