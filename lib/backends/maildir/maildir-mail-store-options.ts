/**
 * What a `MaildirMailStore` is made from: its options and their injection token (bound by `maildirModule`).
 * Re-exported by `maildir-mail-store.ts`.
 */
import type { ServiceIdentifier } from '../../vendor/inversify.js';
import type { MailStoreOptions } from '../../contracts/mail-store.js';

/** Options of {@link MaildirMailStore}. */
export interface MaildirMailStoreOptions extends MailStoreOptions {
  /** Root directory: holds `users.json` and `mail/<user>/` (created on first use). */
  readonly root: string;
  /** fsync message files, directories and state files before resolving (default true; false only for throwaway tests). */
  readonly fsync?: boolean;
  /**
   * Keep each password in plaintext next to its scrypt hash so that `secretFor` can serve APOP and CRAM-MD5
   * (default false: only the hash is stored and `secretFor` resolves undefined).
   */
  readonly keepPlaintextPasswords?: boolean;
}
/** Injection token of {@link MaildirMailStoreOptions}. */
export const MaildirMailStoreOptions = Symbol.for('postern.MaildirMailStoreOptions') as ServiceIdentifier<MaildirMailStoreOptions>;
