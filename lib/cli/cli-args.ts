/**
 * The `postern` command line: flags → a {@link MailServerConfig}. The option groups live in `cli-option-groups.ts`,
 * the help text in `cli-help.ts`, the error type and file readers in `cli-usage.ts`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { checkPostgresUrl } from '../backends/postgres/postgres-mail-store.js';
import { DEFAULT_PORTS, LISTENER_NAMES, MAIL_LISTENER_NAMES, isPostgresUrl, type ListenerName, type MailServerConfig } from '../di/mail-server.js';
import { parseUserSpec } from '../test-double/user-spec.js';
import { isTlsFlag, listenerTlsSections, splitTlsFlags, type SplitTlsFlags } from './cli-tls.js';
import { acmeOptions, certLoginOption, chaosOption, dsnRelayOption, isLoopbackHost, limitOptions, lmtpOptions, parsePort, parseWorkers, proxyOptions, quotaOptions, throttleOptions, tlsOptions, withListenerTls } from './cli-option-groups.js';
import type { QuotaOptions } from '../contracts/quota.js';
import { withOptionSources, type OptionOrigins, type OptionValues } from './cli-sources.js';
import { asUsage, UsageError } from './cli-usage.js';

export { UsageError } from './cli-usage.js';
export { HELP } from './cli-help.js';
export { MAX_WORKERS, workerCount } from './cli-option-groups.js';

/** The parsed command line. */
export interface CliArgs {
  readonly help: boolean;
  readonly version: boolean;
  /** `--check`: check the configuration and exit. */
  readonly check: boolean;
  readonly config: MailServerConfig;
}

/** Every option of the command, as `node:util`'s parseArgs takes them (also read from the environment and `--config`). */
export const CLI_OPTIONS = {
  host: { type: 'string' },
  only: { type: 'string' },
  'port-offset': { type: 'string' },
  ...Object.fromEntries(LISTENER_NAMES.map((n) => [`${n}-port`, { type: 'string' as const }])),
  'lmtp-socket': { type: 'string' },
  'lmtp-socket-mode': { type: 'string' },
  user: { type: 'string', multiple: true },
  'auth-disabled': { type: 'boolean' },
  quota: { type: 'string' },
  'user-quota': { type: 'string', multiple: true },
  store: { type: 'string' },
  postmaster: { type: 'string' },
  cert: { type: 'string', multiple: true },
  key: { type: 'string', multiple: true },
  pfx: { type: 'string', multiple: true },
  passphrase: { type: 'string', multiple: true },
  ca: { type: 'string', multiple: true },
  'client-cert': { type: 'string', multiple: true },
  'cert-login': { type: 'string' },
  'tls-min': { type: 'string', multiple: true },
  'tls-groups': { type: 'string', multiple: true },
  'tls-alpn': { type: 'string', multiple: true },
  'cert-dir': { type: 'string', multiple: true },
  'allow-insecure-auth': { type: 'boolean' },
  dsn: { type: 'boolean' },
  'dsn-relay': { type: 'string' },
  'dsn-relay-ca': { type: 'string' },
  'http-auth': { type: 'string' },
  'http-cors': { type: 'string' },
  chaos: { type: 'string' },
  'acme-directory': { type: 'string' },
  'acme-email': { type: 'string' },
  'acme-domain': { type: 'string' },
  'acme-state': { type: 'string' },
  'acme-ca': { type: 'string' },
  'acme-challenge': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-address': { type: 'string' },
  'max-connections-per-address-total': { type: 'string' },
  'max-connections-total': { type: 'string' },
  'pre-auth-timeout': { type: 'string' },
  'command-timeout': { type: 'string' },
  'auth-failures-per-address': { type: 'string' },
  'metrics-port': { type: 'string' },
  'auth-failures-per-account': { type: 'string' },
  workers: { type: 'string' },
  'proxy-protocol': { type: 'boolean' },
  'proxy-trusted': { type: 'string' },
  'proxy-listeners': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  config: { type: 'string' },
  check: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} satisfies ParseArgsConfig['options'];

