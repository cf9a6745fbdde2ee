/**
 * The PROXY header parser's exact refusals (reason and the detail that goes into the warn line), partial
 * signatures, the serialisers for IPv6 forms and TCP6, and trust blocks at their edges (issue 16: the main spec
 * checks reasons only, and round-trips one IPv6 form).
 */
import { expect } from 'chai';
import {
  formatProxyV1,
  formatProxyV2,
  parseProxyHeader,
  PROXY_V2_SIGNATURE,
  ProxyTrust,
  type ProxyParseResult,
} from '../../lib/core/proxy-protocol.js';

function v2(verCmd: number, famProto: number, body: Buffer): Buffer {
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, famProto, body.length >> 8, body.length & 0xff]), body]);
}

function refusal(r: ProxyParseResult): string {
  return r.state === 'error' ? `${r.reason}: ${r.detail}` : r.state;
}

describe('core: PROXY header refusals, exactly', () => {
  const cases: Array<[string, Buffer, string]> = [
    ['no signature', Buffer.from('EHLO x\r\n'), 'malformed: no PROXY protocol signature'],
    ['a bare LF', Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n'), 'malformed: v1 line ends without CRLF'],
    ['108 bytes with its CRLF', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`), 'too-long: v1 line longer than 107 bytes'],
    ['107 bytes without CRLF', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(93)}`), 'too-long: v1 line longer than 107 bytes'],
    ['a bare LF past the 107-byte limit (only the first 107 bytes are searched)', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}\n`), 'too-long: v1 line longer than 107 bytes'],
    ['a bare LF followed by a CR', Buffer.from('PROXY TCP4 192.0.2.7\n\r'), 'malformed: v1 line ends without CRLF'],
    ['four fields', Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n'), 'malformed: v1 line needs protocol, two addresses and two ports'],
    ['UNKNOWN glued to more', Buffer.from('PROXY UNKNOWNX\r\n'), 'malformed: v1 line needs protocol, two addresses and two ports'],
    ['TCP5', Buffer.from('PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n'), 'malformed: v1 protocol must be TCP4, TCP6 or UNKNOWN'],
    ['IPv6 under TCP4 (destination)', Buffer.from('PROXY TCP4 192.0.2.7 ::1 1 2\r\n'), 'malformed: v1 addresses are not IPv4'],
    ['IPv4 under TCP6', Buffer.from('PROXY TCP6 ::1 192.0.2.7 1 2\r\n'), 'malformed: v1 addresses are not IPv6'],
    ['a destination port over 65535', Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 1 99999\r\n'), 'malformed: v1 port is not a number from 0 to 65535'],
    ['a six-digit port', Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 100000 2\r\n'), 'malformed: v1 port is not a number from 0 to 65535'],
    ['v2 version 1', v2(0x11, 0x11, Buffer.alloc(12)), 'malformed: v2 version nibble is not 2'],
    ['v2 version 3', v2(0x31, 0x11, Buffer.alloc(12)), 'malformed: v2 version nibble is not 2'],
    ['v2 command 2', v2(0x22, 0x11, Buffer.alloc(12)), 'malformed: v2 command is neither LOCAL nor PROXY'],
    ['v2 of 1025 bytes', v2(0x21, 0x11, Buffer.alloc(1009)), 'too-long: v2 header of 1025 bytes exceeds 1024'],
    ['v2 DGRAM', v2(0x21, 0x12, Buffer.alloc(12)), 'unsupported: v2 transport is not STREAM'],
    ['v2 transport 0', v2(0x21, 0x10, Buffer.alloc(12)), 'unsupported: v2 transport is not STREAM'],
    ['v2 short AF_INET', v2(0x21, 0x11, Buffer.alloc(11)), 'malformed: v2 AF_INET address block too short'],
    ['v2 short AF_INET6', v2(0x21, 0x21, Buffer.alloc(35)), 'malformed: v2 AF_INET6 address block too short'],
    ['v2 AF_UNIX', v2(0x21, 0x31, Buffer.alloc(216)), 'unsupported: v2 family is neither AF_INET nor AF_INET6'],
    ['v2 TLV overrun', v2(0x21, 0x11, Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0, 2, 0x61])])), 'malformed: v2 TLV overruns the header'],
    ['v2 TLV header cut', v2(0x21, 0x11, Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0])])), 'malformed: v2 TLV overruns the header'],
  ];
  for (const [why, buf, expected] of cases) {
    it(`refuses ${why}`, () => {
      expect(refusal(parseProxyHeader(buf))).to.equal(expected);
    });
  }

  it('waits for more on a partial signature of either version, and on a v1 line still under the limit', () => {
    for (const partial of ['P', 'PROXY', 'PROXY ', 'PROXY TCP4 192.0.2.7', '\r\n\r\n\0\r\nQUI', '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00']) {
      expect(refusal(parseProxyHeader(Buffer.from(partial, 'latin1'))), JSON.stringify(partial)).to.equal('incomplete');
    }
    expect(refusal(parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(92)}`)))).to.equal('incomplete');
  });

  it('accepts UNKNOWN alone, port 0 and port 65535, and parses TLVs back to back, an empty one included', () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).to.deep.equal({ state: 'done', length: 15, header: { version: 1, command: 'local', tlvs: [] } });
    const r = parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 0 65535\r\n'));
    expect(r.state === 'done' && [r.header.source?.port, r.header.destination?.port]).to.deep.equal([0, 65535]);
    const tlvs = [
      { type: 1, value: Buffer.from('h2') },
      { type: 0x20, value: Buffer.alloc(0) },
      { type: 4, value: Buffer.from([0xff]) },
    ];
    const v = parseProxyHeader(formatProxyV2({ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 }, tlvs));
    expect(v.state === 'done' && v.header.tlvs).to.deep.equal(tlvs);
    const last = [{ type: 2, value: Buffer.from('mx') }, { type: 0x30, value: Buffer.alloc(0) }];
    const w = parseProxyHeader(formatProxyV2({ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 }, last));
    expect(w.state === 'done' && w.header.tlvs, 'an empty TLV last').to.deep.equal(last);
  });

  it('accepts a v2 header of exactly 1024 bytes', () => {
    const h = formatProxyV2({ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 }, [{ type: 4, value: Buffer.alloc(1024 - 16 - 12 - 3) }]);
    expect(h.length).to.equal(1024);
    expect(parseProxyHeader(h)).to.deep.include({ state: 'done', length: 1024 });
  });
});

