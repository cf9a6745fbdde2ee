import type { MailStore } from './mail-store.js';

/**
 * Storage quotas (RFC 9208 `STORAGE`): `PosternConfig.quota`. Limits are in octets of stored messages (all
 * mailboxes of the user together); a user with no limit is unlimited.
 */
export interface QuotaOptions {
  /** Limit for every user, in octets. */
  readonly storage?: number;
  /** Per-user limits in octets by canonical username, overriding `storage`. */
  readonly users?: Readonly<Record<string, number>>;
}

/** Usage and limit of one user, in octets. */
export interface QuotaUsage {
  readonly used: number;
  readonly limit: number;
}

/**
 * Optional store capability: the store enforces a storage quota (delivery, APPEND and COPY past the limit throw
 * `MailStoreError` `OVER_QUOTA`; SMTP answers `552 5.2.2`, IMAP `NO [OVERQUOTA]`) and reports it (IMAP QUOTA).
 */
export interface QuotaReporting {
  /** The user's usage and limit, or undefined when the user has no limit. */
  quota(username: string): Promise<QuotaUsage | undefined>;
}

/** True when `store` offers {@link QuotaReporting}. */
export function supportsQuota<S extends MailStore>(store: S): store is S & QuotaReporting {
  return typeof (store as Partial<QuotaReporting>).quota === 'function';
}
