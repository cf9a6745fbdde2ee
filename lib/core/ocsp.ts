import { X509Certificate, createHash, verify } from 'node:crypto';
import { DerError, DerTag, children, decodeGeneralizedTime, encode, encodeOid, encodeUnsignedInteger, expectNode, readNode, type DerNode } from './der.js';

/** OCSP (RFC 6960) for stapling: the request a server sends about its own certificate, and the checks on the answer. */

/** Certificate status in a response (RFC 6960 §2.2). */
export type OcspCertStatus = 'good' | 'revoked' | 'unknown';

/** What Postern needs from an OCSP response about one certificate. */
export interface OcspStatus {
  readonly status: OcspCertStatus;
  readonly thisUpdate: Date;
  /** When newer information will be available; absent means "any time" (RFC 6960 §4.2.2.1). */
  readonly nextUpdate?: Date;
  /** The whole DER response, as stapled. */
  readonly der: Buffer;
}

/** Thrown for a response that is not usable: not `successful`, malformed, about another certificate, or badly signed. */
export class OcspError extends Error {
  override readonly name = 'OcspError';
}

const SHA1 = '1.3.14.3.2.26';
const OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
/** RFC 6960 §4.2.1 responseStatus values other than successful(0). */
const RESPONSE_STATUS = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(unused)', 'sigRequired', 'unauthorized'];
/** Signature algorithm OIDs and the digest node:crypto must use. */
const SIGNATURE_HASH: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** The OCSP responder URL of a certificate's Authority Information Access extension (RFC 5280 §4.2.2.1), if any. */
export function ocspResponderUrl(cert: X509Certificate): string | undefined {
  const match = /OCSP - URI:(\S+)/.exec(cert.infoAccess ?? '');
  return match?.[1];
}

/** The fields of a certificate that a CertID is made of. */
function tbsParts(cert: X509Certificate): { issuer: DerNode; spkiKeyBits: Buffer } {
  const tbs = children(children(readNode(cert.raw))[0]!);
  const base = tbs[0]!.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version is optional
  const spki = children(tbs[base + 5]!);
  const bits = spki[1]!;
  if (bits.tag !== DerTag.BIT_STRING) throw new DerError('subjectPublicKeyInfo without a BIT STRING');
  return { issuer: tbs[base + 2]!, spkiKeyBits: bits.content.subarray(1) };
}

/** CertID (RFC 6960 §4.1.1) of `leaf`, with SHA-1 as every responder accepts it. */
function certId(leaf: X509Certificate, issuer: X509Certificate): Buffer {
  const sha1 = (data: Buffer): Buffer => createHash('sha1').update(data).digest();
  return encode(
    DerTag.SEQUENCE,
    encode(DerTag.SEQUENCE, encodeOid(SHA1), encode(DerTag.NULL)),
    encode(DerTag.OCTET_STRING, sha1(tbsParts(leaf).issuer.raw)),
    encode(DerTag.OCTET_STRING, sha1(tbsParts(issuer).spkiKeyBits)),
    encodeUnsignedInteger(leaf.serialNumber),
  );
}

/** An OCSPRequest (RFC 6960 §4.1) for one certificate, unsigned and without a nonce (responders cache those). */
export function buildOcspRequest(leaf: X509Certificate, issuer: X509Certificate): Buffer {
  const request = encode(DerTag.SEQUENCE, certId(leaf, issuer));
  return encode(DerTag.SEQUENCE, encode(DerTag.SEQUENCE, encode(DerTag.SEQUENCE, request)));
}

/**
 * Checks a DER OCSPResponse about `leaf`: successful, a basic response, signed by `issuer` or by a responder
 * certificate that `issuer` issued for OCSP signing (RFC 6960 §4.2.2.2), with a single response for this very
 * certificate. Returns its status and validity window.
 * @throws OcspError naming what is wrong.
 */
