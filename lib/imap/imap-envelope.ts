/**
 * ENVELOPE (RFC 3501 §7.4.2, RFC 9051 §7.5.2) from a parsed header.
 *
 * Values are the header text as stored: RFC 2047 encoded-words are NOT decoded, exactly as Dovecot, Cyrus and
 * UW-IMAP send them; clients decode them (decoding server-side would turn ASCII into 8-bit and force literals on
 * IMAP4rev1 clients). Display names lose their quoting, address parts are split per RFC 5322 §3.4.
 */
import { concat, type ImapResponseValue } from './imap-format.js';
import { headerValue, type HeaderField } from './imap-mime.js';

/** One address: `name`, `adl` (source route, RFC 5322 §4.4 obs-route, e.g. `@route`), `mailbox`, `host`. Groups use NIL markers. */
export type EnvelopeAddress = readonly [string | null, string | null, string | null, string | null];

interface Token {
  readonly kind: 'atom' | 'quoted' | 'comment' | 'angle' | 'special';
  readonly text: string;
}

function lexAddresses(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        text += s[i];
        i++;
      }
      i++;
      tokens.push({ kind: 'quoted', text });
    } else if (c === '(') {
      let depth = 1;
      let text = '';
      i++;
      while (i < s.length && depth > 0) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        else if (s[i] === '(') depth++;
        else if (s[i] === ')' && --depth === 0) break;
        text += s[i];
        i++;
      }
      i++;
      tokens.push({ kind: 'comment', text });
    } else if (c === '<') {
      const close = s.indexOf('>', i);
      const stop = close < 0 ? s.length : close;
      tokens.push({ kind: 'angle', text: s.slice(i + 1, stop).trim() });
      i = stop + 1;
    } else if (',:;@'.includes(c)) {
      tokens.push({ kind: 'special', text: c });
      i++;
    } else {
      let j = i;
      while (j < s.length && !' \t\r\n"(<,:;@'.includes(s[j])) j++;
      tokens.push({ kind: 'atom', text: s.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

function phrase(tokens: readonly Token[]): string | null {
  const words = tokens.filter((t) => t.kind === 'atom' || t.kind === 'quoted').map((t) => t.text);
  return words.length > 0 ? words.join(' ') : null;
}

/** Splits `[@route,@route:]local@domain` into source route (or null), local part and domain. */
function splitAddrSpec(spec: string): [string | null, string, string] {
  const route = spec.startsWith('@') ? spec.lastIndexOf(':') : -1;
  const bare = route >= 0 ? spec.slice(route + 1) : spec;
  const at = bare.lastIndexOf('@');
  const adl = route > 0 ? spec.slice(0, route) : null;
  return at < 0 ? [adl, bare, ''] : [adl, bare.slice(0, at), bare.slice(at + 1)];
}

/** The text inside `<…>` without comments and folding white space (`<user (c)@ (c) host>` is `user@host`). */
function angleSpec(inner: string): string {
  return lexAddresses(inner)
    .filter((t) => t.kind !== 'comment')
    .map((t) => (t.kind === 'quoted' ? `"${t.text.replace(/(["\\])/g, '\\$1')}"` : t.text))
    .join('');
}

function toAddress(tokens: readonly Token[]): EnvelopeAddress | undefined {
  if (tokens.length === 0) return undefined;
  const angleAt = tokens.findIndex((t) => t.kind === 'angle');
  if (angleAt >= 0) {
    const [adl, mailbox, host] = splitAddrSpec(angleSpec(tokens[angleAt].text));
    return [phrase(tokens.slice(0, angleAt)), adl, mailbox, host];
  }
  const spec = tokens
    .filter((t) => t.kind !== 'comment')
    .map((t) => (t.kind === 'quoted' ? `"${t.text.replace(/(["\\])/g, '\\$1')}"` : t.text))
    .join('');
  if (spec === '') return undefined;
  const comment = tokens.find((t) => t.kind === 'comment');
  const [adl, mailbox, host] = splitAddrSpec(spec);
  return [comment && comment.text.trim() !== '' ? comment.text.trim() : null, adl, mailbox, host];
}

/**
 * Parses an RFC 5322 §3.4 address-list into envelope addresses. Groups become
 * `(NIL NIL "name" NIL)` … `(NIL NIL NIL NIL)` (RFC 3501 §7.4.2). Lenient: unparseable entries are dropped.
 */
export function parseAddressList(value: string): EnvelopeAddress[] {
  const out: EnvelopeAddress[] = [];
  let buf: Token[] = [];
  let inGroup = false;
  const flush = (): void => {
    const addr = toAddress(buf);
    if (addr) out.push(addr);
    buf = [];
  };
  for (const t of lexAddresses(value)) {
    if (t.kind === 'special' && t.text === ':' && !inGroup) {
      out.push([null, null, phrase(buf) ?? '', null]);
      buf = [];
      inGroup = true;
    } else if (t.kind === 'special' && t.text === ';' && inGroup) {
      flush();
      out.push([null, null, null, null]);
      inGroup = false;
    } else if (t.kind === 'special' && t.text === ',') {
      flush();
    } else {
      buf.push(t);
    }
  }
  flush();
  if (inGroup) out.push([null, null, null, null]);
  return out;
}

/**
 * The addresses of a header value as searchable text, one `name <mailbox@host>` per address: SEARCH FROM/TO/CC/BCC
 * match these too, so comments and white space inside an address do not hide it (as Dovecot does).
 */
export function addressSearchText(value: string): string {
  return parseAddressList(value)
    .filter((a) => a[2] !== null && a[3] !== null)
    .map((a) => `${a[0] ?? ''} <${a[2]}@${a[3]}>`)
    .join(', ');
}

/** `env-from` etc.: `((…)(…))` with no space between addresses (RFC 3501 §9), or NIL. */
function addressField(fields: readonly HeaderField[], name: string): ImapResponseValue[] | null {
  const value = headerValue(fields, name);
  if (value === undefined) return null;
  const list = parseAddressList(value);
  return list.length > 0 ? [concat(list)] : null;
}

/**
 * Builds the ENVELOPE list: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id.
 * Sender and Reply-To default to From when absent or empty (RFC 3501 §7.4.2).
 */
export function buildEnvelope(fields: readonly HeaderField[]): ImapResponseValue[] {
  const text = (name: string): string | null => headerValue(fields, name) ?? null;
  const from = addressField(fields, 'from');
  return [
    text('date'),
    text('subject'),
    from,
    addressField(fields, 'sender') ?? from,
    addressField(fields, 'reply-to') ?? from,
    addressField(fields, 'to'),
    addressField(fields, 'cc'),
    addressField(fields, 'bcc'),
    text('in-reply-to'),
    text('message-id'),
  ];
}
