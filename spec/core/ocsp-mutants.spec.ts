/**
 * OCSP request and response handling (`lib/core/ocsp.ts`, RFC 6960) against responses `openssl ocsp` signs offline
 * from our own requests (issue 16, mutation testing): good, revoked and unknown, with and without nextUpdate, signed
 * by the issuer, by a delegated responder, by a delegate without the OCSP-signing usage and by a stranger's delegate;
 * refused response statuses and bodies; and the HTTP fetch (status, size cap, timeout) against a loopback server.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevCertificates } from '../../lib/core/dev-certificates.js';
import { DerTag, children, encode, encodeOid, readNode } from '../../lib/core/der.js';
import { buildOcspRequest, fetchOcspResponse, OcspError, ocspResponderUrl, parseOcspResponse } from '../../lib/core/ocsp.js';
import { testCertificates } from '../support/certs.js';

function run(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { timeout: 15_000 }, (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }));
  });
}

/** `openssl ca` index date: YYMMDDHHMMSSZ. */
function indexDate(date: Date): string {
  return date.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

describe('core: OCSP requests and responses (ocsp mutants)', function () {
  this.timeout(30_000);
  let certs: DevCertificates;
  let dir: string;
  let leaf: X509Certificate;
  let ca: X509Certificate;
  const responses = new Map<string, Buffer>();

  /** Signs a response to our request for `leaf` with openssl; `entry` is the index line's status (`V`, `R`) or none (unknown). */
  async function respond(name: string, entry: 'V' | 'R' | undefined, signer: 'ca' | 'delegate' | 'plain-delegate' | 'stranger', ndays = true, certsIn = true): Promise<void> {
    const expiry = indexDate(new Date(Date.now() + 2 * 86_400_000));
    const line =
      entry === undefined ? '' : `${entry}\t${expiry}\t${entry === 'R' ? indexDate(new Date(Date.now() - 3_600_000)) : ''}\t${leaf.serialNumber}\tunknown\t/CN=localhost\n`;
    await writeFile(join(dir, `${name}.idx`), line);
    const r = await run([
      'ocsp',
      '-index',
      join(dir, `${name}.idx`),
      '-CA',
      join(dir, 'ca.pem'),
      '-rsigner',
      join(dir, `${signer}.pem`),
      '-rkey',
      join(dir, `${signer}-key.pem`),
      '-reqin',
      join(dir, 'req.der'),
      '-respout',
      join(dir, `${name}.der`),
      ...(ndays ? ['-ndays', '1'] : []),
      ...(certsIn ? [] : ['-resp_no_certs']),
    ]);
    expect(r.code, r.stderr).to.equal(0);
    responses.set(name, await readFile(join(dir, `${name}.der`)));
  }

  async function issue(name: string, issuer: 'ca' | 'untrusted-ca', eku: string): Promise<void> {
    const key = join(dir, `${name}-key.pem`);
    let r = await run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`]);
    expect(r.code, r.stderr).to.equal(0);
    await writeFile(join(dir, `${name}.ext`), `extendedKeyUsage=${eku}\n`);
    r = await run(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${issuer}.pem`), '-CAkey', join(dir, `${issuer}-key.pem`), '-set_serial', '0x77', '-days', '2', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.pem`)]);
    expect(r.code, r.stderr).to.equal(0);
  }

  before(async function () {
    if ((await run(['version'])).code !== 0) this.skip(); // pending, never passed: install openssl (.ci/run does)
    certs = await testCertificates();
    dir = await mkdtemp(join(tmpdir(), 'postern-ocsp-unit-'));
    leaf = new X509Certificate(certs.server.cert);
    ca = new X509Certificate(certs.ca.cert);
    await Promise.all([
      writeFile(join(dir, 'ca.pem'), certs.ca.cert),
      writeFile(join(dir, 'ca-key.pem'), certs.ca.key),
      writeFile(join(dir, 'untrusted-ca.pem'), certs.untrustedCa.cert),
      writeFile(join(dir, 'untrusted-ca-key.pem'), certs.untrustedCa.key),
      writeFile(join(dir, 'req.der'), buildOcspRequest(leaf, ca)),
    ]);
    await Promise.all([issue('delegate', 'ca', 'OCSPSigning'), issue('plain-delegate', 'ca', 'serverAuth'), issue('stranger', 'untrusted-ca', 'OCSPSigning')]);
    await Promise.all([
      respond('good', 'V', 'ca'),
      respond('good-open', 'V', 'ca', false),
      respond('good-bare', 'V', 'ca', true, false),
      respond('revoked', 'R', 'ca'),
      respond('unknown', undefined, 'ca'),
      respond('delegated', 'V', 'delegate'),
      respond('plain-delegated', 'V', 'plain-delegate'),
      respond('stranger', 'V', 'stranger'),
    ]);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads good, revoked and unknown, with thisUpdate and nextUpdate, and keeps the DER', () => {
    const good = parseOcspResponse(responses.get('good')!, leaf, ca);
    expect(good.status).to.equal('good');
    expect(good.der).to.equal(responses.get('good'));
    expect(Math.abs(good.thisUpdate.getTime() - Date.now())).to.be.below(3_600_000);
    expect(good.nextUpdate!.getTime() - good.thisUpdate.getTime()).to.equal(86_400_000);
    expect(parseOcspResponse(responses.get('revoked')!, leaf, ca).status).to.equal('revoked');
    expect(parseOcspResponse(responses.get('unknown')!, leaf, ca).status).to.equal('unknown');
    expect(parseOcspResponse(responses.get('good-open')!, leaf, ca).nextUpdate).to.equal(undefined);
  });

  it('accepts a delegated responder the issuer made for OCSP signing, and no other delegate', () => {
    expect(parseOcspResponse(responses.get('delegated')!, leaf, ca).status).to.equal('good');
    expect(() => parseOcspResponse(responses.get('plain-delegated')!, leaf, ca)).to.throw(OcspError, 'responder certificate not valid for OCSP signing');
    expect(() => parseOcspResponse(responses.get('stranger')!, leaf, ca)).to.throw(OcspError, 'responder certificate not issued by the certificate issuer');
  });

  it('refuses a response about another certificate, or checked against another issuer', () => {
    const other = new X509Certificate(certs.client.cert);
    expect(() => parseOcspResponse(responses.get('good')!, other, ca)).to.throw(OcspError, 'the response is about another certificate');
    // Checked against another issuer: the embedded signer is not its, and without one the signature does not verify.
    const stranger = new X509Certificate(certs.untrustedCa.cert);
    expect(() => parseOcspResponse(responses.get('good')!, leaf, stranger)).to.throw(OcspError, 'responder certificate not issued by the certificate issuer');
    expect(() => parseOcspResponse(responses.get('good-bare')!, leaf, stranger)).to.throw(OcspError, 'bad response signature');
  });

  it('refuses a response whose signature does not verify (issuer-signed, no certificates embedded)', () => {
    expect(parseOcspResponse(responses.get('good-bare')!, leaf, ca).status).to.equal('good');
    const der = Buffer.from(responses.get('good-bare')!);
    der[der.length - 5] ^= 0x01; // inside the signature BIT STRING, the last field of BasicOCSPResponse without certs
    expect(() => parseOcspResponse(der, leaf, ca)).to.throw(OcspError, 'bad response signature');
    const tbsFlip = Buffer.from(responses.get('good-bare')!);
    const at = tbsFlip.indexOf(Buffer.from('20', 'latin1'), 40); // a digit of a GeneralizedTime in the signed data
    tbsFlip[at] = 0x31;
    expect(() => parseOcspResponse(tbsFlip, leaf, ca)).to.throw(OcspError, 'bad response signature');
  });

  it('names the responder status it refuses (RFC 6960 §4.2.1), and a body that is no response', () => {
    const status = (n: number): Buffer => encode(DerTag.SEQUENCE, encode(DerTag.ENUMERATED, Buffer.from([n])));
    const refusals: Array<[Buffer, string]> = [
      [status(1), 'responder answered malformedRequest'],
      [status(2), 'responder answered internalError'],
      [status(3), 'responder answered tryLater'],
      [status(5), 'responder answered sigRequired'],
      [status(6), 'responder answered unauthorized'],
      [status(9), 'responder answered status 9'],
      [encode(DerTag.SEQUENCE, encode(DerTag.INTEGER, Buffer.from([0]))), 'responder answered status -1'],
      [encode(DerTag.SEQUENCE), 'responder answered status -1'],
      [encode(DerTag.INTEGER, Buffer.from([0])), 'malformed response: OCSPResponse: expected tag 0x30, got 0x2'],
      [Buffer.from([0x30]), 'malformed response: truncated DER'],
    ];
    for (const [der, message] of refusals) expect(() => parseOcspResponse(der, leaf, ca), message).to.throw(OcspError, message);
    const otherType = encode(
      DerTag.SEQUENCE,
      encode(DerTag.ENUMERATED, Buffer.from([0])),
      encode(0xa0, encode(DerTag.SEQUENCE, encodeOid('1.3.6.1.5.5.7.48.1.2'), encode(DerTag.OCTET_STRING, encode(DerTag.SEQUENCE)))),
    );
    expect(() => parseOcspResponse(otherType, leaf, ca)).to.throw(OcspError, 'not a basic OCSP response');
    expect(new OcspError('x').name).to.equal('OcspError');
  });

  it('builds the request openssl reads as a SHA-1 CertID for our serial', async () => {
    const text = await new Promise<string>((resolve, reject) =>
      execFile('openssl', ['ocsp', '-reqin', join(dir, 'req.der'), '-req_text'], (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    expect(text).to.contain('Hash Algorithm: sha1');
    expect(text.replace(/\s/g, '')).to.contain(`SerialNumber:${leaf.serialNumber}`);
    expect(text).to.not.contain('Request Extensions'); // no nonce
  });

  it('builds for a v1 certificate (no version field) the very request openssl builds', async () => {
    let r = await run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'v1-key.pem'), '-out', join(dir, 'v1.csr'), '-subj', '/CN=v1.postern.test']);
    expect(r.code, r.stderr).to.equal(0);
    r = await run(['x509', '-req', '-in', join(dir, 'v1.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca-key.pem'), '-set_serial', '0x1234', '-days', '2', '-out', join(dir, 'v1.pem')]);
    expect(r.code, r.stderr).to.equal(0);
    const v1 = new X509Certificate(await readFile(join(dir, 'v1.pem')));
    r = await run(['ocsp', '-issuer', join(dir, 'ca.pem'), '-cert', join(dir, 'v1.pem'), '-no_nonce', '-reqout', join(dir, 'v1-req.der')]);
    expect(r.code, r.stderr).to.equal(0);
    expect(buildOcspRequest(v1, ca)).to.deep.equal(await readFile(join(dir, 'v1-req.der')));
  });

  it('names the BasicOCSPResponse that is no SEQUENCE, and a signature algorithm it does not know', () => {
    const basicOid = encodeOid('1.3.6.1.5.5.7.48.1.1');
    const wrap = (basic: Buffer): Buffer =>
      encode(DerTag.SEQUENCE, encode(DerTag.ENUMERATED, Buffer.from([0])), encode(0xa0, encode(DerTag.SEQUENCE, basicOid, encode(DerTag.OCTET_STRING, basic))));
    expect(() => parseOcspResponse(wrap(encode(DerTag.INTEGER, Buffer.from([1]))), leaf, ca)).to.throw(OcspError, 'malformed response: BasicOCSPResponse: expected tag 0x30, got 0x2');
    // The issuer-signed good response with its algorithm made ecdsa-with-SHA224, which the table leaves out.
    const [, bytes] = children(readNode(responses.get('good-bare')!));
    const [, octets] = children(children(bytes!)[0]!);
    const [tbs, , signature] = children(readNode(octets!.content));
    const sha224 = encode(DerTag.SEQUENCE, encodeOid('1.2.840.10045.4.3.1'));
    expect(() => parseOcspResponse(wrap(encode(DerTag.SEQUENCE, tbs!.raw, sha224, signature!.raw)), leaf, ca)).to.throw(OcspError, 'unsupported signature algorithm');
  });

  it('finds the responder URL in the AIA extension, and none in a certificate without one', () => {
    expect(ocspResponderUrl(leaf)).to.equal(undefined);
    const withAia = { infoAccess: 'CA Issuers - URI:http://ca.example/ca.der\nOCSP - URI:http://ocsp.example/\n' } as X509Certificate;
    expect(ocspResponderUrl(withAia)).to.equal('http://ocsp.example/');
  });

  describe('fetchOcspResponse', () => {
    let server: http.Server;
    let url: string;
    let behaviour: (req: http.IncomingMessage, res: http.ServerResponse) => void;
    const seen: Array<{ method?: string; type?: string; accept?: string; body: Buffer }> = [];

    before(async () => {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen.push({ method: req.method, type: req.headers['content-type'], accept: req.headers.accept, body: Buffer.concat(chunks) });
          behaviour(req, res);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
    });

    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it('POSTs the request as application/ocsp-request and resolves a 200 body', async () => {
      behaviour = (_req, res) => res.end(Buffer.from('response bytes'));
      const body = await fetchOcspResponse(url, Buffer.from('request bytes'));
      expect(body.toString()).to.equal('response bytes');
      expect(seen.at(-1)).to.deep.equal({ method: 'POST', type: 'application/ocsp-request', accept: 'application/ocsp-response', body: Buffer.from('request bytes') });
    });

    it('rejects a response cut off mid-body (the response stream error)', async () => {
      behaviour = (_req, res) => {
        res.writeHead(200, { 'content-length': '1000' });
        res.write(Buffer.alloc(10), () => res.destroy());
      };
      const err = await fetchOcspResponse(url, Buffer.from('r')).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect([err?.message, err?.code]).to.deep.equal(['aborted', 'ECONNRESET']);
    });

    it('speaks TLS to an https: responder', async () => {
      const tlsServer = https.createServer({ cert: certs.server.cert, key: certs.server.key }, (_req, res) => res.end('x'));
      await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
      try {
        const err = await fetchOcspResponse(`https://127.0.0.1:${(tlsServer.address() as net.AddressInfo).port}/`, Buffer.from('r')).then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e,
        );
        // Our dev CA is not among Node's roots: the TLS handshake itself is what fails.
        expect(err?.code).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      } finally {
        tlsServer.closeAllConnections();
        await new Promise((resolve) => tlsServer.close(resolve));
      }
    });

    it('rejects another HTTP status, a body over 256 KiB, and a responder that does not answer in time', async () => {
      behaviour = (_req, res) => {
        res.statusCode = 503;
        res.end('busy');
      };
      await fetchOcspResponse(url, Buffer.from('r')).then(
        () => expect.fail('resolved'),
        (e: Error) => expect(e.message).to.equal('OCSP responder answered HTTP 503'),
      );
      behaviour = (_req, res) => res.end(Buffer.alloc(256 * 1024 + 1));
      await fetchOcspResponse(url, Buffer.from('r')).then(
        () => expect.fail('resolved'),
        (e: Error) => expect(e.message).to.equal('OCSP response too large'),
      );
      behaviour = (_req, res) => res.end(Buffer.alloc(256 * 1024));
      expect((await fetchOcspResponse(url, Buffer.from('r'))).length).to.equal(256 * 1024);
      behaviour = () => undefined; // never answers
      await fetchOcspResponse(url, Buffer.from('r'), 100).then(
        () => expect.fail('resolved'),
        (e: Error) => expect(e.message).to.equal('OCSP responder did not answer within 100 ms'),
      );
    });
  });
});
