import { isMailStoreError, type MailStore } from '../contracts/mail-store.js';

/**
 * The folders every user of the `postern` command gets (RFC 6154 §2 special uses: `\Drafts`, `\Sent`, `\Junk`,
 * `\Trash`, `\Archive`; IMAP LIST marks them by these names), so mail clients find them without creating their own.
 */
export const DEFAULT_FOLDERS = ['Drafts', 'Sent', 'Junk', 'Trash', 'Archive'] as const;

/**
 * Creates the {@link DEFAULT_FOLDERS} each user lacks; existing ones are left alone, so it is safe at every start.
 * @throws whatever the store throws other than `ALREADY_EXISTS`.
 */
export async function createDefaultFolders(store: MailStore, usernames: readonly string[]): Promise<void> {
  for (const username of usernames) {
    const view = await store.openUser(username);
    try {
      const existing = new Set((await view.list()).map((b) => b.name));
      for (const folder of DEFAULT_FOLDERS) {
        if (existing.has(folder)) continue;
        await view.create(folder).catch((err: unknown) => {
          if (!isMailStoreError(err, 'ALREADY_EXISTS')) throw err;
        });
      }
    } finally {
      await view.release();
    }
  }
}
