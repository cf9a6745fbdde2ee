/**
 * The DER reader and writer behind OCSP (`lib/core/der.ts`, ITU-T X.690), at every length form and refusal (issue 16,
 * mutation testing; before this only the OCSP specs reached it). Oracles: encodings printed in X.690 and RFC 5280,
 * and certificates node:crypto made.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { children, decodeGeneralizedTime, DerError, DerTag, encode, encodeOid, encodeUnsignedInteger, expectNode, readNode } from '../../lib/core/der.js';
import { testCertificates } from '../support/certs.js';

const hex = (b: Buffer): string => b.toString('hex');
const bytes = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');

describe('core: DER reader and writer (der mutants)', () => {
  describe('readNode', () => {
    it('reads short and long-form lengths, at an offset, with raw and content', () => {
      const short = readNode(bytes('ff 04 02 ab cd ee'), 1);
      expect([short.tag, hex(short.raw), hex(short.content)]).to.deep.equal([0x04, '0402abcd', 'abcd']);
      const body = Buffer.alloc(200, 7);
      const long = readNode(Buffer.concat([bytes('04 81 c8'), body]));
      expect([long.content.length, long.raw.length]).to.deep.equal([200, 203]);
      const four = readNode(Buffer.concat([bytes('04 84 00 00 00 02'), bytes('0102')]));
      expect(hex(four.content)).to.equal('0102');
      const longEmpty = readNode(bytes('04 81 00'));
      expect([longEmpty.raw.length, longEmpty.content.length]).to.deep.equal([3, 0]);
      const empty = readNode(bytes('05 00'));
      expect([empty.tag, empty.content.length]).to.deep.equal([DerTag.NULL, 0]);
    });

    it('refuses truncated input, multi-byte tags and lengths it does not read', () => {
      const refusals: Array<[string, string]> = [
        ['', 'truncated DER'],
        ['04', 'truncated DER'],
        ['00 04 01', 'truncated DER'], // read at offset 2: one octet left
        ['04 03 01 02', 'truncated DER'],
        ['1f 01 00', 'multi-byte DER tags are not supported'],
        ['04 80', 'bad DER length'],
        ['04 85 00 00 00 00 01 00', 'bad DER length'],
        ['04 82 01', 'bad DER length'],
        ['04 82 00 03 01 02', 'truncated DER'],
      ];
      for (const [input, message] of refusals) {
        const offset = input === '00 04 01' ? 2 : 0;
        expect(() => readNode(bytes(input), offset), input).to.throw(DerError, message);
      }
      expect(new DerError('x').name).to.equal('DerError');
    });

    it('reads a certificate node:crypto parses: SEQUENCE of tbsCertificate, signatureAlgorithm, signatureValue (RFC 5280 §4.1)', async () => {
      const der = new X509Certificate((await testCertificates()).server.cert).raw;
      const cert = expectNode(der, DerTag.SEQUENCE, 'certificate');
      expect(cert.raw.length).to.equal(der.length);
      expect(children(cert).map((n) => n.tag)).to.deep.equal([DerTag.SEQUENCE, DerTag.SEQUENCE, DerTag.BIT_STRING]);
      expect(children(readNode(bytes('30 00')))).to.deep.equal([]);
      expect(() => children(readNode(bytes('30 03 02 05 00')))).to.throw(DerError, 'truncated DER');
    });

    it('expectNode names what it wanted and what it got', () => {
      expect(() => expectNode(bytes('02 01 00'), DerTag.SEQUENCE, 'response')).to.throw(DerError, 'response: expected tag 0x30, got 0x2');
    });
  });

  describe('writers', () => {
    it('encode uses one length octet below 128 and the long form from 128 (X.690 §8.1.3)', () => {
      expect(hex(encode(DerTag.NULL))).to.equal('0500');
      expect(hex(encode(DerTag.OCTET_STRING, Buffer.alloc(127)).subarray(0, 2))).to.equal('047f');
      expect(hex(encode(DerTag.OCTET_STRING, Buffer.alloc(128)).subarray(0, 3))).to.equal('048180');
      expect(hex(encode(DerTag.OCTET_STRING, Buffer.alloc(255)).subarray(0, 3))).to.equal('0481ff');
      expect(hex(encode(DerTag.OCTET_STRING, Buffer.alloc(256)).subarray(0, 4))).to.equal('04820100');
      expect(hex(encode(DerTag.OCTET_STRING, Buffer.alloc(65_536)).subarray(0, 5))).to.equal('0483010000');
      expect(hex(encode(DerTag.SEQUENCE, bytes('0500'), bytes('0201 01')))).to.equal('3005050002 0101'.replace(/ /g, ''));
      const big = encode(DerTag.OCTET_STRING, Buffer.alloc(300, 1));
      expect(readNode(big).content.equals(Buffer.alloc(300, 1))).to.equal(true);
    });

    it('encodeOid writes the first two arcs in one octet and base-128 for the rest (X.690 §8.19)', () => {
      expect(hex(encodeOid('2.5.4.3'))).to.equal('0603550403');
      expect(hex(encodeOid('1.3.6.1.5.5.7.48.1'))).to.equal('06082b06010505073001'); // id-pkix-ocsp
      expect(hex(encodeOid('1.2.840.113549.1.1.11'))).to.equal('06092a864886f70d01010b'); // sha256WithRSAEncryption
      expect(hex(encodeOid('1.3.14.3.2.26'))).to.equal('06052b0e03021a'); // SHA-1
      expect(hex(encodeOid('1.3.128.16383.16384'))).to.equal('06082b8100ff7f818000');
    });

    it('encodeOid writes a first subidentifier over 127 in base-128 too (X.690 §8.19.4: 2.999.3 is 06 03 88 37 03)', () => {
      expect(hex(encodeOid('2.999.3'))).to.equal('0603883703'); // the X.690 example
      expect(hex(encodeOid('2.47.1'))).to.equal('06027f01'); // 127: still one octet
      expect(hex(encodeOid('2.48'))).to.equal('06028100'); // 128: the first that needs two
    });

    it('encodeUnsignedInteger pads odd hex, drops redundant zero octets and keeps the value positive', () => {
      const cases: Array<[string, string]> = [
        ['00', '020100'],
        ['0000', '020100'],
        ['7f', '02017f'],
        ['80', '02020080'],
        ['0080', '02020080'],
        ['000080', '02020080'],
        ['000001', '020101'],
        ['abc', '02020abc'],
        ['0100', '02020100'],
        ['ff00', '020300ff00'],
        ['000100', '02020100'],
      ];
      for (const [input, want] of cases) expect(hex(encodeUnsignedInteger(input)), input).to.equal(want);
    });
  });

  describe('decodeGeneralizedTime', () => {
    it('reads whole and fractional seconds in UTC', () => {
      const node = (s: string): ReturnType<typeof readNode> => readNode(encode(DerTag.GENERALIZED_TIME, Buffer.from(s, 'latin1')));
      expect(decodeGeneralizedTime(node('20261130170502Z')).toISOString()).to.equal('2026-11-30T17:05:02.000Z');
      expect(decodeGeneralizedTime(node('19991231235959.123Z')).toISOString()).to.equal('1999-12-31T23:59:59.000Z');
    });

    it('refuses other tags and other spellings', () => {
      expect(() => decodeGeneralizedTime(readNode(encode(DerTag.OCTET_STRING, Buffer.from('20261130170502Z'))))).to.throw(DerError, 'expected a GeneralizedTime');
      for (const bad of ['20261130170502', '20261130170502+0100', 'x20261130170502Z', '2026113017050Z', '20261130170502.Z', '20261130170502Zx']) {
        expect(() => decodeGeneralizedTime(readNode(encode(DerTag.GENERALIZED_TIME, Buffer.from(bad)))), bad).to.throw(DerError, 'bad GeneralizedTime');
      }
    });
  });
});
