import net from 'node:net';

/**
 * The PROXY protocol, versions 1 (text) and 2 (binary), receiver side, as specified by HAProxy's
 * `proxy-protocol.txt` (revision 2020/03/05). A proxy in front of a server prepends one header to the TCP stream
 * naming the client's own address; the server reads it before anything else (before a greeting, before TLS).
 *
 * This module only parses bytes; `TcpServer` reads the header from sockets (see `proxy-header-reader.ts`).
 */

/** An address and port taken from a header. */
export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

/** A parsed PROXY header. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * `proxy`: the connection was relayed for `source` (the client) to `destination` (the address it dialled).
   * `local`: the proxy speaks for itself (v2 LOCAL, e.g. health checks) or does not know the addresses (v1
   * `UNKNOWN`, v2 `AF_UNSPEC`): the receiver uses the real peer address (spec §2.1 and §2.2).
   */
  readonly command: 'proxy' | 'local';
  readonly source?: ProxyEndpoint;
  readonly destination?: ProxyEndpoint;
  /** v2 type-length-value extensions (spec §2.2.7), raw; empty for v1. */
  readonly tlvs: ReadonlyArray<{ readonly type: number; readonly value: Buffer }>;
}

/** Why a header was refused. */
export type ProxyHeaderErrorReason = 'malformed' | 'too-long' | 'unsupported';

/** Result of {@link parseProxyHeader}. */
export type ProxyParseResult =
  | { readonly state: 'incomplete' }
  | { readonly state: 'error'; readonly reason: ProxyHeaderErrorReason; readonly detail: string }
  | { readonly state: 'done'; readonly header: ProxyHeader; readonly length: number };

/** Spec §2.1: a v1 line is at most 107 bytes, `PROXY UNKNOWN` … CRLF included. */
export const PROXY_V1_MAX_BYTES = 107;
/**
 * Largest v2 header we accept (16-byte preamble + addresses + TLVs). The spec (§2.2) asks receivers to handle at
 * least 536 bytes; HAProxy's `send-proxy-v2` with SSL/ALPN/authority TLVs stays well below 1 KB. Longer announced
 * lengths are refused at once, before their bytes arrive.
 */
export const PROXY_V2_MAX_BYTES = 1024;
/** Spec §2.2: the 12-byte v2 signature `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** Spec §2.2: address block sizes for AF_INET and AF_INET6 over STREAM (addresses then ports). */
const V2_INET_BYTES = 12;
const V2_INET6_BYTES = 36;

/**
 * Parses a PROXY header at the start of `buf` (all bytes received so far). Pure and cheap: call it again with
 * the grown buffer while it answers `incomplete`. An error is final: the connection must be closed.
 * Bytes after `length` belong to the proxied protocol (e.g. a TLS ClientHello).
 */