describe('core: PROXY header serialisers', () => {
  it('writes TCP6 v1 lines', () => {
    const line = formatProxyV1({ address: '2001:db8::7', port: 5 }, { address: '::1', port: 25 });
    expect(line.toString('latin1')).to.equal('PROXY TCP6 2001:db8::7 ::1 5 25\r\n');
    expect(parseProxyHeader(line)).to.deep.include({ state: 'done', length: line.length });
  });

  for (const [a, canonical] of [
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
    ['fe80::', 'fe80::'],
    ['::', '::'],
    ['2001:db8::1:2', '2001:db8::1:2'],
    ['1:0:0:2::3', '1:0:0:2::3'],
  ] as const) {
    it(`writes and reads back the v2 IPv6 address ${a}`, () => {
      const h = formatProxyV2({ address: a, port: 1 }, { address: '::2', port: 2 });
      expect(h[13]).to.equal(0x21);
      expect(h.readUInt16BE(14)).to.equal(36);
      const r = parseProxyHeader(h);
      expect(r.state === 'done' && r.header.source).to.deep.equal({ address: canonical, port: 1 });
    });
  }

  it('writes a v2 IPv4 header with the AF_INET/STREAM byte and 12-byte block, and a LOCAL header of 16 bytes', () => {
    const h = formatProxyV2({ address: '192.0.2.7', port: 258 }, { address: '10.0.0.1', port: 25 });
    expect([...h.subarray(12)]).to.deep.equal([0x21, 0x11, 0, 12, 192, 0, 2, 7, 10, 0, 0, 1, 1, 2, 0, 25]);
    expect([...formatProxyV2().subarray(12)]).to.deep.equal([0x20, 0, 0, 0]);
  });

  it('reads a v2 IPv4 header whose block is exactly the 12 address bytes (no TLVs)', () => {
    const h = formatProxyV2({ address: '192.0.2.7', port: 258 }, { address: '10.0.0.1', port: 25 });
    expect(parseProxyHeader(h)).to.deep.equal({
      state: 'done',
      length: 28,
      header: { version: 2, command: 'proxy', source: { address: '192.0.2.7', port: 258 }, destination: { address: '10.0.0.1', port: 25 }, tlvs: [] },
    });
  });
});

describe('core: ProxyTrust edges', () => {
  it('trusts everyone under /0, and single addresses given with spaces around them', () => {
    const all = new ProxyTrust(['0.0.0.0/0', '::/0']);
    expect(['1.2.3.4', '255.255.255.255', '2001:db8::1'].map((a) => all.isTrusted(a))).to.deep.equal([true, true, true]);
    const one = new ProxyTrust([' 10.0.0.1 ', '::1/128']);
    expect(['10.0.0.1', '10.0.0.2', '::1', '::2'].map((a) => one.isTrusted(a))).to.deep.equal([true, false, true, false]);
    expect(one.cidrs).to.deep.equal([' 10.0.0.1 ', '::1/128']);
  });

  it('does not trust a name or an IPv4-mapped address outside the blocks', () => {
    const t = new ProxyTrust(['127.0.0.0/8']);
    expect(t.isTrusted('localhost')).to.equal(false);
    expect(t.isTrusted('::FFFF:127.0.0.1')).to.equal(true);
    expect(t.isTrusted('::ffff:10.0.0.1')).to.equal(false);
    expect(t.isTrusted('')).to.equal(false);
  });

  it('does not trust text around an IPv4-mapped address inside the blocks', () => {
    const t = new ProxyTrust(['127.0.0.0/8']);
    expect(['x::ffff:127.0.0.1', '::ffff:127.0.0.1x', '::ffff:127.0.0.1\n'].map((a) => t.isTrusted(a))).to.deep.equal([false, false, false]);
  });

  it('refuses a prefix that is not plain decimal digits, as a ProxyConfigError', () => {
    for (const bad of ['10.0.0.0/ 8', '10.0.0.0/1e1', '10.0.0.0/0x8', '10.0.0.0/8.0']) {
      expect(() => new ProxyTrust([bad]), bad).to.throw(`"${bad}" is not a CIDR block (e.g. 10.0.0.0/8 or ::1/128)`).with.property('name', 'ProxyConfigError');
    }
  });
});
