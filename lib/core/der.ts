/**
 * The little DER (ITU-T X.690) that OCSP needs: reading TLVs out of certificates and responses, and writing the
 * few SEQUENCE / OCTET STRING / INTEGER / OID values of a request. Not a general ASN.1 library.
 */

/** One decoded TLV: its tag byte, the whole encoding, and the content octets. */
export interface DerNode {
  readonly tag: number;
  /** The full encoding (tag, length and content). */
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** Universal and context tags used here. */
export const DerTag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  SET: 0x31,
  GENERALIZED_TIME: 0x18,
} as const;

/** Thrown for input that is not the DER we expect (truncated, long-form lengths over 4 octets, wrong tags). */
export class DerError extends Error {
  override readonly name = 'DerError';
}

/** Reads the TLV at `offset`. @throws DerError */
export function readNode(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let length = buf[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || offset + 2 + count > buf.length) throw new DerError('bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[offset + 2 + i]!;
    header += count;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new DerError('truncated DER');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** The TLVs inside a constructed node (SEQUENCE, SET, explicit context tags). @throws DerError */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let offset = 0;
  while (offset < node.content.length) {
    const child = readNode(node.content, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

/** Reads the single TLV that `buf` holds, checking its tag. @throws DerError */
export function expectNode(buf: Buffer, tag: number, what: string): DerNode {
  const node = readNode(buf);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

/** Encodes a TLV. */
export function encode(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

/** An OBJECT IDENTIFIER in dotted form (X.690 §8.19). */
export function encodeOid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [];
  // X.690 §8.19.4: the first two arcs form one subidentifier (40 × first + second), base-128 like the rest, so
  // `2.999` (second arc ≥ 48 under `2`) takes two octets.
  for (const part of [parts[0]! * 40 + parts[1]!, ...parts.slice(2)]) {
    const chunk: number[] = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return encode(DerTag.OID, Buffer.from(bytes));
}

/** A non-negative INTEGER from big-endian hex (a certificate serial number). */
export function encodeUnsignedInteger(hex: string): Buffer {
  let bytes = Buffer.from(hex.length % 2 === 1 ? '0' + hex : hex, 'hex');
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1]! & 0x80) === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return encode(DerTag.INTEGER, bytes);
}

/** A GeneralizedTime (`YYYYMMDDHHMMSS[.f]Z`) as a Date. @throws DerError */
export function decodeGeneralizedTime(node: DerNode): Date {
  if (node.tag !== DerTag.GENERALIZED_TIME) throw new DerError('expected a GeneralizedTime');
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(node.content.toString('latin1'));
  if (!m) throw new DerError('bad GeneralizedTime');
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
