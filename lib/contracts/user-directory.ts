/** The user accounts side of the {@link MailStore} contract (`MailStore.users`); `mail-store.ts` re-exports it. */
import type { ScramKeys } from '../protocol/sasl/scram-keys.js';

/** User accounts known to the store. */
export interface UserDirectory {
  /**
   * Adds or replaces a user (a replaced user keeps its mailboxes). `addresses` are the e-mail addresses delivered to
   * this user (lower-cased by the store); a username containing `@` is always one of its own addresses.
   * @throws MailStoreError `ALREADY_EXISTS` when an address already belongs to another user.
   */
  add(user: { username: string; password: string; addresses?: string[] }): Promise<void>;
  /** Checks a password. Resolves the canonical username, or undefined when the credentials are wrong. Accepts the username or any of its addresses. */
  verify(login: string, password: string): Promise<string | undefined>;
  /** The canonical username that owns an address (case-insensitive), or undefined. */
  findByAddress(address: string): Promise<string | undefined>;
  /** The canonical username for a login (username or address), or undefined. Does not check a password. */
  find(login: string): Promise<string | undefined>;
  /**
   * The plaintext secret for challenge-response mechanisms (APOP, CRAM-MD5); undefined when unknown or when the
   * backend keeps only a hash (then do not offer those mechanisms).
   */
  secretFor(username: string): Promise<string | undefined>;
  /**
   * True when {@link secretFor} can answer: the directory keeps plaintext secrets. False when it keeps only hashes;
   * the default Authenticator then offers no challenge-response mechanism (APOP, CRAM-MD5), so that a client which
   * prefers one (fetchmail tries CRAM-MD5 first) is not refused, delayed and counted as a failed login each time.
   */
  readonly keepsSecrets: boolean;
  /**
   * Optional: true when every user has SCRAM-SHA-256 keys ({@link scramKeysFor} answers for each), so that the default
   * Authenticator can offer SCRAM-SHA-256 without plaintext secrets. The Maildir and PostgreSQL stores make keys
   * whenever they hash a password; users written by an earlier version have none until their password is set again.
   */
  readonly keepsScramKeys?: boolean;
  /** Optional: a user's stored SCRAM-SHA-256 keys (canonical username), or undefined. */
  scramKeysFor?(username: string): Promise<ScramKeys | undefined>;
  /** Every canonical username, sorted. */
  list(): Promise<string[]>;
  /**
   * Optional: removes a user by canonical username, with its addresses. Resolves false when there is no such user.
   * The memory and Maildir stores keep the user's mailboxes (adding the user again finds them); the PostgreSQL store
   * deletes them with the user (its rows reference the user). Used by the test double's `DELETE /api/v1/users/{login}`.
   */
  remove?(username: string): Promise<boolean>;
}
