/**
 * A loopback OCSP responder for specs (RFC 6960 appendix A.1 over HTTP POST): node:http takes the request, `openssl
 * ocsp` signs the answer with the test CA from an index of issued serials. The request path chooses the behaviour, so
 * each certificate names its own in its AIA extension: `/fail…` answers HTTP 500, `/stale…` a response whose
 * nextUpdate is a day past (openssl's answer with that date rewritten and signed again: openssl takes no past
 * window), `/open…` one without nextUpdate ("newer information any time"), anything else a response valid for a day. Every request's
 * path is recorded in {@link requests}, which is how a spec sees which certificates a server asked about.
 */
import { execFile } from 'node:child_process';
import { sign } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PemPair } from '../../lib/core/dev-certificates.js';
import { DerTag, children, encode, readNode } from '../../lib/core/der.js';

/** Runs openssl; resolves its exit code (1 for any failure) and stderr. */
export function openssl(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { timeout: 15_000 }, (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }));
  });
}

/** `openssl ca` index date: YYMMDDHHMMSSZ. */
function indexDate(date: Date): string {
  return date.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

export class OcspResponder {
  /** Paths of the requests received, in order. */
  readonly requests: string[] = [];
  private readonly index = new Map<string, { name: string; revoked: boolean }>();
  private serial = 0x2000;
  private count = 0;

  private constructor(
    private readonly dir: string,
    private readonly server: http.Server,
    private readonly caKey: string,
  ) {}

  /** True when an `openssl` binary runs (specs are pending otherwise). */
  static async available(): Promise<boolean> {
    return (await openssl(['version'])).code === 0;
  }

  /** Starts a responder for certificates `ca` issues. */
  static async start(ca: PemPair): Promise<OcspResponder> {
    const dir = await mkdtemp(join(tmpdir(), 'postern-ocsp-responder-'));
    await Promise.all([writeFile(join(dir, 'ca.pem'), ca.cert), writeFile(join(dir, 'ca-key.pem'), ca.key)]);
    const server = http.createServer();
    const responder = new OcspResponder(dir, server, ca.key);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        responder.answer(req.url ?? '/', Buffer.concat(chunks)).then(
          (der) => {
            if (der === undefined) res.writeHead(500).end();
            else res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(der);
          },
          () => res.writeHead(500).end(),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return responder;
  }

  /** The responder URL for `path` (which chooses the behaviour). */
  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /**
   * A P-256 leaf for `name` signed by the CA, naming `this.url(path)` as its OCSP responder; `eku` is its
   * extendedKeyUsage (default serverAuth; `null`: no EKU extension). `revoked` lists it as revoked an hour ago in the
   * responder's index.
   */
  async issue(name: string, path: string, options: { eku?: string | null; revoked?: boolean } = {}): Promise<PemPair> {
    const serial = (this.serial++).toString(16).toUpperCase();
    const base = join(this.dir, `${name}-${serial}`);
    await writeFile(`${base}.ext`, `subjectAltName=DNS:${name}\nauthorityInfoAccess=OCSP;URI:${this.url(path)}\n${options.eku === null ? '' : `extendedKeyUsage=${options.eku ?? 'serverAuth'}\n`}`);
    let r = await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}-key.pem`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
    if (r.code !== 0) throw new Error(r.stderr);
    const ca = join(this.dir, 'ca.pem');
    r = await openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca, '-CAkey', join(this.dir, 'ca-key.pem'), '-set_serial', `0x${serial}`, '-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.pem`]);
    if (r.code !== 0) throw new Error(r.stderr);
    this.index.set(serial, { name, revoked: options.revoked === true });
    return { cert: await readFile(`${base}.pem`, 'utf8'), key: await readFile(`${base}-key.pem`, 'utf8') };
  }

  /** Stops the responder and removes its files. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    await rm(this.dir, { recursive: true, force: true });
  }

  private async answer(path: string, request: Buffer): Promise<Buffer | undefined> {
    this.requests.push(path);
    if (path.startsWith('/fail')) return undefined;
    const n = this.count++;
    const expiry = indexDate(new Date(Date.now() + 2 * 86_400_000));
    const revokedAt = indexDate(new Date(Date.now() - 3_600_000));
    const lines = [...this.index].map(([serial, e]) => `${e.revoked ? 'R' : 'V'}\t${expiry}\t${e.revoked ? revokedAt : ''}\t${serial}\tunknown\t/CN=${e.name}\n`);
    const [idx, req, resp] = [`${n}.idx`, `${n}.req`, `${n}.der`].map((f) => join(this.dir, f)) as [string, string, string];
    await Promise.all([writeFile(idx, lines.join('')), writeFile(req, request)]);
    const ca = join(this.dir, 'ca.pem');
    const r = await openssl(['ocsp', '-index', idx, '-CA', ca, '-rsigner', ca, '-rkey', join(this.dir, 'ca-key.pem'), '-reqin', req, '-respout', resp, ...(path.startsWith('/open') ? [] : ['-ndays', '1'])]);
    if (r.code !== 0) throw new Error(r.stderr);
    const der = await readFile(resp);
    return path.startsWith('/stale') ? this.backdated(der) : der;
  }

  /** `der` (a successful basic response with one nextUpdate a day after now) with that nextUpdate a day before now, signed again. */
  private backdated(der: Buffer): Buffer {
    const time = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z'); // GeneralizedTime
    const [, bytes] = children(readNode(der));
    const [oid, octets] = children(children(bytes!)[0]!);
    const [tbs, sigAlg, , certs] = children(readNode(octets!.content));
    const raw = Buffer.from(tbs!.raw);
    for (const delta of [86_400_000, 86_340_000]) {
      const at = raw.indexOf(time(new Date(Date.now() + delta)).slice(0, 12)); // to the minute (or the one before: signing took < 1 min)
      if (at < 0) continue;
      raw.write(time(new Date(Date.now() - 86_400_000)), at, 'latin1');
      const signature = encode(DerTag.BIT_STRING, Buffer.from([0]), sign('sha256', raw, this.caKey));
      const basic = encode(DerTag.SEQUENCE, raw, sigAlg!.raw, signature, ...(certs ? [certs.raw] : []));
      return encode(DerTag.SEQUENCE, encode(DerTag.ENUMERATED, Buffer.from([0])), encode(0xa0, encode(DerTag.SEQUENCE, oid!.raw, encode(DerTag.OCTET_STRING, basic))));
    }
    throw new Error('no nextUpdate a day from now in the response');
  }
}