/**
 * Parses the command line into a {@link MailServerConfig}, completed from `env` (`POSTERN_SMTP_PORT`…) and the
 * `--config` file (see `cli-sources.ts`). Reads certificate files named on it, so that an unreadable file is a usage
 * error before anything listens.
 * @param env the environment to read `POSTERN_*` options from (the command passes `process.env`; none by default).
 * @throws UsageError with a one-line message.
 */
export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): CliArgs {
  let values: OptionValues;
  try {
    ({ values } = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: CLI_OPTIONS }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  const origins: OptionOrigins = new Map();
  const merged = withOptionSources(values, CLI_OPTIONS, env, origins);
  try {
    return argsFrom(merged);
  } catch (err) {
    // A bad value from the environment or the file says where it was set (`… (set by POSTERN_LOG_LEVEL)`).
    const flag = err instanceof UsageError ? /^--([a-z0-9-]+)/.exec(err.message)?.[1] : undefined;
    const origin = flag === undefined ? undefined : origins.get(flag);
    if (origin !== undefined) throw new UsageError(`${(err as Error).message} (set by ${origin})`);
    throw err;
  }
}

/** The {@link CliArgs} of the options, whatever their sources. */
function argsFrom(values: OptionValues): CliArgs {
  // The TLS flags may be given once per listener (`VALUE@LISTENER`); `str` reads their shared value.
  let tlsFlags: SplitTlsFlags = { shared: {}, listeners: {} };
  const str = (k: string): string | undefined => (isTlsFlag(k) ? tlsFlags.shared[k] : (values[k] as string | undefined));

  const only = str('only')?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const n of only ?? []) if (!LISTENER_NAMES.includes(n as ListenerName)) throw new UsageError(`--only: unknown listener "${n}" (use ${LISTENER_NAMES.join(', ')})`);
  if (only && only.length === 0) throw new UsageError('--only: no listener named');
  tlsFlags = asUsage(() => splitTlsFlags(values, MAIL_LISTENER_NAMES, only ?? LISTENER_NAMES));

  const offset = str('port-offset') === undefined ? 0 : parsePort(str('port-offset')!, '--port-offset', true);
  const ports: Partial<Record<ListenerName, number>> = {};
  for (const n of LISTENER_NAMES) {
    const v = str(`${n}-port`);
    if (v !== undefined) ports[n] = parsePort(v, `--${n}-port`);
    else if (DEFAULT_PORTS[n] + offset > 65535) throw new UsageError(`--port-offset ${offset} moves ${n} past port 65535`);
  }

  const logLevel = str('log-level');
  if (logLevel && !['error', 'warn', 'info', 'debug'].includes(logLevel)) throw new UsageError(`--log-level: expected error, warn, info or debug, got "${logLevel}"`);
  const logFormat = str('log-format');
  if (logFormat && logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`--log-format: expected text or json, got "${logFormat}"`);

  const store = str('store') ?? 'memory';
  if (isPostgresUrl(store)) {
    try {
      checkPostgresUrl(store);
    } catch (err) {
      throw new UsageError(`--store: ${(err as Error).message}`);
    }
  } else if (store !== 'memory' && !(store.startsWith('maildir:') && store.length > 8)) {
    throw new UsageError(`--store: expected memory, maildir:PATH or postgres://USER:PASSWORD@HOST:PORT/DB, got "${store}"`);
  }

  const workers = parseWorkers(str('workers'));
  if (workers !== undefined && workers !== 1 && store === 'memory') {
    throw new UsageError(`--workers ${str('workers')}: the memory store lives inside one process; use --store maildir:PATH (or another shared store)`);
  }
  const proxyProtocol = proxyOptions(values['proxy-protocol'] === true, str('proxy-trusted'), str('proxy-listeners'));

  const acmeChallenges = str('acme-challenge')?.split(',').map((c) => c.trim().toLowerCase());
  if (acmeChallenges?.length === 1 && acmeChallenges[0] === 'http-01' && only !== undefined && !only.includes('http')) {
    throw new UsageError('--acme-challenge http-01: the HTTP listener answers it; add http to --only');
  }
  const httpAuth = str('http-auth');
  if (httpAuth !== undefined && !/^[^:]+:.+$/.test(httpAuth)) throw new UsageError('--http-auth: expected USER:PASSWORD');
  // The HTTP API and web inbox show every stored message: safe by default means never open to the network unguarded.
  const host = str('host') ?? '127.0.0.1';
  if ((only === undefined || only.includes('http')) && httpAuth === undefined && !isLoopbackHost(host)) {
    throw new UsageError(`http: the HTTP API and web inbox show every message; on --host ${host} they need --http-auth USER:PASSWORD (or leave http out with --only)`);
  }
  const chaos = chaosOption(str('chaos'));

  let users;
  try {
    users = ((values.user as string[] | undefined) ?? []).map(parseUserSpec);
  } catch (err) {
    throw new UsageError(`--user: ${(err as Error).message}`);
  }

  const tls = tlsOptions(str);
  const listenerTls = asUsage(() => listenerTlsSections(tlsFlags, tls));
  const smtpSection = { ...(str('postmaster') !== undefined ? { postmaster: str('postmaster') } : {}), ...(values.dsn === true ? { dsn: true } : {}), ...listenerTls.smtp };

  return {
    help: values.help === true,
    version: values.version === true,
    check: values.check === true,
    config: {
      host: str('host') ?? '127.0.0.1',
      // The command also serves the HTTP API and inbox unless --only says otherwise; LMTP when --lmtp-port asks for it.
      only: (only as ListenerName[] | undefined) ?? [...MAIL_LISTENER_NAMES, ...(ports.lmtp !== undefined ? ['lmtp'] : []), 'http'],
      ports,
      portOffset: offset,
      users,
      authDisabled: values['auth-disabled'] === true,
      // A client certificate asked for on one listener only (`--client-cert require@imaps`) is enough for EXTERNAL there.
      ...certLoginOption((k) => (k === 'client-cert' ? (str(k) ?? Object.values(tlsFlags.listeners).map((f) => f[k]).find((v) => v !== undefined && v !== 'none')) : str(k))),
      allowInsecureAuth: values['allow-insecure-auth'] === true,
      store,
      tls,
      acme: acmeOptions(str),
      log: { level: logLevel ?? 'info', format: (logFormat as 'text' | 'json' | undefined) ?? 'text' },
      ...listenerTls,
      smtp: Object.keys(smtpSection).length > 0 ? smtpSection : undefined,
      ...withListenerTls(lmtpOptions(str('lmtp-socket'), str('lmtp-socket-mode'), str('postmaster'), values.dsn === true), listenerTls.lmtp),
      limits: limitOptions(str),
      ...withQuota(quotaOptions(str('quota'), values['user-quota'] as string[] | undefined)),
      ...dsnRelayOption(str('dsn-relay'), str('dsn-relay-ca'), values.dsn === true),
      authThrottle: throttleOptions(str),
      metricsPort: str('metrics-port') === undefined ? undefined : parsePort(str('metrics-port')!, '--metrics-port'),
      ...(workers !== undefined ? { workers } : {}),
      ...(proxyProtocol ? { proxyProtocol } : {}),
      http: { auth: httpAuth, cors: str('http-cors') },
      chaos,
    },
  };
}

/** `{ quota }` when there is one, else nothing (the config keeps no `quota: undefined` key). */
function withQuota(quota: QuotaOptions | undefined): { quota?: QuotaOptions } {
  return quota === undefined ? {} : { quota };
}
