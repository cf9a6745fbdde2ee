/**
 * The record a store keeps of the SMTP/LMTP transaction that delivered a message (`DeliveryEnvelope`): the envelope,
 * the session's facts (HELO, user, client, TLS), the DSN requests and REQUIRETLS. Built once per delivered message,
 * with its strings and small objects shared between records (issue 15: a store that keeps every envelope, the memory
 * store, holds fewer objects per message). Re-exported by `mail-store-smtp-backend.ts`, its user.
 */
import type { DeliveryEnvelope } from '../contracts/mail-store.js';
import type { Envelope } from './smtp-backend.js';

/**
 * The store's record of an SMTP transaction: the envelope plus the session facts a test or the web inbox shows (no
 * other mail test tool keeps the TLS facts). `receivedAt` is when the body was complete.
 */
export function deliveryEnvelope(envelope: Envelope, receivedAt: Date): DeliveryEnvelope {
  const record = envelopeRecord(envelope, receivedAt);
  const { ret, envid } = envelope.mailParams;
  const recipients = envelope.rcptParams;
  const requireTls = envelope.mailParams.requireTls;
  if (ret === undefined && envid === undefined && recipients === undefined) return requireTls ? { ...record, requireTls } : record;
  // A DSN request (RFC 3461, `smtp.dsn`): rare, so its record is the common one plus `dsn`.
  const dsn: Mutable<NonNullable<DeliveryEnvelope['dsn']>> = {};
  if (ret !== undefined) dsn.ret = ret;
  if (envid !== undefined) dsn.envid = envid;
  if (recipients !== undefined) dsn.recipients = recipients.map((p) => ({ ...(p.notify ? { notify: [...p.notify] } : {}), ...(p.orcpt ? { orcpt: { ...p.orcpt } } : {}) }));
  return requireTls ? { ...record, dsn, requireTls } : { ...record, dsn };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** {@link deliveryEnvelope} without the DSN requests. */
function envelopeRecord(envelope: Envelope, receivedAt: Date): DeliveryEnvelope {
  const security = envelope.peer.security;
  // One object literal per shape, keys in the same order as always: every field in the object itself (fields added
  // one by one spill into a second, out-of-object array), and the strings shared between records. Issue 15: a store
  // that keeps every envelope holds two objects less per message, and an address cut from its command line no
  // longer keeps that line alive.
  const mailFrom = shared(envelope.mailFrom);
  const rcptTo = sharedRecipients(envelope.rcptTo);
  const helo = shared(envelope.helo);
  const authUser = envelope.user;
  const clientAddress = shared(envelope.peer.remoteAddress);
  const clientPort = envelope.peer.remotePort;
  const protocol = LMTP_KEYWORD.test(envelope.protocol) ? 'lmtp' : 'smtp';
  const at = isoTime(receivedAt);
  if (!security.tls) {
    return authUser === undefined
      ? { mailFrom, rcptTo, helo, clientAddress, clientPort, protocol, receivedAt: at }
      : { mailFrom, rcptTo, helo, authUser, clientAddress, clientPort, protocol, receivedAt: at };
  }
  const subject = security.peerCertificate?.subject;
  const tls = subject
    ? // X509Certificate.subject is one RDN per line; RFC 4514 text joins them with commas.
      { protocol: security.protocol ?? '', cipher: security.cipher ?? '', clientCertSubject: subject.split('\n').join(', ') }
    : tlsRecord(security.protocol ?? '', security.cipher ?? '');
  return authUser === undefined
    ? { mailFrom, rcptTo, helo, clientAddress, clientPort, tls, protocol, receivedAt: at }
    : { mailFrom, rcptTo, helo, authUser, clientAddress, clientPort, tls, protocol, receivedAt: at };
}

/** Strings kept by {@link shared}: addresses, HELO names, client addresses (bounded, started over when full). */
const SHARED = new Map<string, string>();
/** Entries {@link SHARED} keeps before it starts over. */
const SHARED_LIMIT = 4096;

/**
 * One string object for equal values: the first one seen, copied to a flat string of its own (a string cut from a
 * longer one keeps that one alive). Values over 256 characters are returned as they are.
 */
function shared(value: string): string {
  if (value.length > 256) return value;
  let kept = SHARED.get(value);
  if (kept === undefined) {
    if (SHARED.size >= SHARED_LIMIT) SHARED.clear();
    kept = Buffer.from(value, 'utf8').toString('utf8');
    SHARED.set(kept, kept);
  }
  return kept;
}

/** One frozen list per single recipient, kept like {@link SHARED}'s strings. */
const SHARED_LISTS = new Map<string, readonly string[]>();

/**
 * The recipient list of an envelope record: for one recipient (most mail) one frozen array shared by every record
 * with that recipient, otherwise a new array of the {@link shared} strings. Issue 15: a store that keeps every
 * envelope holds two objects less per message (the array and its elements), which every major collection marks.
 */
function sharedRecipients(values: readonly string[]): readonly string[] {
  if (values.length === 1) {
    const address = shared(values[0]!);
    let list = SHARED_LISTS.get(address);
    if (list === undefined) {
      if (SHARED_LISTS.size >= SHARED_LIMIT) SHARED_LISTS.clear();
      list = Object.freeze([address]);
      SHARED_LISTS.set(address, list);
    }
    return list;
  }
  const out = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = shared(values[i]!);
  return out;
}

/** `date.toISOString()`, the same string object for deliveries in the same millisecond. */
let lastIsoMs = NaN;
let lastIso = '';
function isoTime(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastIsoMs) {
    lastIsoMs = ms;
    lastIso = date.toISOString();
  }
  return lastIso;
}

/** The RFC 3848 / RFC 6531 `with` keywords of LMTP (`LMTP…`, `UTF8LMTP…`). */
const LMTP_KEYWORD = /^(UTF8)?LMTP/;

/** Shared, frozen `tls` records of envelopes without a client certificate: a handful of protocol/cipher pairs. */
const TLS_RECORDS = new Map<string, NonNullable<DeliveryEnvelope['tls']>>();

/**
 * The `tls` record for `protocol` and `cipher`, one frozen object per pair, so that a store keeping every envelope
 * (the memory store) holds one object less per message. Bounded: past 64 pairs a fresh object is returned.
 */
function tlsRecord(protocol: string, cipher: string): NonNullable<DeliveryEnvelope['tls']> {
  const key = `${protocol} ${cipher}`;
  let record = TLS_RECORDS.get(key);
  if (record === undefined) {
    record = Object.freeze({ protocol, cipher });
    if (TLS_RECORDS.size < 64) TLS_RECORDS.set(key, record);
  }
  return record;
}
