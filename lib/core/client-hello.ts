/**
 * The server name and ALPN protocols of a TLS ClientHello, read from a connection's first bytes before the TLS stack
 * sees them. Under TLS 1.2 OpenSSL picks the certificate (Node's `SNICallback`) before it selects ALPN, so a listener
 * answering an ACME TLS-ALPN-01 validation (RFC 8737 §3) must learn that the client offered `acme-tls/1` earlier.
 */
import type net from 'node:net';
import { readAhead, type Examined } from './read-ahead.js';

/** What a ClientHello asks for. */
export interface ClientHelloSummary {
  /** The `host_name` of the server_name extension (RFC 6066 §3), if any. */
  readonly servername?: string;
  /** The protocols of the ALPN extension (RFC 7301 §3.1), in the client's order; empty without one. */
  readonly alpn: readonly string[];
}

/** The largest record a ClientHello may come in (RFC 8446 §5.1: 2^14 octets of plaintext). */
const MAX_RECORD = 16384;
const HANDSHAKE_RECORD = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/**
 * Reads the ClientHello at the start of `data` (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 has the same layout).
 * @returns `'more'` while its first record is incomplete; undefined when the bytes are not a ClientHello in one record
 *   (or are malformed); else its server name and ALPN list.
 */
export function parseClientHello(data: Buffer): ClientHelloSummary | 'more' | undefined {
  if (data.length < 5) return data.length > 0 && data[0] !== HANDSHAKE_RECORD ? undefined : 'more';
  if (data[0] !== HANDSHAKE_RECORD || data[1] !== 3) return undefined;
  const recordLength = data.readUInt16BE(3);
  if (recordLength > MAX_RECORD) return undefined;
  if (data.length < 5 + recordLength) return 'more';
  const record = data.subarray(5, 5 + recordLength);
  if (record.length < 4 || record[0] !== CLIENT_HELLO) return undefined;
  const length = record.readUIntBE(1, 3);
  if (4 + length > record.length) return undefined; // a ClientHello over several records: not worth reassembling
  const r = new Reader(record.subarray(4, 4 + length));
  r.skip(2 + 32); // legacy_version, random
  r.skip(r.u8()); // legacy_session_id
  r.skip(r.u16()); // cipher_suites
  r.skip(r.u8()); // legacy_compression_methods
  if (r.failed) return undefined;
  let servername: string | undefined;
  let alpn: string[] = [];
  if (r.left === 0) return { alpn }; // no extensions (TLS 1.2 allows that)
  const extensions = new Reader(r.take(r.u16()));
  while (!extensions.failed && extensions.left > 0) {
    const type = extensions.u16();
    const body = new Reader(extensions.take(extensions.u16()));
    if (type === EXT_SERVER_NAME) servername = serverNameOf(body);
    else if (type === EXT_ALPN) alpn = protocolsOf(body);
  }
  return extensions.failed || r.failed ? undefined : { servername, alpn };
}

/** RFC 6066 §3: the first `host_name` entry of a ServerNameList. */
function serverNameOf(body: Reader): string | undefined {
  const list = new Reader(body.take(body.u16()));
  while (!list.failed && list.left > 0) {
    const type = list.u8();
    const name = list.take(list.u16());
    if (type === 0 && !list.failed) return name.toString('latin1');
  }
  return undefined;
}

/** RFC 7301 §3.1: a ProtocolNameList. */
function protocolsOf(body: Reader): string[] {
  const list = new Reader(body.take(body.u16()));
  const out: string[] = [];
  while (!list.failed && list.left > 0) {
    const name = list.take(list.u8());
    if (!list.failed) out.push(name.toString('latin1'));
  }
  return out;
}

/** Reads big-endian fields; a read past the end sets `failed` (and yields zeros or an empty buffer) instead of throwing. */
class Reader {
  private at = 0;
  failed = false;
  constructor(private readonly buf: Buffer) {}
  get left(): number {
    return this.buf.length - this.at;
  }
  private has(n: number): boolean {
    if (this.at + n <= this.buf.length) return true;
    this.failed = true;
    return false;
  }
  u8(): number {
    return this.has(1) ? this.buf[this.at++]! : 0;
  }
  u16(): number {
    if (!this.has(2)) return 0;
    this.at += 2;
    return this.buf.readUInt16BE(this.at - 2);
  }
  skip(n: number): void {
    if (this.has(n)) this.at += n;
  }
  take(n: number): Buffer {
    if (!this.has(n)) return Buffer.alloc(0);
    this.at += n;
    return this.buf.subarray(this.at - n, this.at);
  }
}

/**
 * Reads a connection's first bytes until they hold a whole ClientHello record, then puts them all back, so a TLS
 * socket wrapped around `socket` next reads them as if nothing had happened (Node feeds bytes buffered on the wrapped
 * socket to the TLS stack first). Resolves the summary, or undefined for anything else: not a ClientHello, the peer
 * closing, or `limitMs` passing (the handshake's own limit then starts: a silent client is closed after at most twice
 * the handshake limit while an ACME validation is pending). Never more than one maximal record is read: past
 * 5 + 2^14 octets {@link parseClientHello} has decided.
 */
export async function peekClientHello(socket: net.Socket, limitMs: number): Promise<ClientHelloSummary | undefined> {
  const read = await readAhead(socket, limitMs, (bytes): Examined<ClientHelloSummary | undefined> => {
    const hello = parseClientHello(bytes);
    return hello === 'more' ? 'more' : { value: hello, unread: bytes };
  });
  return 'value' in read ? read.value : undefined;
}
