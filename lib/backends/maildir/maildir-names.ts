import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { decodeMailboxNameLenient, encodeMailboxName } from '../../imap/imap-utf7.js';
import { INBOX, SEPARATOR } from '../shared/mailbox-names.js';

/**
 * Encodes one hierarchy level as a Maildir++ folder component: modified UTF-7 (RFC 3501 §5.1.3), as Courier and
 * Dovecot store names on disk, except that `.` (the Maildir++ separator) is also base64-encoded (`&AC4-`) so that
 * any IMAP name round-trips.
 */
export function encodeLevel(level: string): string {
  return encodeMailboxName(level, '.');
}

/** Inverse of {@link encodeLevel}; undecodable runs are kept verbatim. */
export function decodeLevel(encoded: string): string {
  return decodeMailboxNameLenient(encoded);
}

/** The folder directory name of a mailbox below the user's Maildir (`''` for INBOX, `.Sent`, `.Work.2024`…). */
export function folderDirName(mailbox: string): string {
  if (mailbox === INBOX) return '';
  return '.' + mailbox.split(SEPARATOR).map(encodeLevel).join('.');
}

/** The mailbox name of a Maildir++ folder directory (`.Work.2024` → `Work/2024`), or undefined if it is not one. */
export function mailboxOfDirName(dirName: string): string | undefined {
  if (!dirName.startsWith('.') || dirName === '.' || dirName === '..') return undefined;
  const levels = dirName.slice(1).split('.');
  if (levels.some((level) => level.length === 0)) return undefined;
  return levels.map(decodeLevel).join(SEPARATOR);
}

/**
 * A file-system-safe directory name for a username: letters, digits and `@ _ + - .` stay, anything else becomes
 * `%XX` (UTF-8), and a leading `.` is escaped so that no user directory is hidden or special.
 */
export function userDirName(username: string): string {
  const encoded = [...Buffer.from(username, 'utf8')]
    .map((byte) => {
      const ch = String.fromCharCode(byte);
      return /[A-Za-z0-9@_+.-]/.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    })
    .join('');
  return encoded.startsWith('.') ? '%2E' + encoded.slice(1) : encoded;
}

// Maildir info flags (https://cr.yp.to/proto/maildir.html) ↔ IMAP system flags (RFC 3501 §2.3.2). `P` (passed)
// has no IMAP flag and lower-case letters are other tools' keywords: both are kept on rename, never interpreted.
const LETTER_TO_FLAG: ReadonlyMap<string, string> = new Map([
  ['D', '\\Draft'],
  ['F', '\\Flagged'],
  ['R', '\\Answered'],
  ['S', '\\Seen'],
  ['T', '\\Deleted'],
]);
const FLAG_TO_LETTER: ReadonlyMap<string, string> = new Map([...LETTER_TO_FLAG].map(([letter, flag]) => [flag, letter]));

/** The `:2,` separator between a Maildir unique name and its info. */
export const INFO_SEPARATOR = ':2,';

/** Splits a file name of `cur/` or `new/` into its unique base name and info letters. */
export function parseFileName(file: string): { base: string; letters: string } {
  const at = file.indexOf(INFO_SEPARATOR);
  return at < 0 ? { base: file, letters: '' } : { base: file.slice(0, at), letters: file.slice(at + INFO_SEPARATOR.length) };
}

/** IMAP system flags of info letters. */
export function flagsOfLetters(letters: string): string[] {
  return [...letters].flatMap((letter) => {
    const flag = LETTER_TO_FLAG.get(letter);
    return flag === undefined ? [] : [flag];
  });
}

/** Info letters for a flag set, keeping letters we do not interpret; sorted by ASCII as the Maildir spec requires. */
export function lettersOfFlags(flags: Iterable<string>, keep = ''): string {
  const letters = new Set([...keep].filter((letter) => !LETTER_TO_FLAG.has(letter)));
  for (const flag of flags) {
    const letter = FLAG_TO_LETTER.get(flag);
    if (letter !== undefined) letters.add(letter);
  }
  return [...letters].sort().join('');
}

const HOST = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
let counter = 0;

/**
 * A new unique Maildir base name `<sec>.M<usec>P<pid>Q<n>R<rand>.<host>,S=<size>` (the modern form described at
 * https://cr.yp.to/proto/maildir.html, plus Courier's `,S=` size hint).
 */
export function uniqueBaseName(size: number, now = Date.now()): string {
  const seconds = Math.floor(now / 1000);
  const micros = (now % 1000) * 1000;
  const rand = randomBytes(4).toString('hex');
  return `${seconds}.M${micros}P${process.pid}Q${++counter}R${rand}.${HOST},S=${size}`;
}

/**
 * When a message file was saved (RFC 8514 SAVEDATE): the time its unique base name starts with
 * (`<sec>.M<usec>…` from {@link uniqueBaseName}, or `<sec>.…` as other Maildir writers name files); undefined when the
 * name does not start with a time.
 */
export function saveDateOfBaseName(base: string): Date | undefined {
  const m = /^(\d{1,12})\.(?:M(\d{1,6})P)?/.exec(base);
  if (!m) return undefined;
  return new Date(Number(m[1]) * 1000 + (m[2] === undefined ? 0 : Math.floor(Number(m[2]) / 1000)));
}
