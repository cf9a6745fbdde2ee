/**
 * Sample: your own container with one piece rebound. Postern's modules bind everything; you build the
 * container with `createContainer(config, modules)` and `rebind` what you replace, here the root Logger.
 * Every component that logs (TcpServer, each Connection's child logger, ServerSecurity reloads) then
 * writes through yours.
 *
 * ```sh
 * node dist/samples/rebind-logger.js 4002   # or PORT=4002; 0 = any free port
 * nc 127.0.0.1 4002                         # type HELLO, WHO, QUIT; log lines appear on stdout as "[my-app] ..."
 * ```
 * Prints `NOTE listening on 127.0.0.1:<port>` on stdout when ready; SIGINT/SIGTERM close gracefully.
 */
import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { ContainerModule, type Container } from 'inversify';
import { ConnectionHandler, createContainer, Logger, TcpServerFactory, type PosternConfig, type TcpServer } from '../lib/index.js';
import { NoteHandler } from './custom-protocol.js';

/** Default port of this sample. */
export const REBIND_SAMPLE_PORT = 4002;

/**
 * A Logger of your own; any object with the five methods will do, winston is not required. Writes one line per
 * message, `[my-app] <level> <message> key=value...`, through `write`. Values under secret-looking keys are
 * dropped, as Postern's own logger does: a replacement logger takes over that duty.
 */
export function prefixedLogger(write: (line: string) => void, bound: Record<string, unknown> = {}): Logger {
  const SECRET = /^(password|pass|passphrase|key|privateKey|secret|token|payload|body)$/;
  const at =
    (level: string) =>
    (message: string, meta: Record<string, unknown> = {}): void => {
      const all = { ...bound, ...meta };
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${SECRET.test(k) ? '[redacted]' : typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(`[my-app] ${level} ${message}${kv ? ' ' + kv : ''}`);
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (meta) => prefixedLogger(write, { ...bound, ...meta }),
  };
}

/** The sample's own protocol module: the NOTE handler from custom-protocol.ts. */
export const noteModule = new ContainerModule(({ bind }) => {
  bind(ConnectionHandler).to(NoteHandler).inSingletonScope();
});

/**
 * Builds the container: Postern's core module plus {@link noteModule}, then rebinds `Logger` to `logger`.
 * Rebinding must happen before anything that depends on the Logger is resolved (they are singletons).
 */
export function buildContainer(logger: Logger, config: PosternConfig = {}): Container {
  const container = createContainer(config, [noteModule]);
  container.rebind(Logger).toConstantValue(logger);
  return container;
}

/**
 * Starts a STARTTLS-style NOTE listener on `port` from a container whose Logger is `logger`.
 * The caller calls `close()`.
 */
export async function startWithLogger(logger: Logger, port: number): Promise<{ server: TcpServer; container: Container; close(): Promise<void> }> {
  const container = buildContainer(logger);
  const server = container.get(TcpServerFactory)(container.get(ConnectionHandler), { name: 'note', port });
  await server.start();
  return {
    server,
    container,
    async close() {
      await server.close();
      await container.unbindAllAsync();
    },
  };
}

async function main(): Promise<void> {
  const arg = process.argv[2] ?? process.env.PORT;
  const port = arg !== undefined && arg !== '' ? Number(arg) : REBIND_SAMPLE_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`invalid port "${arg}"`);
  const running = await startWithLogger(
    prefixedLogger((line) => process.stdout.write(line + '\n')),
    port,
  );
  const addr = running.server.address();
  process.stdout.write(`NOTE listening on ${addr.address}:${addr.port}\n`);
  const stop = (): void => void running.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
