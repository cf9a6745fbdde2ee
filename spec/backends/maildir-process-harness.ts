import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { startPostern, type PosternProcess } from '../cli/cli-process.js';

/** The user every process on the shared root serves. */
export const ALICE = { login: 'alice', password: 'secret', address: 'alice@example.test' };

/** Writes the test server certificate and key into `dir`; resolves the `--cert/--key` arguments. */
export async function tlsArgs(dir: string, certs: DevCertificates): Promise<string[]> {
  await writeFile(path.join(dir, 'server.pem'), certs.server.cert);
  await writeFile(path.join(dir, 'server-key.pem'), certs.server.key);
  return ['--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server-key.pem')];
}

/**
 * Starts `postern --store maildir:<root>` with SMTP, IMAPS and POP3S on port 0 and alice; resolves once all three
 * listen. `extra` arguments go last (e.g. more `--user` flags).
 */
export async function startOnRoot(root: string, tls: string[], extra: string[] = []): Promise<PosternProcess> {
  const ports = ['smtp', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps'].flatMap((n) => [`--${n}-port`, '0']);
  const p = startPostern([
    ...ports,
    '--only',
    'smtp,imaps,pop3s',
    ...tls,
    '--user',
    `${ALICE.login}:${ALICE.password}@example.test`,
    '--store',
    `maildir:${root}`,
    '--log-level',
    'error',
    ...extra,
  ]);
  await p.ready(3);
  return p;
}

/** An SMTP transport with STARTTLS (pinned test CA) to one process. The caller closes it. */
export function smtpTo(port: number, certs: DevCertificates, pool = false): Transporter {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    tls: { ca: certs.ca.cert, servername: 'localhost' },
    ...(pool ? { pool: true, maxConnections: 4 } : {}),
  });
}

/** Sends one small message with a unique subject to alice. */
export async function sendTo(transport: Transporter, subject: string): Promise<void> {
  await transport.sendMail({ from: 'bob@remote.test', to: ALICE.address, subject, text: `body of ${subject}\n` });
}