export function parseOcspResponse(der: Buffer, leaf: X509Certificate, issuer: X509Certificate): OcspStatus {
  try {
    const top = children(expectNode(der, DerTag.SEQUENCE, 'OCSPResponse'));
    const statusCode = top[0]?.tag === DerTag.ENUMERATED ? top[0].content[0]! : -1;
    if (statusCode !== 0) throw new OcspError(`responder answered ${RESPONSE_STATUS[statusCode] ?? `status ${statusCode}`}`);
    const bytes = children(children(top[1]!)[0]!);
    if (oidOf(bytes[0]!) !== OCSP_BASIC) throw new OcspError('not a basic OCSP response');
    const basic = children(expectNode(bytes[1]!.content, DerTag.SEQUENCE, 'BasicOCSPResponse'));
    const [tbs, sigAlg, signature, certs] = basic;
    verifySignature(tbs!, sigAlg!, signature!, certs, issuer);
    const data = children(tbs!);
    const base = data[0]!.tag === 0xa0 ? 1 : 0;
    const responses = children(data[base + 2]!);
    const wanted = certId(leaf, issuer);
    for (const single of responses) {
      const fields = children(single);
      if (!sameCertId(fields[0]!, wanted)) continue;
      const statusTag = fields[1]!.tag;
      const status: OcspCertStatus = statusTag === 0x80 ? 'good' : statusTag === 0xa1 ? 'revoked' : 'unknown';
      const thisUpdate = decodeGeneralizedTime(fields[2]!);
      const next = fields.slice(3).find((f) => f.tag === 0xa0);
      const nextUpdate = next ? decodeGeneralizedTime(children(next)[0]!) : undefined;
      return { status, thisUpdate, nextUpdate, der };
    }
    throw new OcspError('the response is about another certificate');
  } catch (err) {
    if (err instanceof DerError) throw new OcspError(`malformed response: ${err.message}`);
    throw err;
  }
}

function oidOf(node: DerNode): string {
  const bytes = node.content;
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/** CertIDs match on the key hash and serial (the name hash is equal whenever those are; RFC 6960 §4.1.1). */
function sameCertId(node: DerNode, wanted: Buffer): boolean {
  const a = children(node);
  const b = children(readNode(wanted));
  return a[2]!.content.equals(b[2]!.content) && a[3]!.content.equals(b[3]!.content) && a[1]!.content.equals(b[1]!.content);
}

function verifySignature(tbs: DerNode, sigAlg: DerNode, signature: DerNode, certs: DerNode | undefined, issuer: X509Certificate): void {
  const hash = SIGNATURE_HASH[oidOf(children(sigAlg)[0]!)];
  if (hash === undefined) throw new OcspError('unsupported signature algorithm');
  let signer = issuer;
  const embedded = certs ? children(children(certs)[0]!) : [];
  if (embedded.length > 0) {
    // A delegated responder (RFC 6960 §4.2.2.2): issued by our issuer for OCSP signing only.
    const delegate = new X509Certificate(embedded[0]!.raw);
    if (!delegate.verify(issuer.publicKey)) throw new OcspError('responder certificate not issued by the certificate issuer');
    if (delegate.fingerprint256 !== issuer.fingerprint256 && !(delegate.keyUsage ?? []).includes(OCSP_SIGNING)) {
      throw new OcspError('responder certificate not valid for OCSP signing');
    }
    signer = delegate;
  }
  const sig = signature.content.subarray(1);
  if (!verify(hash, tbs.raw, signer.publicKey, sig)) throw new OcspError('bad response signature');
}

/**
 * POSTs `request` to an OCSP responder (RFC 6960 appendix A.1) and resolves the DER response.
 * @throws Error on network failure, a non-200 status or a timeout.
 */
export async function fetchOcspResponse(url: string, request: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  // node:http(s) load with the first fetch, not at `import 'postern'`.
  const client = url.startsWith('https:') ? (await import('node:https')).default : (await import('node:http')).default;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/ocsp-request', 'content-length': request.length, accept: 'application/ocsp-response' }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          // An OCSP response is a few KiB; anything near this is not one.
          if (size > 256 * 1024) req.destroy(new Error('OCSP response too large'));
          else chunks.push(chunk);
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`OCSP responder answered HTTP ${res.statusCode}`))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`OCSP responder did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(request);
  });
}
