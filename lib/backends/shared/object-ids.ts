import { createHash } from 'node:crypto';

/**
 * Object identifiers of RFC 8474 for the built-in stores. Every id is a letter plus lower-case hex, so it fits
 * `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §7).
 */

/** Hex digits kept from a SHA-256: 96 bits, far beyond any collision in one account. */
const ID_HEX_DIGITS = 24;

/** EMAILID of message octets (RFC 8474 §5.1): `M` + a content hash, so a COPY keeps it and equal ids mean equal octets. */
export function emailIdOfContent(raw: Buffer): string {
  return emailIdOfHash(createHash('sha256').update(raw).digest());
}

/** EMAILID from a SHA-256 of the message octets computed elsewhere (the PostgreSQL store's body key). */
export function emailIdOfHash(sha256: Buffer): string {
  return 'M' + sha256.toString('hex').slice(0, ID_HEX_DIGITS);
}

/** EMAILID from a unique, never-reused name of the message (a Maildir file's base name). */
export function emailIdOfName(name: string): string {
  return 'M' + createHash('sha256').update(name).digest('hex').slice(0, ID_HEX_DIGITS);
}

/** MAILBOXID (RFC 8474 §4) from a value unique among the user's mailboxes and kept across RENAME. */
export function mailboxIdOf(unique: string | number): string {
  return typeof unique === 'number' ? `F${unique}` : 'F' + createHash('sha256').update(unique).digest('hex').slice(0, ID_HEX_DIGITS);
}
