/**
 * The MIME splitter FETCH, SEARCH and BODYSTRUCTURE work on. It lives in `lib/mime/` so that stores can parse
 * and cache the same structure (see `CachedStructure` in the mail-store contract); re-exported here for the
 * IMAP layer.
 */
export * from '../mime/mime-parse.js';
