/**
 * Sample: the whole mail server that `npm start` runs (SMTP, POP3 and IMAP, each with STARTTLS and implicit TLS,
 * over one in-memory store), assembled from the public API in a few lines.
 *
 * ```sh
 * node dist/samples/mail-server.js                 # ports 3025 3465 3110 3995 3143 3993
 * node dist/samples/mail-server.js 10000           # or PORT_OFFSET=10000: 13025, 13465, …
 * node dist/samples/mail-server.js --any-port      # or POSTERN_ANY_PORT=1: free ports, printed
 * ```
 * Certificate: `POSTERN_CERTS=DIR` (default `certs/` when `npm run certs` wrote it) supplies `server.pem` and
 * `server-key.pem`; otherwise a self-signed one is generated. One user, `alice:secret@example.test`.
 * Prints `mail-server: <name> ready on <host>:<port> (<tls>)` per listener on stdout, then
 * `mail-server: stopped` after SIGINT/SIGTERM (graceful: live sessions get 421 / -ERR / BYE); exit status 0.
 */
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createMailServerContainer, MailServer } from '../lib/index.js';

const args = process.argv.slice(2);
const certDir = process.env.POSTERN_CERTS || (existsSync(join('certs', 'server.pem')) ? 'certs' : undefined);
const container = createMailServerContainer({
  anyPort: args.includes('--any-port') || process.env.POSTERN_ANY_PORT === '1',
  portOffset: Number(args.find((a) => /^\d+$/.test(a)) ?? process.env.PORT_OFFSET ?? 0),
  tls: certDir ? { certificate: { certFile: join(certDir, 'server.pem'), keyFile: join(certDir, 'server-key.pem') } } : {},
  users: [{ username: 'alice', password: 'secret', addresses: ['alice@example.test'] }],
  log: { level: 'warn' },
});
const server = new MailServer(container);
const started = server.start();
const stop = async (): Promise<void> => {
  await started.catch(() => undefined);
  await server.stop(); // stop accepting, let sessions finish
  await container.unbindAllAsync(); // release the store and certificate watchers
  process.stdout.write('mail-server: stopped\n');
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
try {
  for (const l of await started) {
    process.stdout.write(`mail-server: ${l.name} ready on ${l.host}:${l.port} (${l.tls === 'implicit' ? 'implicit TLS' : 'STARTTLS'})\n`);
  }
} catch (err) {
  process.stderr.write(`mail-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}
