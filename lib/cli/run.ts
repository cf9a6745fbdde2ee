/**
 * The `postern` command's body: runs SMTP, POP3 and IMAP (STARTTLS and implicit TLS) over one mail store.
 * `postern --help` lists the options. Exit codes: 0 after a clean shutdown, 2 for a usage or start-up error.
 * `lib/cli/main.ts` is the executable that calls {@link runCli}.
 */
import { readFileSync } from 'node:fs';
import { CertificateError } from '../core/server-security.js';
import { SslProtocolsError } from '../core/ssl-protocols.js';
import { ServerSecurityToken } from '../di/core.module.js';
import { createMailServerContainer, MailServer, type MailServerConfig } from '../di/mail-server.js';
import { Logger } from '../log/logger.js';
import { MetricsServer } from '../metrics/metrics-server.js';
import { MetricsRegistry } from '../metrics/postern-metrics.js';
import { parseCliArgs, UsageError, HELP } from './cli-args.js';

/** Runs the command with `argv` (without node and script); resolves the exit code. */
export async function runCli(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  let config: MailServerConfig;
  try {
    const args = parseCliArgs(argv);
    if (args.help) {
      out(HELP);
      return 0;
    }
    if (args.version) {
      out(version());
      return 0;
    }
    config = args.config;
  } catch (err) {
    return fail(err);
  }
  const container = createMailServerContainer(config);
  const server = new MailServer(container);
  const log = container.get(Logger);
  let metrics: MetricsServer | undefined;
  // Listen for signals before anything starts: a SIGTERM right after the ready lines must still be graceful.
  let onSignal!: (signal: NodeJS.Signals) => void;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => resolve(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  try {
    const security = container.get(ServerSecurityToken);
    await security.prepare();
    if (security.isSelfSigned) out(`postern: using a generated self-signed certificate, SHA-256 fingerprint ${security.fingerprint256}`);
    const ready = await server.start();
    if (config.metricsPort !== undefined) {
      metrics = new MetricsServer(container.get(MetricsRegistry), log, { host: config.host, port: config.metricsPort });
      const addr = await metrics.start().catch((err: NodeJS.ErrnoException) => {
        throw Object.assign(new Error(`metrics: ${err.code === 'EADDRINUSE' ? `${config.host ?? '127.0.0.1'}:${config.metricsPort} is already in use` : err.message}`), { code: err.code });
      });
      out(`postern: metrics ready on http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/metrics`);
    }
    for (const l of ready) out(`postern: ${l.name} ready on ${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port} (${l.tls === 'implicit' ? 'implicit TLS' : l.name.startsWith('pop3') ? 'STLS' : 'STARTTLS'})`);
    if (!config.authDisabled && (await server.store.users.list()).length === 0) {
      out('postern: no users yet: add --user LOGIN:PASSWORD@DOMAIN, or --auth-disabled to accept any login and recipient');
    }
  } catch (err) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metrics?.close();
    await server.stop().catch(() => undefined);
    return fail(err);
  }
  log.info('shutting down', { signal: await stopRequested });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await metrics?.close();
  await server.stop();
  await container.unbindAllAsync();
  out('postern: stopped');
  return 0;
}

/** Prints a one-line error (no stack unless POSTERN_DEBUG is set) and returns exit code 2. */
export function fail(err: unknown): number {
  const e = err as NodeJS.ErrnoException;
  const known = err instanceof UsageError || err instanceof CertificateError || err instanceof SslProtocolsError || typeof e?.code === 'string';
  process.stderr.write(`postern: error: ${e?.message ?? String(err)}${err instanceof UsageError ? ' (see postern --help)' : ''}\n`);
  if (!known && process.env.POSTERN_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
  return 2;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `postern ${pkg.version}`;
}
