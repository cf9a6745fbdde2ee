/**
 * Protocol and cipher audit: runs testssl.sh (Debian package `testssl.sh`) against all six listeners of a `postern`
 * process in its default TLS configuration, and fails on any finding below OK; then sslscan (package `sslscan`), whose
 * report fails the audit on anything weaker than Postern's defaults promise (see `refs/sslscan-output.ts`: no CBC
 * suite, no finite-field or sub-128-bit group, no renegotiation, TLS 1.2+ only).
 *
 * `npm run audit:tls` (CI runs it when testssl is installed). The server gets what a production operator would give
 * it: a certificate from a CA (a throwaway one made here, passed to testssl with `--add-ca`), valid for 90 days, with
 * an OCSP responder (`openssl ocsp` on loopback) whose response Postern staples. What no loopback set-up can have is
 * listed in {@link EXPECTED} with the reason; everything else at LOW, MEDIUM, HIGH or CRITICAL fails the audit.
 * `AUDIT_ONLY=smtps,imap` audits a subset.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDevCertificates } from '../lib/core/dev-certificates.js';
import { spawnLogged, stopProcess } from './refs/processes.js';
import { sslscanFindings } from './refs/sslscan-output.js';

const POSTERN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const LISTENERS: ReadonlyArray<{ name: string; starttls?: string }> = [
  { name: 'smtp', starttls: 'smtp' },
  { name: 'smtps' },
  { name: 'pop3', starttls: 'pop3' },
  { name: 'pop3s' },
  { name: 'imap', starttls: 'imap' },
  { name: 'imaps' },
];
const DEFAULT_PORTS: Readonly<Record<string, number>> = { smtp: 3025, smtps: 3465, pop3: 3110, pop3s: 3995, imap: 3143, imaps: 3993 };

/** Findings a loopback audit cannot avoid, with why they say nothing about Postern. */
const EXPECTED: Readonly<Record<string, string>> = {
  DNS_CAArecord: 'no DNS for 127.0.0.1, so no CAA record can exist',
  engine_problem: "about the scanner's own OpenSSL build (GOST engine), not the server",
};
const FAILING = new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port offset under which all six default ports and the responder's port are free. */
async function freeOffset(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const offset = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = [...Object.values(DEFAULT_PORTS), 3080].map((p) => p + offset);
    if (ports.every((p) => p <= 65_535) && (await Promise.all(ports.map(isFree))).every(Boolean)) return offset;
  }
  throw new Error('no free port range found');
}

async function main(): Promise<number> {
  const probe = await run('testssl', ['--version']);
  if (probe.code !== 0 && !probe.stdout.includes('testssl')) {
    console.log('tls audit: skipped, testssl is not installed (apt-get install testssl.sh)');
    return process.env.CI ? 1 : 0;
  }
  const sslscan = (await run('sslscan', ['--version'])).code === 0;
  if (!sslscan) {
    console.log('tls audit: sslscan is not installed (apt-get install sslscan)');
    if (process.env.CI) return 1;
  }
  const only = process.env.AUDIT_ONLY?.split(',');
  const dir = await mkdtemp(join(tmpdir(), 'postern-tls-audit-'));
  let responder: ChildProcess | undefined;
  let postern: ChildProcess | undefined;
  try {
    const offset = await freeOffset();
    const ocspPort = 3080 + offset;
    const dev = await generateDevCertificates({ days: 90 });
    await writeFile(join(dir, 'ca.pem'), dev.ca.cert);
    await writeFile(join(dir, 'ca-key.pem'), dev.ca.key);
    await writeFile(join(dir, 'leaf.ext'), `subjectAltName=DNS:localhost,IP:127.0.0.1\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:${ocspPort}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
    const steps: string[][] = [
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'leaf.csr'), '-subj', '/CN=localhost'],
      ['x509', '-req', '-in', join(dir, 'leaf.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca-key.pem'), '-set_serial', '0x2001', '-days', '90', '-extfile', join(dir, 'leaf.ext'), '-out', join(dir, 'leaf.pem')],
    ];
    for (const args of steps) {
      const r = await run('openssl', args);
      if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
    }
    await writeFile(join(dir, 'chain.pem'), (await readFile(join(dir, 'leaf.pem'), 'utf8')) + dev.ca.cert);
    const expiry = new Date(Date.now() + 90 * 86_400_000).toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
    await writeFile(join(dir, 'index.txt'), `V\t${expiry}\t\t2001\tunknown\t/CN=localhost\n`);
    const ocspArgs = ['ocsp', '-index', join(dir, 'index.txt'), '-port', String(ocspPort), '-rsigner', join(dir, 'ca.pem'), '-rkey', join(dir, 'ca-key.pem'), '-CA', join(dir, 'ca.pem'), '-nmin', '60'];
    responder = await spawnLogged('openssl', ocspArgs, { logFile: join(dir, 'ocsp.log'), ready: /waiting for OCSP client connections/i, what: 'openssl ocsp' });
    const posternArgs = [POSTERN, '--port-offset', String(offset), '--cert', join(dir, 'chain.pem'), '--key', join(dir, 'key.pem'), '--log-level', 'warn'];
    postern = await spawnLogged(process.execPath, posternArgs, { logFile: join(dir, 'postern.log'), ready: /imaps ready/, what: 'postern' });

    let failures = 0;
    for (const { name, starttls } of LISTENERS.filter((l) => !only || only.includes(l.name))) {
      const port = DEFAULT_PORTS[name]! + offset;
      const json = join(dir, `${name}.json`);
      const started = Date.now();
      await run('testssl', ['--quiet', '--warnings', 'off', '--color', '0', '--add-ca', join(dir, 'ca.pem'), '--jsonfile', json, ...(starttls ? ['-t', starttls] : []), `127.0.0.1:${port}`]);
      const findings = JSON.parse(await readFile(json, 'utf8')) as Finding[];
      const bad = findings.filter((f) => FAILING.has(f.severity) && !(f.id in EXPECTED));
      const expected = findings.filter((f) => f.id in EXPECTED);
      const ok = findings.filter((f) => f.severity === 'OK').length;
      console.log(`${name.padEnd(6)} ${starttls ? 'STARTTLS' : 'implicit'}  ${bad.length === 0 ? 'PASS' : 'FAIL'}  ${ok} OK, ${bad.length} below OK, ${expected.length} expected  (${Math.round((Date.now() - started) / 1000)} s)`);
      for (const f of bad) console.log(`    ${f.severity} ${f.id}: ${f.finding}`);
      failures += bad.length;
      if (!sslscan) continue;
      const scan = await run('sslscan', ['--xml=-', '--no-colour', '--sni-name=localhost', ...(starttls ? [`--starttls-${starttls}`] : []), `127.0.0.1:${port}`]);
      const scanned = sslscanFindings(scan.stdout);
      console.log(`${name.padEnd(6)} ${starttls ? 'STARTTLS' : 'implicit'}  sslscan ${scanned.length === 0 ? 'PASS' : 'FAIL'}`);
      for (const f of scanned) console.log(`    ${f}`);
      failures += scanned.length;
    }
    for (const [id, why] of Object.entries(EXPECTED)) console.log(`  expected: ${id} (${why})`);
    return failures === 0 ? 0 : 1;
  } finally {
    await stopProcess(postern);
    await stopProcess(responder);
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
