/**
 * FETCH items of OBJECTID (RFC 8474 §5: EMAILID, THREADID) and SAVEDATE (RFC 8514 §3). They are answered by the FETCH
 * command from the store's {@link MessageIdentity}, beside the RFC 3501 items that `imap-fetch.ts` builds.
 */
import { hasMessageIdentity, type StoredMessage } from '../contracts/mail-store.js';
import { atom, formatInternalDate, type ImapResponseValue } from './imap-format.js';

/** The extension FETCH items, as the client names them (upper case). */
export const OBJECT_FETCH_ITEMS = ['EMAILID', 'THREADID', 'SAVEDATE'] as const;
/** One of {@link OBJECT_FETCH_ITEMS}. */
export type ObjectFetchItem = (typeof OBJECT_FETCH_ITEMS)[number];

/**
 * `EMAILID (M…)`, `THREADID (T…)` or `THREADID NIL` (the store does not thread), `SAVEDATE "date-time"` or
 * `SAVEDATE NIL` (unknown save date): RFC 8474 §5.1–5.2, RFC 8514 §3. A message without identity answers NIL.
 */
export function objectFetchValues(message: StoredMessage, items: readonly ObjectFetchItem[]): ImapResponseValue[] {
  const identity = hasMessageIdentity(message) ? message : undefined;
  return items.flatMap((item): ImapResponseValue[] => {
    switch (item) {
      case 'EMAILID':
        return [atom('EMAILID'), identity ? [atom(identity.emailId)] : null];
      case 'THREADID':
        return [atom('THREADID'), identity?.threadId !== undefined ? [atom(identity.threadId)] : null];
      case 'SAVEDATE':
        return [atom('SAVEDATE'), identity?.saveDate !== undefined ? formatInternalDate(identity.saveDate) : null];
    }
  });
}
