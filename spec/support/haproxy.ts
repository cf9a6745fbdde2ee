import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The haproxy binary (Debian package `haproxy`, in /usr/sbin), or undefined when it is not installed. */
export async function findHaproxy(): Promise<string | undefined> {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    const candidate = path.join(dir, 'haproxy');
    try {
      await access(candidate);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** One TCP frontend: a loopback port that balances round-robin over `servers`, each sent a PROXY v2 header. */
export interface HaproxyFrontend {
  readonly name: string;
  readonly servers: ReadonlyArray<{ readonly host: string; readonly port: number }>;
}

/** A running haproxy. */
export interface RunningHaproxy {
  /** Frontend name → the port clients connect to. */
  readonly ports: Readonly<Record<string, number>>;
  /** Stops haproxy and removes its config directory. Idempotent. */
  stop(): Promise<void>;
}

/** A free loopback port (listen on 0, read it, close). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * Resolves once haproxy accepts on `port`. haproxy announces nothing when it has bound its ports, so this polls:
 * at most 100 connects, 20 ms apart (a bounded readiness poll, not a sleep that correctness depends on).
 */
async function accepting(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`haproxy is not accepting on ${port}`);
}

/**
 * Starts haproxy in the foreground (`-db`) with a generated config: TCP mode (TLS passes through untouched), one
 * loopback frontend per entry, `send-proxy-v2` to every server. The caller stops it (after hook).
 */
export async function startHaproxy(binary: string, frontends: readonly HaproxyFrontend[]): Promise<RunningHaproxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'postern-haproxy-'));
  const ports: Record<string, number> = {};
  // A probe frontend that closes every connection: polling it proves the ports are bound without sending
  // connections (and PROXY headers) to the servers under test.
  const probe = await freePort();
  const sections: string[] = [`frontend readiness_probe`, `  bind 127.0.0.1:${probe}`, '  tcp-request connection reject'];
  for (const f of frontends) {
    ports[f.name] = await freePort();
    sections.push(
      `frontend ${f.name}_in`,
      `  bind 127.0.0.1:${ports[f.name]}`,
      `  default_backend ${f.name}_nodes`,
      `backend ${f.name}_nodes`,
      '  balance roundrobin',
      ...f.servers.map((s, i) => `  server node${i + 1} ${s.host}:${s.port} send-proxy-v2`),
    );
  }
  const config = ['global', '  log stderr format raw local0 warning', 'defaults', '  mode tcp', '  log global', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s', ...sections, ''].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, config);
  const child = spawn(binary, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await accepting(probe, child);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}: ${stderr}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    ports,
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}
