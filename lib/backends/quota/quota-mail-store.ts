/**
 * A storage quota around any {@link MailStore}: `withQuota(store, options)` returns the same store (every optional
 * capability of it still there) with delivery, APPEND and COPY checked against the user's limit, plus
 * {@link QuotaReporting}. Usage is the sum of message sizes over the user's mailboxes, counted when needed.
 */
import { MailStoreError, type MailStore, type UserMailboxes } from '../../contracts/mail-store.js';
import type { QuotaOptions, QuotaReporting, QuotaUsage } from '../../contracts/quota.js';

/** Octets stored by the user of `view`. */
export async function storageUsed(view: UserMailboxes): Promise<number> {
  let used = 0;
  for (const box of await view.list()) {
    if (box.noselect) continue;
    for (const m of await view.messages(box.name, { peek: true })) used += m.size;
  }
  return used;
}

function limitOf(options: QuotaOptions, username: string): number | undefined {
  return options.users && Object.hasOwn(options.users, username) ? options.users[username] : options.storage;
}

function refuse(): MailStoreError {
  return new MailStoreError('OVER_QUOTA', 'Storage quota exceeded');
}

/** The user's view with APPEND and COPY checked against `limit`. MOVE within the user changes no usage. */
function limitedView(view: UserMailboxes, limit: number): UserMailboxes {
  return new Proxy(view, {
    get(target, prop, receiver) {
      if (prop === 'append') {
        return async (...args: Parameters<UserMailboxes['append']>) => {
          if ((await storageUsed(target)) + args[1].length > limit) throw refuse();
          return target.append(...args);
        };
      }
      if (prop === 'copy') {
        return async (from: string, uids: number[], to: string) => {
          const wanted = new Set(uids);
          const adding = (await target.messages(from, { peek: true })).filter((m) => wanted.has(m.uid)).reduce((n, m) => n + m.size, 0);
          if ((await storageUsed(target)) + adding > limit) throw refuse();
          return target.copy(from, uids, to);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Wraps `store` so that it enforces `options`. Who calls: `createContainer` when `config.quota` is set.
 * @returns a proxy of `store` that also implements {@link QuotaReporting}.
 */
export function withQuota<S extends MailStore>(store: S, options: QuotaOptions): S & QuotaReporting {
  const quota = async (username: string): Promise<QuotaUsage | undefined> => {
    const limit = limitOf(options, username);
    if (limit === undefined) return undefined;
    const view = await store.openUser(username);
    try {
      return { used: await storageUsed(view), limit };
    } finally {
      await view.release();
    }
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'quota') return quota;
      if (prop === 'deliver') {
        return async (...args: Parameters<MailStore['deliver']>) => {
          const username = await target.users.findByAddress(args[0]);
          const usage = username === undefined ? undefined : await quota(username);
          if (usage && usage.used + args[1].length > usage.limit) throw refuse();
          return target.deliver(...args);
        };
      }
      if (prop === 'openUser') {
        return async (username: string) => {
          const view = await target.openUser(username);
          const limit = limitOf(options, view.username);
          return limit === undefined ? view : limitedView(view, limit);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as S & QuotaReporting;
}
