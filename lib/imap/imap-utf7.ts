/**
 * Modified UTF-7 for mailbox names (RFC 3501 §5.1.3).
 *
 * IMAP4rev1 clients send and expect mailbox names in this encoding. After `ENABLE UTF8=ACCEPT` (RFC 6855 §3)
 * or in IMAP4rev2 (RFC 9051 §5.1) names travel as raw UTF-8 and these functions are not used. The Maildir store
 * uses the same codec for its folder names on disk (`lib/backends/maildir/maildir-names.ts`).
 */

const AMP = 0x26;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Modified BASE64 of RFC 3501 §5.1.3: RFC 2045 base64 with `,` instead of `/` and no padding. */
function toModifiedBase64(units: number[]): string {
  const bytes = Buffer.alloc(units.length * 2);
  units.forEach((u, i) => bytes.writeUInt16BE(u, i * 2));
  return bytes.toString('base64').replace(/=+$/, '').replace(/\//g, ',');
}

/**
 * Encodes a Unicode mailbox name to modified UTF-7. Printable US-ASCII (0x20–0x7e) stays as is, `&` becomes
 * `&-`, everything else is UTF-16BE in modified BASE64 between `&` and `-`. Characters in `alsoEncode` are
 * base64-encoded too although printable (the Maildir store encodes `.`, its folder separator, so that every IMAP
 * name round-trips; RFC 3501 §5.1.3 forbids that on the wire, so IMAP never passes it).
 */
export function encodeMailboxName(name: string, alsoEncode = ''): string {
  let out = '';
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length > 0) out += `&${toModifiedBase64(pending)}-`;
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    if (unit >= 0x20 && unit <= 0x7e && !alsoEncode.includes(name[i])) {
      flush();
      out += unit === AMP ? '&-' : name[i];
    } else {
      pending.push(unit);
    }
  }
  flush();
  return out;
}

/**
 * Lenient decoding for names read from disk (Maildir++ folder names written by us, Courier or Dovecot): each
 * `&…-` run is decoded as UTF-16BE, `&-` is `&`, and a run that does not decode to whole UTF-16 units is kept
 * verbatim. Encoded printable ASCII is accepted (see `alsoEncode` of {@link encodeMailboxName}). Never throws.
 */
export function decodeMailboxNameLenient(encoded: string): string {
  return encoded.replace(/&([^-]*)-/g, (whole, run: string) => {
    if (run.length === 0) return '&';
    const bytes = Buffer.from(run.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0) return whole;
    return Buffer.from(bytes).swap16().toString('utf16le');
  });
}

/** Thrown by {@link decodeMailboxName} for a name that is not valid modified UTF-7. */
export class MailboxNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MailboxNameError';
  }
}

/**
 * Decodes a modified UTF-7 mailbox name to Unicode. Throws {@link MailboxNameError} on malformed input:
 * unterminated `&`, characters outside the modified BASE64 alphabet, odd octet counts, non-zero padding bits,
 * encoded printable ASCII, or adjacent encoded runs (all forbidden by RFC 3501 §5.1.3, which keeps the
 * encoding canonical so two spellings never name one mailbox).
 */
export function decodeMailboxName(encoded: string): string {
  let out = '';
  let i = 0;
  let lastWasEncoded = false;
  while (i < encoded.length) {
    const c = encoded.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new MailboxNameError('8-bit or control character in mailbox name');
    if (c !== AMP) {
      out += encoded[i];
      i++;
      lastWasEncoded = false;
      continue;
    }
    const end = encoded.indexOf('-', i + 1);
    if (end < 0) throw new MailboxNameError('unterminated & sequence');
    const b64 = encoded.slice(i + 1, end);
    i = end + 1;
    if (b64.length === 0) {
      out += '&';
      lastWasEncoded = false;
      continue;
    }
    if (lastWasEncoded) throw new MailboxNameError('adjacent encoded sequences');
    if (!/^[A-Za-z0-9+,]+$/.test(b64)) throw new MailboxNameError('invalid modified BASE64');
    const bitCount = b64.length * 6;
    const byteCount = Math.floor(bitCount / 8);
    if (byteCount % 2 !== 0 || bitCount - byteCount * 8 >= 6) throw new MailboxNameError('truncated UTF-16');
    const std = b64.replace(/,/g, '/');
    const bytes = Buffer.from(std + '='.repeat((4 - (std.length % 4)) % 4), 'base64');
    if (bytes.length !== byteCount) throw new MailboxNameError('invalid modified BASE64');
    if (Buffer.from(bytes).toString('base64').replace(/=+$/, '') !== std) {
      throw new MailboxNameError('non-zero padding bits');
    }
    for (let j = 0; j < bytes.length; j += 2) {
      const unit = bytes.readUInt16BE(j);
      if (unit >= 0x20 && unit <= 0x7e) throw new MailboxNameError('printable ASCII must not be encoded');
      out += String.fromCharCode(unit);
    }
    lastWasEncoded = true;
  }
  if (LONE_SURROGATE.test(out)) throw new MailboxNameError('unpaired surrogate');
  return out;
}
