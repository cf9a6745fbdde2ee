/**
 * The MIME splitter FETCH, SEARCH and BODYSTRUCTURE work on. It lives in `lib/mime/` so that stores can parse
 * and cache the same structure (see `CachedStructure` in the mail-store contract); re-exported here for the
 * IMAP layer, with the part numbering of FETCH sections.
 */
export * from '../mime/mime-parse.js';
import type { MimePart } from '../mime/mime-parse.js';

/** Finds the part for a numeric path (RFC 3501 §6.4.5 part numbering); undefined when it does not exist. */
export function findPart(root: MimePart, path: readonly number[]): MimePart | undefined {
  let cur = root;
  let atMessage = true;
  for (const n of path) {
    if (!atMessage && cur.message) {
      cur = cur.message;
      atMessage = true;
    }
    if (cur.children.length > 0) {
      const child = cur.children[n - 1];
      if (!child) return undefined;
      cur = child;
    } else if (!(atMessage && n === 1)) {
      return undefined;
    }
    atMessage = false;
  }
  return cur;
}
