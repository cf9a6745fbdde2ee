/**
 * Sample: the NOTE protocol (see custom-protocol.ts) on an implicit-TLS listener (RFC 8314 style: TLS starts
 * right after accept, before the greeting).
 *
 * ```sh
 * npm run certs                                  # optional: dev CA + localhost certificate in certs/
 * node dist/samples/implicit-tls-server.js 4001  # or PORT=4001; default 4001, 0 = any free port
 * openssl s_client -connect 127.0.0.1:4001 -tls1_3 -CAfile certs/ca.pem -crlf -quiet   # then type WHO
 * ```
 *
 * Settings (argument wins over environment):
 * - port: first argument, else `PORT`, else 4001.
 * - `POSTERN_CERTS=DIR`: use `DIR/server.pem` + `DIR/server-key.pem` (and `DIR/ca.pem` for client certificates),
 *   default `certs/` when `certs/server.pem` exists; otherwise a self-signed certificate is generated in memory
 *   and its SHA-256 fingerprint logged.
 * - `--require-client-cert` or `POSTERN_REQUIRE_CLIENT_CERT=1`: refuse clients without a certificate issued by
 *   `DIR/ca.pem` (`openssl s_client ... -cert certs/client.pem -key certs/client-key.pem`).
 *
 * Prints one line on stdout when ready, `NOTE implicit TLS listening on 127.0.0.1:<port>`; logs go to stderr.
 * SIGINT/SIGTERM close the listener gracefully and the process exits with status 0.
 */
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container } from 'inversify';
import {
  ConnectionHandler,
  createContainer,
  Logger,
  ServerSecurityToken,
  TcpServerFactory,
  type ServerSecurityOptions,
  type TcpServer,
} from '../lib/index.js';
import { NoteHandler } from './custom-protocol.js';

/** Default port of this sample (the STARTTLS-style NOTE sample uses 4000). */
export const IMPLICIT_TLS_SAMPLE_PORT = 4001;

/** Settings of {@link startImplicitTlsServer}. */
export interface ImplicitTlsSampleOptions {
  /** Port to bind (0 = any free port). */
  port: number;
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Directory with `server.pem`, `server-key.pem` and `ca.pem` (as written by `npm run certs`); none = self-signed. */
  certDir?: string;
  /** Refuse clients without a certificate from `certDir/ca.pem`. */
  requireClientCertificate?: boolean;
}

/**
 * Builds a container, binds the NOTE handler and starts one implicit-TLS listener.
 * @throws CertificateError for bad certificate files; Error when a client certificate is required without `certDir`.
 * The caller calls `close()` (listener, then container).
 */
export async function startImplicitTlsServer(options: ImplicitTlsSampleOptions): Promise<{ server: TcpServer; container: Container; close(): Promise<void> }> {
  const tls: ServerSecurityOptions = {};
  if (options.certDir) {
    tls.certificate = { certFile: join(options.certDir, 'server.pem'), keyFile: join(options.certDir, 'server-key.pem') };
  }
  if (options.requireClientCertificate) {
    if (!options.certDir) throw new Error('a client certificate can only be required with a certificate directory holding ca.pem');
    tls.requireClientCertificate = true;
    tls.trustedCertificates = await readFile(join(options.certDir, 'ca.pem'), 'utf8');
  }
  const container = createContainer({ tls });
  container.bind(ConnectionHandler).to(NoteHandler).inSingletonScope();
  const security = container.get(ServerSecurityToken);
  const server = container.get(TcpServerFactory)(container.get(ConnectionHandler), {
    name: 'notes',
    host: options.host ?? '127.0.0.1',
    port: options.port,
    security,
  });
  await server.start();
  if (security.isSelfSigned) container.get(Logger).info('using a generated self-signed certificate', { fingerprint: security.fingerprint256 });
  return {
    server,
    container,
    async close() {
      await server.close();
      await container.unbindAllAsync(); // stops certificate file watching
    },
  };
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`invalid port "${text}"`);
  return port;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const port = parsePort(args.find((a) => !a.startsWith('--'))) ?? parsePort(process.env.PORT) ?? IMPLICIT_TLS_SAMPLE_PORT;
  const certDir = process.env.POSTERN_CERTS || (existsSync(join('certs', 'server.pem')) ? 'certs' : undefined);
  const requireClientCertificate = args.includes('--require-client-cert') || process.env.POSTERN_REQUIRE_CLIENT_CERT === '1';
  const running = await startImplicitTlsServer({ port, certDir, requireClientCertificate });
  const addr = running.server.address();
  process.stdout.write(`NOTE implicit TLS listening on ${addr.address}:${addr.port}\n`);
  const stop = (): void => {
    running.close().catch((err: unknown) => {
      process.stderr.write(`close failed: ${String(err)}\n`);
      process.exitCode = 1;
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
