/**
 * Content decoding for SEARCH text matching and FETCH BINARY: transfer encodings (RFC 2045 §6), charsets, and
 * RFC 2047 encoded-words (via libmime, which nodemailer and mailparser use for the same job).
 */
import { createRequire } from 'node:module';
import { headerValue, type MimePart } from './imap-mime.js';

/**
 * Decodes a body from its Content-Transfer-Encoding. Returns undefined for an unknown encoding
 * (FETCH BINARY answers `NO [UNKNOWN-CTE]`, RFC 3516 §4.3). 7bit/8bit/binary are identity.
 */
export function decodeTransferEncoding(body: Buffer, encoding: string | undefined): Buffer | undefined {
  switch ((encoding ?? '7bit').trim().toLowerCase()) {
    case '7bit':
    case '8bit':
    case 'binary':
    case '':
      return body;
    case 'base64':
      return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return undefined;
  }
}

/** RFC 2045 §6.7: `=XX` escapes, soft line breaks `=` CRLF, trailing whitespace before a line end dropped. */
export function decodeQuotedPrintable(body: Buffer): Buffer {
  const out = Buffer.alloc(body.length);
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 0x3d) {
      const hex = body.toString('latin1', i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out[n++] = parseInt(hex, 16);
        i += 2;
        continue;
      }
      let j = i + 1;
      while (body[j] === 0x20 || body[j] === 0x09) j++;
      if (body[j] === 0x0d && body[j + 1] === 0x0a) {
        i = j + 1;
        continue;
      }
      if (body[j] === 0x0a) {
        i = j;
        continue;
      }
    }
    if (b === 0x20 || b === 0x09) {
      let j = i;
      while (body[j] === 0x20 || body[j] === 0x09) j++;
      if (j >= body.length || body[j] === 0x0d || body[j] === 0x0a) {
        i = j - 1;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/** Decodes octets in a MIME charset to a string; unknown charsets fall back to UTF-8 (WHATWG Encoding labels). */
export function decodeCharset(data: Buffer, charset: string | undefined): string {
  const label = (charset ?? 'utf-8').trim().toLowerCase() || 'utf-8';
  try {
    return new TextDecoder(label).decode(data);
  } catch {
    return data.toString('utf8');
  }
}

/** libmime, loaded on first use (synchronously, its CommonJS build): `import 'postern'` stays fast. */
let libmime: { decodeWords(value: string): string } | undefined;

/** Decodes RFC 2047 encoded-words in an unfolded header value. Never throws; undecodable words stay as written. */
export function decodeHeaderWords(value: string): string {
  if (!value.includes('=?')) return value; // RFC 2047 §2: every encoded-word starts with "=?"
  try {
    libmime ??= createRequire(import.meta.url)('libmime') as { decodeWords(value: string): string };
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/**
 * The decoded text of every `text/*` leaf of the tree, in document order (SEARCH BODY/TEXT, RFC 3501 §6.4.4).
 * Embedded messages are included with their headers decoded.
 */
export function decodedBodyText(root: MimePart, raw: Buffer): string {
  const out: string[] = [];
  const visit = (part: MimePart): void => {
    if (part.message) {
      out.push(part.message.fields.map((f) => `${f.name}: ${decodeHeaderWords(f.value)}`).join('\n'));
      visit(part.message);
    } else if (part.children.length > 0) {
      part.children.forEach(visit);
    } else if (part.type === 'text') {
      const body = raw.subarray(part.bodyStart, part.end);
      const decoded = decodeTransferEncoding(body, headerValue(part.fields, 'content-transfer-encoding')) ?? body;
      const charset = part.contentType?.params.find(([k]) => k === 'charset')?.[1];
      out.push(decodeCharset(decoded, charset));
    }
  };
  visit(root);
  return out.join('\n');
}
