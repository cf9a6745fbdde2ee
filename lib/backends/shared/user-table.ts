import { createHash, randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';
import { MailStoreError, type UserDirectory } from '../../contracts/mail-store.js';
import { decodeScramKeys, deriveScramKeys, encodeScramKeys, type ScramKeys } from '../../protocol/sasl/scram-keys.js';

/** One user as a backend keeps it. Exactly one of `password` / `scrypt` is needed to verify. */
export interface UserRecord {
  username: string;
  /** Lower-cased addresses delivered to this user. */
  addresses: string[];
  /** Plaintext password: kept only when the backend must answer `secretFor` (APOP, CRAM-MD5). */
  password?: string;
  /** `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`. */
  scrypt?: string;
  /** SCRAM-SHA-256 keys, `SCRAM-SHA-256$<iterations>$<salt>$<StoredKey>$<ServerKey>` (made beside every scrypt hash). */
  scram?: string;
}

/** How a {@link UserTable} keeps credentials and where it saves them. */
export interface UserTableOptions {
  /** Store a scrypt hash of each password. */
  readonly hashPasswords: boolean;
  /** Also keep the plaintext (needed by `secretFor`). */
  readonly keepPlaintext: boolean;
  /** Called after every change with all records; `add` resolves only after it resolves. */
  readonly persist?: (records: UserRecord[]) => Promise<void>;
}

// scrypt cost parameters: Node's defaults (N=2^14, r=8, p=1, ~16 MiB, tens of ms), fine for a dev/test server.
const SCRYPT_N = 16384;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SCRYPT_KEYLEN = 32;
const SALT_BYTES = 16;

function scryptAsync(password: BinaryLike, salt: BinaryLike, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password into the `scrypt$…` form of {@link UserRecord.scrypt}. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(password, salt, SCRYPT_KEYLEN, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P });
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Checks a password against a `scrypt$…` string in constant time; false for a malformed string. */
export async function checkPassword(password: string, encoded: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = encoded.split('$');
  if (kind !== 'scrypt' || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

function sameText(a: string, b: string): boolean {
  // Compare digests so that the comparison time does not depend on where the strings differ.
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** A {@link UserDirectory} over a list of {@link UserRecord}s, shared by the memory and Maildir stores. */
export class UserTable implements UserDirectory {
  private readonly byName = new Map<string, UserRecord>();
  private saving: Promise<void> = Promise.resolve();

  /** @param records initial users (e.g. loaded from disk); taken over, not copied. */
  constructor(private readonly options: UserTableOptions, records: UserRecord[] = []) {
    for (const record of records) this.byName.set(record.username, record);
  }

  /** {@inheritDoc UserDirectory.keepsSecrets} */
  get keepsSecrets(): boolean {
    return this.options.keepPlaintext || !this.options.hashPasswords;
  }

  /** {@inheritDoc UserDirectory.add} */
  async add(user: { username: string; password: string; addresses?: string[] }): Promise<void> {
    if (user.username.length === 0) throw new MailStoreError('CANNOT', 'empty username');
    const addresses = new Set((user.addresses ?? []).map((a) => a.toLowerCase()));
    if (user.username.includes('@')) addresses.add(user.username.toLowerCase());
    for (const address of addresses) {
      const owner = this.ownerOf(address);
      if (owner !== undefined && owner.username !== user.username) {
        throw new MailStoreError('ALREADY_EXISTS', `address ${address} belongs to another user`);
      }
    }
    const record: UserRecord = { username: user.username, addresses: [...addresses].sort() };
    if (this.options.keepPlaintext || !this.options.hashPasswords) record.password = user.password;
    if (this.options.hashPasswords) {
      record.scrypt = await hashPassword(user.password);
      record.scram = encodeScramKeys(deriveScramKeys(user.password));
    }
    this.byName.set(user.username, record);
    this.allHaveScram = undefined;
    await this.save();
  }

  /** {@inheritDoc UserDirectory.verify} */
  async verify(login: string, password: string): Promise<string | undefined> {
    const record = this.recordFor(login);
    if (record === undefined) return undefined;
    if (record.scrypt !== undefined) return (await checkPassword(password, record.scrypt)) ? record.username : undefined;
    if (record.password !== undefined) return sameText(password, record.password) ? record.username : undefined;
    return undefined;
  }

  /**
   * {@inheritDoc UserDirectory.keepsScramKeys} A table that hashes passwords makes SCRAM keys with each hash; a record
   * written before that (no `scram`) keeps this false until its password is set again.
   */
  get keepsScramKeys(): boolean {
    // Asked at every EHLO/CAPA/CAPABILITY: worked out once per change of the table.
    this.allHaveScram ??= this.options.hashPasswords && [...this.byName.values()].every((r) => r.scram !== undefined);
    return this.allHaveScram;
  }

  private allHaveScram?: boolean;

  /** {@inheritDoc UserDirectory.scramKeysFor} */
  async scramKeysFor(username: string): Promise<ScramKeys | undefined> {
    const encoded = this.byName.get(username)?.scram;
    return encoded === undefined ? undefined : decodeScramKeys(encoded);
  }

  /** {@inheritDoc UserDirectory.findByAddress} */
  async findByAddress(address: string): Promise<string | undefined> {
    return this.ownerOf(address.toLowerCase())?.username;
  }

  /** {@inheritDoc UserDirectory.find} */
  async find(login: string): Promise<string | undefined> {
    return this.recordFor(login)?.username;
  }

  /** {@inheritDoc UserDirectory.secretFor} */
  async secretFor(username: string): Promise<string | undefined> {
    return this.recordFor(username)?.password;
  }

  /** {@inheritDoc UserDirectory.list} */
  async list(): Promise<string[]> {
    return [...this.byName.keys()].sort();
  }

  /**
   * Removes a user by canonical username (its addresses go with it; its mailboxes stay in the store until purged).
   * Resolves false when there is no such user. Used by the test double's `DELETE /api/v1/users/{login}`.
   */
  async remove(username: string): Promise<boolean> {
    if (!this.byName.delete(username)) return false;
    this.allHaveScram = undefined;
    await this.save();
    return true;
  }

  /**
   * Replaces every record with `records` (taken over, not copied) without persisting: for a store that re-reads its
   * file after another process changed it.
   */
  replaceAll(records: UserRecord[]): void {
    this.byName.clear();
    for (const record of records) this.byName.set(record.username, record);
    this.allHaveScram = undefined;
  }

  /** Synchronous lookup of a username or address (for the stores). */
  recordFor(login: string): UserRecord | undefined {
    return this.byName.get(login) ?? this.ownerOf(login.toLowerCase());
  }

  private ownerOf(address: string): UserRecord | undefined {
    for (const record of this.byName.values()) if (record.addresses.includes(address)) return record;
    return undefined;
  }

  private save(): Promise<void> {
    const persist = this.options.persist;
    if (persist === undefined) return Promise.resolve();
    // Serialize writes so that the file always ends with the latest table.
    this.saving = this.saving.catch(() => undefined).then(() => persist([...this.byName.values()]));
    return this.saving;
  }
}
