/**
 * PKCS#12 (RFC 7292) packing of a PEM pair ({@link toPkcs12}) without an openssl binary, on `der.ts`'s DER
 * encoders. `dev-certificates.ts` re-exports {@link toPkcs12}; its `writeDevCertificates` writes `server.pfx`
 * with it.
 */
import { createHash, createHmac, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { DerTag, encode, encodeOid, encodeUnsignedInteger } from './der.js';
import type { PemPair } from './dev-certificates.js';

/**
 * Packs a PEM pair into a PKCS#12 (RFC 7292) blob that Node's `tls` loads with
 * `{ pfx, passphrase }`, without an openssl binary. The key is a PBES2 shrouded key bag
 * (PBKDF2-HMAC-SHA256, AES-256-CBC, exported by node:crypto); the certificate bag is not
 * encrypted; integrity is an HMAC-SHA256 MAC (RFC 7292 §4). Throws if the key does not parse.
 */
export function toPkcs12(pair: PemPair, passphrase: string): Buffer {
  const certDer = new X509Certificate(pair.cert).raw;
  // RFC 2985 §5.5.3 localKeyId ties the key bag to its certificate bag.
  const attrs = set(seq(oid('1.2.840.113549.1.9.21'), set(octets(createHash('sha1').update(certDer).digest()))));
  const certBag = seq(oid(P12_CERT_BAG), ctx0(seq(oid(X509_CERTIFICATE), ctx0(octets(certDer)))), attrs);
  const shrouded = createPrivateKey(pair.key).export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase });
  const keyBag = seq(oid(P12_SHROUDED_KEY_BAG), ctx0(shrouded), attrs);
  const authSafe = seq(pkcs7Data(seq(certBag)), pkcs7Data(seq(keyBag)));
  const salt = randomBytes(16);
  const mac = createHmac('sha256', pkcs12MacKey(passphrase, salt, P12_MAC_ITERATIONS)).update(authSafe).digest();
  const macData = seq(seq(seq(oid(SHA256), Buffer.from([0x05, 0x00])), octets(mac)), octets(salt), integer(P12_MAC_ITERATIONS));
  return seq(integer(3), pkcs7Data(authSafe), macData); // RFC 7292 §4: PFX version 3
}

const P12_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const P12_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const PKCS7_DATA = '1.2.840.113549.1.7.1';
const SHA256 = '2.16.840.1.101.3.4.2.1';
/** OpenSSL's default PKCS12_DEFAULT_ITER. */
const P12_MAC_ITERATIONS = 2048;

/**
 * RFC 7292 Appendix B.2 key derivation with SHA-256 (u = 32, v = 64) and ID 3 (MAC key),
 * producing one hash-length key, so the B/I block update step is never needed.
 */
function pkcs12MacKey(passphrase: string, salt: Buffer, iterations: number): Buffer {
  const v = 64;
  const password = Buffer.concat([Buffer.from(passphrase, 'utf16le').swap16(), Buffer.alloc(2)]); // BMPString + NUL
  const repeat = (b: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(b.length / v));
    for (let i = 0; i < out.length; i++) out[i] = b[i % b.length];
    return out;
  };
  let a = Buffer.concat([Buffer.alloc(v, 3), repeat(salt), repeat(password)]);
  for (let i = 0; i < iterations; i++) a = createHash('sha256').update(a).digest();
  return a;
}

/** The few DER (X.690 §8) types PKCS#12 needs, on der.ts's encoders. */
const seq = (...parts: Buffer[]): Buffer => encode(DerTag.SEQUENCE, ...parts);
const set = (...parts: Buffer[]): Buffer => encode(DerTag.SET, ...parts);
const octets = (b: Buffer): Buffer => encode(DerTag.OCTET_STRING, b);
const ctx0 = (...parts: Buffer[]): Buffer => encode(0xa0, ...parts);
const pkcs7Data = (content: Buffer): Buffer => seq(oid(PKCS7_DATA), ctx0(octets(content)));
const integer = (value: number): Buffer => encodeUnsignedInteger(value.toString(16));
const oid = encodeOid;
