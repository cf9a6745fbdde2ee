import { SmtpReplyError } from './smtp-replies.js';

/** RFC 5321 §4.5.3.1.1: local-part ≤ 64 octets. */
export const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 5321 §4.5.3.1.2: domain ≤ 255 octets. */
export const MAX_DOMAIN_OCTETS = 255;

const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-";
const ASCII_ATOM = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
// RFC 6531 §3.3: with SMTPUTF8, atext and sub-domains may also hold UTF-8 (non-ASCII) characters.
const UTF8_ATOM = new RegExp(`^[${ATEXT}\\u0080-\\u{10FFFF}]+(?:\\.[${ATEXT}\\u0080-\\u{10FFFF}]+)*$`, 'u');
const QUOTED = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;
const LABEL = /^(?:[A-Za-z0-9\u0080-\u{10FFFF}](?:[A-Za-z0-9\u0080-\u{10FFFF}-]*[A-Za-z0-9\u0080-\u{10FFFF}])?)$/u;
const ADDRESS_LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+|[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+)\]$/;
const PARAM = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$/;

/** An ASCII domain's labels (RFC 5321 §4.1.2 sub-domain = Let-dig [Ldh-str]), as {@link LABEL} accepts them. */
const ASCII_DOMAIN = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*';
/**
 * `FROM:` or `TO:` (any case, spaces allowed after the colon), then `<dot-atom@domain>` in ASCII and nothing after:
 * a subset of what the full parse accepts, giving the same address (no source route, no quoted local part, no
 * address literal, no parameters). Groups: the kind, the address, its local part, its domain.
 */
const PLAIN_PATH = new RegExp(`^(FROM|TO):(?: *)<(([${ATEXT}]+(?:\\.[${ATEXT}]+)*)@(${ASCII_DOMAIN}))>$`, 'i');
/** The parameters of a path without any (shared; {@link ParsedPath.params} is read-only). */
const NO_PARAMS: ReadonlyMap<string, string | true> = new Map();

/** True when the text holds a character outside US-ASCII. */
export function isNonAscii(text: string): boolean {
  return /[^\x00-\x7f]/.test(text);
}

/** A parsed MAIL/RCPT argument: the path and its ESMTP parameters (keys upper-cased). */
export interface ParsedPath {
  /** `local@domain` without brackets (source route dropped), `''` for `<>`. */
  readonly address: string;
  readonly params: ReadonlyMap<string, string | true>;
}

/**
 * Parses `FROM:<path> [params]` or `TO:<path> [params]` (RFC 5321 §4.1.1.2-3, §4.1.2). A space after the colon is
 * tolerated (common client habit). The null path `<>` is allowed for MAIL only; `<postmaster>` for RCPT only.
 * A source route (`<@a,@b:user@c>`) is accepted and ignored (RFC 5321 §4.1.1.3, appendix C).
 * @throws SmtpReplyError 501 5.5.4 for a bad shape, 501 5.1.7 / 5.1.3 for a bad sender / recipient address
 *   (counted against the error budget).
 */
export function parsePath(args: string, kind: 'FROM' | 'TO'): ParsedPath {
  // The common shape (`FROM:<local@domain>` in plain ASCII, no parameters) in one regex test (issue 15: per message).
  const plain = PLAIN_PATH.exec(args);
  if (plain !== null && plain[1].toUpperCase() === kind && plain[3].length <= MAX_LOCAL_PART_OCTETS && plain[4].length <= MAX_DOMAIN_OCTETS) {
    return { address: plain[2], params: NO_PARAMS };
  }
  const bad = (text: string): SmtpReplyError =>
    new SmtpReplyError(501, kind === 'FROM' ? '5.1.7' : '5.1.3', text, true);
  const prefix = kind + ':';
  if (args.slice(0, prefix.length).toUpperCase() !== prefix) throw new SmtpReplyError(501, '5.5.4', `Syntax: ${kind === 'FROM' ? 'MAIL FROM:<address>' : 'RCPT TO:<address>'}`, true);
  const rest = args.slice(prefix.length).replace(/^ +/, '');
  if (!rest.startsWith('<')) throw bad('Address must be enclosed in <>');
  const end = closingBracket(rest);
  if (end === -1) throw bad('Unterminated address');
  let path = rest.slice(1, end);
  const tail = rest.slice(end + 1);
  if (tail.length > 0 && !tail.startsWith(' ')) throw bad('Bad address syntax');
  const params = parseParams(tail.trim());
  const route = /^@[^:]+:/.exec(path);
  if (route) path = path.slice(route[0].length);
  if (path === '') {
    if (kind === 'FROM' && !route) return { address: '', params };
    throw bad('Empty address not allowed here');
  }
  if (kind === 'TO' && /^postmaster$/i.test(path)) return { address: path, params };
  checkMailbox(path, bad);
  return { address: path, params };
}

function closingBracket(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '>') return i;
    else if (!quoted && c === '<') return -1;
  }
  return -1;
}

function checkMailbox(mailbox: string, bad: (text: string) => SmtpReplyError): void {
  const at = mailbox.lastIndexOf('@');
  if (at <= 0) throw bad('Address needs a domain');
  const local = mailbox.slice(0, at);
  const domain = mailbox.slice(at + 1);
  if (Buffer.byteLength(local) > MAX_LOCAL_PART_OCTETS) throw bad('Local part too long');
  if (Buffer.byteLength(domain) > MAX_DOMAIN_OCTETS) throw bad('Domain too long');
  const atomOk = isNonAscii(local) ? UTF8_ATOM.test(local) : ASCII_ATOM.test(local);
  if (!atomOk && !QUOTED.test(local)) throw bad('Bad local part syntax');
  if (domain.startsWith('[')) {
    if (!ADDRESS_LITERAL.test(domain)) throw bad('Bad address literal');
  } else if (domain === '' || !domain.split('.').every((l) => LABEL.test(l))) {
    throw bad('Bad domain syntax');
  }
}

/**
 * Parses ESMTP parameters `KEY[=VALUE] …` (RFC 5321 §4.1.2 esmtp-param).
 * @throws SmtpReplyError 501 5.5.4 for a malformed or repeated parameter.
 */
export function parseParams(text: string): Map<string, string | true> {
  const params = new Map<string, string | true>();
  if (text === '') return params;
  for (const p of text.split(/ +/)) {
    const m = PARAM.exec(p);
    if (!m) throw new SmtpReplyError(501, '5.5.4', 'Bad parameter syntax', true);
    const key = m[1].toUpperCase();
    if (params.has(key)) throw new SmtpReplyError(501, '5.5.4', `Duplicate parameter ${key}`, true);
    params.set(key, m[2] ?? true);
  }
  return params;
}

/** Decodes xtext (RFC 3461 §4, used by AUTH= in RFC 4954 §5). @throws SmtpReplyError 501 5.5.4 for a bad escape. */
export function decodeXtext(text: string): string {
  return text.replace(/\+([0-9A-F]{2})|\+/g, (_all, hex: string | undefined) => {
    if (hex === undefined) throw new SmtpReplyError(501, '5.5.4', 'Bad xtext encoding', true);
    return String.fromCharCode(parseInt(hex, 16));
  });
}

/** The domain of an address (lower-cased), `''` for none (`postmaster`, `<>`). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}
