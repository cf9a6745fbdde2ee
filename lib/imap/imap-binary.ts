/**
 * APPEND of binary content (RFC 3516 §4.1): a message sent as `literal8` may have parts whose
 * Content-Transfer-Encoding is `binary` (octets of any value, NUL included). They are stored re-encoded as base64
 * so that every later BODY[] stays valid RFC 5322 text, while BINARY[] still returns the original octets.
 */
import { headerValue, parseMime, type MimePart } from './imap-mime.js';

/** Base64 line length of RFC 2045 §6.8 (at most 76 characters per line). */
const BASE64_LINE = 76;

function leaves(part: MimePart, out: MimePart[]): MimePart[] {
  if (part.children.length > 0) for (const c of part.children) leaves(c, out);
  else if (part.message) leaves(part.message, out);
  else out.push(part);
  return out;
}

function base64Lines(data: Buffer): string {
  const text = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += BASE64_LINE) lines.push(text.slice(i, i + BASE64_LINE));
  return lines.join('\r\n') + (lines.length > 0 ? '\r\n' : '');
}

/**
 * The message with every `Content-Transfer-Encoding: binary` leaf part re-encoded as base64 (header field rewritten,
 * body replaced); the input itself when there is none.
 */
export function encodeBinaryParts(raw: Buffer): Buffer {
  const binary = leaves(parseMime(raw), []).filter((p) => headerValue(p.fields, 'content-transfer-encoding')?.trim().toLowerCase() === 'binary');
  if (binary.length === 0) return raw;
  const pieces: Buffer[] = [];
  let pos = 0;
  for (const part of binary.sort((a, b) => a.start - b.start)) {
    const header = raw.subarray(part.start, part.bodyStart).toString('latin1');
    const rewritten = header.replace(/^Content-Transfer-Encoding:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*/im, 'Content-Transfer-Encoding: base64');
    pieces.push(raw.subarray(pos, part.start), Buffer.from(rewritten, 'latin1'), Buffer.from(base64Lines(raw.subarray(part.bodyStart, part.end)), 'latin1'));
    pos = part.end;
  }
  pieces.push(raw.subarray(pos));
  return Buffer.concat(pieces);
}
