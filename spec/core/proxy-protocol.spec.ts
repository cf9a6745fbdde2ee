import { expect } from 'chai';
import {
  formatProxyV1,
  formatProxyV2,
  parseProxyHeader,
  PROXY_V1_MAX_BYTES,
  PROXY_V2_MAX_BYTES,
  PROXY_V2_SIGNATURE,
  ProxyConfigError,
  ProxyTrust,
  type ProxyParseResult,
} from '../../lib/core/proxy-protocol.js';

const src = { address: '192.0.2.7', port: 40001 };
const dst = { address: '198.51.100.1', port: 25 };

function v2(verCmd: number, famProto: number, body: Buffer): Buffer {
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, famProto, body.length >> 8, body.length & 0xff]), body]);
}

function refusal(r: ProxyParseResult): string {
  return r.state === 'error' ? r.reason : r.state;
}

describe('core: PROXY protocol parser (haproxy proxy-protocol.txt)', () => {
  describe('v1', () => {
    it('parses TCP4 and keeps the bytes after the CRLF for the protocol', () => {
      const buf = Buffer.concat([formatProxyV1(src, dst), Buffer.from('EHLO x\r\n')]);
      const r = parseProxyHeader(buf);
      expect(r.state).to.equal('done');
      if (r.state !== 'done') return;
      expect(r.header).to.deep.equal({ version: 1, command: 'proxy', source: src, destination: dst, tlvs: [] });
      expect(buf.subarray(r.length).toString()).to.equal('EHLO x\r\n');
    });

    it('parses TCP6', () => {
      const r = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::5 ::1 65535 993\r\n'));
      expect(r.state === 'done' && r.header.source).to.deep.equal({ address: '2001:db8::5', port: 65535 });
    });

    it('treats UNKNOWN as "use the real peer"', () => {
      const r = parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'));
      expect(r.state === 'done' && r.header.command).to.equal('local');
    });

    it('is incomplete until the CRLF, byte by byte', () => {
      const line = formatProxyV1(src, dst);
      for (let i = 1; i < line.length; i++) expect(parseProxyHeader(line.subarray(0, i)).state, `at ${i}`).to.equal('incomplete');
      expect(parseProxyHeader(line).state).to.equal('done');
    });

    const malformed: Array<[string, string]> = [
      ['PROXY TCP4 192.0.2.7 198.51.100.1 40001\r\n', 'missing port'],
      ['PROXY TCP4 192.0.2.7  198.51.100.1 40001 25\r\n', 'double space'],
      ['PROXY TCP5 192.0.2.7 198.51.100.1 40001 25\r\n', 'unknown protocol'],
      ['PROXY TCP4 2001:db8::1 198.51.100.1 40001 25\r\n', 'IPv6 address under TCP4'],
      ['PROXY TCP6 192.0.2.7 198.51.100.1 40001 25\r\n', 'IPv4 address under TCP6'],
      ['PROXY TCP4 192.0.2.300 198.51.100.1 40001 25\r\n', 'octet over 255'],
      ['PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n', 'port over 65535'],
      ['PROXY TCP4 192.0.2.7 198.51.100.1 040001 25\r\n', 'leading zero'],
      ['PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n', 'negative port'],
      ['PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\n', 'bare LF'],
      ['proxy TCP4 192.0.2.7 198.51.100.1 40001 25\r\n', 'lower-case signature'],
      ['EHLO client.example\r\n', 'no header at all'],
    ];
    for (const [line, why] of malformed) {
      it(`refuses a malformed line (${why}) as malformed`, () => {
        expect(refusal(parseProxyHeader(Buffer.from(line)))).to.equal('malformed');
      });
    }

    it(`refuses a line that reaches ${PROXY_V1_MAX_BYTES} bytes without CRLF as too-long`, () => {
      const r = parseProxyHeader(Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(PROXY_V1_MAX_BYTES)));
      expect(refusal(r)).to.equal('too-long');
    });

    it('accepts a line of exactly the maximum length', () => {
      const line = 'PROXY UNKNOWN ' + 'x'.repeat(PROXY_V1_MAX_BYTES - 'PROXY UNKNOWN '.length - 2) + '\r\n';
      expect(line.length).to.equal(PROXY_V1_MAX_BYTES);
      expect(parseProxyHeader(Buffer.from(line)).state).to.equal('done');
    });
  });

  describe('v2', () => {
    it('parses PROXY over TCP/IPv4 with TLVs and leaves the rest', () => {
      const tlv = { type: 0x02, value: Buffer.from('mail.example') }; // PP2_TYPE_AUTHORITY
      const buf = Buffer.concat([formatProxyV2(src, dst, [tlv]), Buffer.from([0x16, 0x03, 0x01])]);
      const r = parseProxyHeader(buf);
      expect(r.state).to.equal('done');
      if (r.state !== 'done') return;
      expect(r.header).to.deep.equal({ version: 2, command: 'proxy', source: src, destination: dst, tlvs: [tlv] });
      expect([...buf.subarray(r.length)]).to.deep.equal([0x16, 0x03, 0x01]);
    });

    it('parses PROXY over TCP/IPv6 into canonical text', () => {
      const r = parseProxyHeader(formatProxyV2({ address: '2001:db8:0:0:0:0:0:5', port: 1 }, { address: '::1', port: 2 }));
      expect(r.state === 'done' && r.header.source).to.deep.equal({ address: '2001:db8::5', port: 1 });
      expect(r.state === 'done' && r.header.destination).to.deep.equal({ address: '::1', port: 2 });
    });

    it('LOCAL means "use the real peer", whatever the address block says', () => {
      expect(parseProxyHeader(formatProxyV2())).to.deep.include({ state: 'done', length: 16 });
      const r = parseProxyHeader(v2(0x20, 0x11, Buffer.alloc(12, 1)));
      expect(r.state === 'done' && r.header.command).to.equal('local');
    });

    it('PROXY with AF_UNSPEC means "use the real peer"', () => {
      const r = parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0)));
      expect(r.state === 'done' && r.header.command).to.equal('local');
    });

    it('is incomplete until the announced length has arrived', () => {
      const h = formatProxyV2(src, dst);
      for (let i = 1; i < h.length; i++) expect(parseProxyHeader(h.subarray(0, i)).state, `at ${i}`).to.equal('incomplete');
    });

    const cases: Array<[string, Buffer, string]> = [
      ['version 1 in the binary header', v2(0x11, 0x11, Buffer.alloc(12)), 'malformed'],
      ['command 2', v2(0x22, 0x11, Buffer.alloc(12)), 'malformed'],
      ['an IPv4 block of 11 bytes', v2(0x21, 0x11, Buffer.alloc(11)), 'malformed'],
      ['an IPv6 block of 35 bytes', v2(0x21, 0x21, Buffer.alloc(35)), 'malformed'],
      ['a TLV longer than the header', v2(0x21, 0x11, Buffer.concat([Buffer.alloc(12), Buffer.from([0x02, 0x00, 0x09, 0x61])])), 'malformed'],
      ['a truncated TLV type/length', v2(0x21, 0x11, Buffer.concat([Buffer.alloc(12), Buffer.from([0x02, 0x00])])), 'malformed'],
      ['DGRAM transport', v2(0x21, 0x12, Buffer.alloc(12)), 'unsupported'],
      ['AF_UNIX', v2(0x21, 0x31, Buffer.alloc(216)), 'unsupported'],
      ['a damaged signature', Buffer.concat([Buffer.from('\r\n\r\n\0\r\nQUIT\r'), Buffer.alloc(8)]), 'malformed'],
    ];
    for (const [why, buf, reason] of cases) {
      it(`refuses ${why} as ${reason}`, () => {
        expect(refusal(parseProxyHeader(buf))).to.equal(reason);
      });
    }

    it(`refuses an announced length over ${PROXY_V2_MAX_BYTES} bytes before the body arrives`, () => {
      const head = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
      expect(refusal(parseProxyHeader(head))).to.equal('too-long');
    });
  });

  describe('ProxyTrust', () => {
    it('matches CIDR blocks and single addresses, IPv4-mapped peers as IPv4', () => {
      const t = new ProxyTrust(['127.0.0.0/8', '10.1.2.3', '2001:db8::/32']);
      expect(t.isTrusted('127.0.0.1')).to.equal(true);
      expect(t.isTrusted('::ffff:127.0.0.9')).to.equal(true);
      expect(t.isTrusted('10.1.2.3')).to.equal(true);
      expect(t.isTrusted('10.1.2.4')).to.equal(false);
      expect(t.isTrusted('2001:db8:1::1')).to.equal(true);
      expect(t.isTrusted('::1')).to.equal(false);
      expect(t.isTrusted(undefined)).to.equal(false);
    });

    it('refuses an empty list and blocks that are not CIDR', () => {
      expect(() => new ProxyTrust([])).to.throw(ProxyConfigError, /at least one trusted proxy/);
      for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::1/129', '10.0.0.0/x']) {
        expect(() => new ProxyTrust([bad]), bad).to.throw(ProxyConfigError, /is not a CIDR block/);
      }
    });
  });
});
