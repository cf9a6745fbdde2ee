/**
 * SCRAM-SHA-256 keys (RFC 5802 §3, RFC 7677) as a user directory keeps them instead of a password: the salt, the
 * iteration count, StoredKey and ServerKey. With them a server checks a SCRAM proof and signs its answer without ever
 * holding the password or anything that logs in by itself (StoredKey is a hash of ClientKey; ServerKey only signs).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PBKDF2 iterations of the salted password: RFC 7677 §4's minimum, as Dovecot and Cyrus use by default. */
export const SCRAM_ITERATIONS = 4096;

/** What SCRAM's server-first message announces for a user: the salt and the iteration count. */
export interface ScramParameters {
  readonly salt: Buffer;
  readonly iterations: number;
}

/** A user's SCRAM-SHA-256 keys. */
export interface ScramKeys extends ScramParameters {
  /** H(HMAC(SaltedPassword, "Client Key")). */
  readonly storedKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"). */
  readonly serverKey: Buffer;
}

const hmac = (key: Buffer, text: string | Buffer): Buffer => createHmac('sha256', key).update(text).digest();

/** The keys of `password` (UTF-8) with a fresh 16-byte salt, or the one given. About a millisecond of PBKDF2. */
export function deriveScramKeys(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): ScramKeys {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  return { salt, iterations, storedKey: createHash('sha256').update(hmac(salted, 'Client Key')).digest(), serverKey: hmac(salted, 'Server Key') };
}

/** `SCRAM-SHA-256$<iterations>$<salt>$<StoredKey>$<ServerKey>` (base64), the form a directory stores. */
export function encodeScramKeys(keys: ScramKeys): string {
  return ['SCRAM-SHA-256', keys.iterations, keys.salt.toString('base64'), keys.storedKey.toString('base64'), keys.serverKey.toString('base64')].join('$');
}

/** Reads {@link encodeScramKeys}' form; undefined for anything else. */
export function decodeScramKeys(encoded: string): ScramKeys | undefined {
  const [kind, iterations, salt, storedKey, serverKey] = encoded.split('$');
  const n = Number(iterations);
  if (kind !== 'SCRAM-SHA-256' || !Number.isInteger(n) || n < 1 || !salt || !storedKey || !serverKey) return undefined;
  const keys = { iterations: n, salt: Buffer.from(salt, 'base64'), storedKey: Buffer.from(storedKey, 'base64'), serverKey: Buffer.from(serverKey, 'base64') };
  return keys.storedKey.length === 32 && keys.serverKey.length === 32 && keys.salt.length > 0 ? keys : undefined;
}
