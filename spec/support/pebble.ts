/**
 * Runs Let's Encrypt's ACME test server, Pebble (Debian package `pebble`), on loopback for one spec file:
 * `pebble-challtestsrv` answers every DNS name with 127.0.0.1, and Pebble validates challenges against the ports
 * the test gives. Both are stopped by {@link PebbleServer.stop}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import net from 'node:net';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificates } from './certs.js';

export const PEBBLE = '/usr/bin/pebble';
export const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';

/** True when both Pebble binaries are installed. */
export async function hasPebble(): Promise<boolean> {
  try {
    await access(PEBBLE);
    await access(CHALLTESTSRV);
    return true;
  } catch {
    return false;
  }
}

export interface PebbleServer {
  /** The ACME directory URL. */
  readonly directoryUrl: string;
  /** PEM of the CA that signed Pebble's own HTTPS certificate (trust it for the directory). */
  readonly directoryCa: string;
  /** Pebble's issuing root for this run (PEM), from its management interface. */
  root(): Promise<string>;
  stop(): Promise<void>;
}

/** A free TCP (or UDP) port on 127.0.0.1. */
export async function freePort(udp = false): Promise<number> {
  if (udp) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const { port } = socket.address();
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    return port;
  }
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts challtestsrv and Pebble; validations of tls-alpn-01 go to `tlsPort`, http-01 to `httpPort`. */
export async function startPebble(ports: { tlsPort: number; httpPort?: number }): Promise<PebbleServer> {
  const certs = await testCertificates();
  const dir = await mkdtemp(join(tmpdir(), 'postern-pebble-'));
  const [listen, management, dns, challManagement] = await Promise.all([freePort(), freePort(), freePort(true), freePort()]);
  await writeFile(join(dir, 'cert.pem'), certs.server.cert);
  await writeFile(join(dir, 'key.pem'), certs.server.key);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${listen}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: join(dir, 'cert.pem'),
      privateKey: join(dir, 'key.pem'),
      httpPort: ports.httpPort ?? 5002,
      tlsPort: ports.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  await writeFile(join(dir, 'pebble.json'), JSON.stringify(config));
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => stopChild(child)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const dnsServer = spawn(
      CHALLTESTSRV,
      ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challManagement}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(dnsServer);
    await waitForOutput(dnsServer, /Starting management server|Answering A questions|DNS server/i, 'pebble-challtestsrv');
    const pebble = spawn(PEBBLE, ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dns}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0', PEBBLE_VA_ALWAYS_VALID: '0' },
    });
    children.push(pebble);
    await waitForOutput(pebble, /Listening on/, 'pebble');
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    directoryUrl: `https://127.0.0.1:${listen}/dir`,
    directoryCa: certs.ca.cert,
    root: () => get(`https://127.0.0.1:${management}/roots/0`, certs.ca.cert),
    stop,
  };
}

function waitForOutput(child: ChildProcess, pattern: RegExp, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error(`${name} did not start within 10 s: ${seen.slice(-500)}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (pattern.test(seen)) done();
    };
    const onExit = (code: number | null): void => done(new Error(`${name} exited with ${code}: ${seen.slice(-500)}`));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.stdout?.resume();
      child.stderr?.resume();
      if (err) reject(err);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function get(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}