export function parseProxyHeader(buf: Buffer): ProxyParseResult {
  if (buf.length === 0) return { state: 'incomplete' };
  if (isPrefix(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { state: 'incomplete' } : parseV1(buf);
  if (isPrefix(buf, PROXY_V2_SIGNATURE)) return buf.length < PROXY_V2_SIGNATURE.length ? { state: 'incomplete' } : parseV2(buf);
  return error('malformed', 'no PROXY protocol signature');
}

/** True when the shorter of the two is a prefix of the other. */
function isPrefix(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

function error(reason: ProxyHeaderErrorReason, detail: string): ProxyParseResult {
  return { state: 'error', reason, detail };
}

/** Spec §2.1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` with single spaces, or `PROXY UNKNOWN …\r\n`. */
function parseV1(buf: Buffer): ProxyParseResult {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  const limit = Math.min(buf.length, PROXY_V1_MAX_BYTES);
  if (end === -1 || end + 2 > PROXY_V1_MAX_BYTES) {
    // A bare LF (or CR not followed by LF) inside the limit is as wrong as a line that never ends.
    const lf = buf.subarray(0, limit).indexOf(0x0a);
    if (lf !== -1 && (lf === 0 || buf[lf - 1] !== 0x0d)) return error('malformed', 'v1 line ends without CRLF');
    return buf.length >= PROXY_V1_MAX_BYTES ? error('too-long', `v1 line longer than ${PROXY_V1_MAX_BYTES} bytes`) : { state: 'incomplete' };
  }
  const line = buf.toString('latin1', V1_PREFIX.length, end);
  const length = end + 2;
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN ')) return { state: 'done', length, header: { version: 1, command: 'local', tlvs: [] } };
  const parts = line.split(' ');
  if (parts.length !== 5) return error('malformed', 'v1 line needs protocol, two addresses and two ports');
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) return error('malformed', 'v1 protocol must be TCP4, TCP6 or UNKNOWN');
  if (net.isIP(src) !== family || net.isIP(dst) !== family) return error('malformed', `v1 addresses are not IPv${family}`);
  const sp = v1Port(sport);
  const dp = v1Port(dport);
  if (sp === undefined || dp === undefined) return error('malformed', 'v1 port is not a number from 0 to 65535');
  return { state: 'done', length, header: { version: 1, command: 'proxy', source: { address: src, port: sp }, destination: { address: dst, port: dp }, tlvs: [] } };
}

/** Spec §2.1: ports are decimal 0..65535 without leading zeros. */
function v1Port(s: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** Spec §2.2: signature, version/command, family/transport, 16-bit length, addresses, TLVs. */
function parseV2(buf: Buffer): ProxyParseResult {
  if (buf.length < 16) return { state: 'incomplete' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return error('malformed', 'v2 version nibble is not 2');
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return error('malformed', 'v2 command is neither LOCAL nor PROXY');
  const famProto = buf[13]!;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  const len = buf.readUInt16BE(14);
  const length = 16 + len;
  if (length > PROXY_V2_MAX_BYTES) return error('too-long', `v2 header of ${length} bytes exceeds ${PROXY_V2_MAX_BYTES}`);
  if (buf.length < length) return { state: 'incomplete' };
  const body = buf.subarray(16, length);
  // LOCAL (spec §2.2: "the receiver must accept this connection as valid and must use the real connection endpoints
  // and discard the protocol block including the family").
  if (cmd === 0) return { state: 'done', length, header: { version: 2, command: 'local', tlvs: [] } };
  if (family === 0) return { state: 'done', length, header: { version: 2, command: 'local', tlvs: [] } }; // AF_UNSPEC: unknown addresses
  if (transport !== 1) return error('unsupported', 'v2 transport is not STREAM');
  let source: ProxyEndpoint;
  let destination: ProxyEndpoint;
  let used: number;
  if (family === 1) {
    if (len < V2_INET_BYTES) return error('malformed', 'v2 AF_INET address block too short');
    source = { address: ipv4(body.subarray(0, 4)), port: body.readUInt16BE(8) };
    destination = { address: ipv4(body.subarray(4, 8)), port: body.readUInt16BE(10) };
    used = V2_INET_BYTES;
  } else if (family === 2) {
    if (len < V2_INET6_BYTES) return error('malformed', 'v2 AF_INET6 address block too short');
    source = { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) };
    destination = { address: ipv6(body.subarray(16, 32)), port: body.readUInt16BE(34) };
    used = V2_INET6_BYTES;
  } else {
    return error('unsupported', 'v2 family is neither AF_INET nor AF_INET6');
  }
  const tlvs = parseTlvs(body.subarray(used));
  if (!tlvs) return error('malformed', 'v2 TLV overruns the header');
  return { state: 'done', length, header: { version: 2, command: 'proxy', source, destination, tlvs } };
}

/** Spec §2.2.7: type (1 byte), length (2 bytes, big-endian), value. */
function parseTlvs(rest: Buffer): Array<{ type: number; value: Buffer }> | undefined {
  const out: Array<{ type: number; value: Buffer }> = [];
  let i = 0;
  while (i < rest.length) {
    if (i + 3 > rest.length) return undefined;
    const type = rest[i]!;
    const n = rest.readUInt16BE(i + 1);
    if (i + 3 + n > rest.length) return undefined;
    out.push({ type, value: Buffer.from(rest.subarray(i + 3, i + 3 + n)) });
    i += 3 + n;
  }
  return out;
}

function ipv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Canonical text (RFC 5952 §4): let the URL parser compress the longest zero run.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** Serialises a v1 header (for tests and tools that play the proxy). */
export function formatProxyV1(source: ProxyEndpoint, destination: ProxyEndpoint): Buffer {
  const fam = net.isIP(source.address) === 6 ? 'TCP6' : 'TCP4';
  return Buffer.from(`PROXY ${fam} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`, 'latin1');
}

/** Serialises a v2 PROXY (or, without endpoints, LOCAL) header over STREAM (for tests and tools that play the proxy). */
export function formatProxyV2(source?: ProxyEndpoint, destination?: ProxyEndpoint, tlvs: ReadonlyArray<{ type: number; value: Buffer }> = []): Buffer {
  const tlvBytes = Buffer.concat(tlvs.map((t) => Buffer.concat([Buffer.from([t.type, t.value.length >> 8, t.value.length & 0xff]), t.value])));
  if (!source || !destination) return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);
  const v6 = net.isIP(source.address) === 6;
  const addr = v6
    ? Buffer.concat([ipv6Bytes(source.address), ipv6Bytes(destination.address), port(source.port), port(destination.port)])
    : Buffer.concat([Buffer.from(source.address.split('.').map(Number)), Buffer.from(destination.address.split('.').map(Number)), port(source.port), port(destination.port)]);
  const len = addr.length + tlvBytes.length;
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, v6 ? 0x21 : 0x11, len >> 8, len & 0xff]), addr, tlvBytes]);
}

function port(p: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(p);
  return b;
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/**
 * The peers allowed to send PROXY headers, from CIDR blocks (`10.0.0.0/8`, `::1/128`) or single addresses.
 * IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`, seen on dual-stack listeners) are matched as IPv4.
 */
export class ProxyTrust {
  private readonly list = new net.BlockList();
  readonly cidrs: readonly string[];

  /** @throws ProxyConfigError for an empty list or a block that is not `ADDRESS[/PREFIX]`. */
  constructor(cidrs: readonly string[]) {
    if (cidrs.length === 0) throw new ProxyConfigError('the PROXY protocol needs at least one trusted proxy address (CIDR)');
    for (const c of cidrs) {
      const [address = '', prefix, extra] = c.trim().split('/');
      const family = net.isIP(address);
      const max = family === 6 ? 128 : 32;
      const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
      if (family === 0 || extra !== undefined || !(bits >= 0 && bits <= max)) throw new ProxyConfigError(`"${c}" is not a CIDR block (e.g. 10.0.0.0/8 or ::1/128)`);
      this.list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
    }
    this.cidrs = [...cidrs];
  }

  /** True when `address` (a socket's remote address) may send a PROXY header. */
  isTrusted(address: string | undefined): boolean {
    if (!address) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const a = mapped ? mapped[1]! : address;
    const family = net.isIP(a);
    return family !== 0 && this.list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** A PROXY protocol setting that cannot work (no trusted proxies, a bad CIDR). Thrown at configuration time. */
export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError';
}
