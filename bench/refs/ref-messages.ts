/**
 * Messages for the reference benchmarks: the same octets go to Postern (delivered) and to the references
 * (Postfix by SMTP, Dovecot as Maildir files), so every server stores and serves identical mail.
 */
import { randomBytes } from 'node:crypto';

/**
 * Message number `i` of about `size` octets: a realistic header block (From with a display name, To, Cc, Date,
 * Subject, Message-ID, In-Reply-To) so that ENVELOPE has work to do, then base64 text lines of 76 characters with
 * CRLF (RFC 2045 §6.8), so no line starts with a dot. Ends with CRLF.
 */
export function refMessage(i: number, size: number): Buffer {
  const head =
    `From: "Bob Example" <bob@example.com>\r\nTo: "Alice" <alice@example.com>\r\nCc: carol@example.net\r\n` +
    `Date: Mon, 1 Jan 2024 ${String(10 + (Math.floor(i / 3600) % 12)).padStart(2, '0')}:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000\r\n` +
    `Subject: bench message ${i}\r\nMessage-ID: <m${i}.bench@example.com>\r\n` +
    (i > 0 ? `In-Reply-To: <m${i - 1}.bench@example.com>\r\n` : '') +
    'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const lines = Math.max(1, Math.ceil((size - head.length) / 78));
  const b64 = randomBytes(Math.ceil((lines * 76 * 3) / 4)).toString('base64');
  const body = Buffer.allocUnsafe(lines * 78);
  for (let l = 0; l < lines; l++) {
    body.write(b64.slice(l * 76, l * 76 + 76).padEnd(76, 'A'), l * 78, 'latin1');
    body.write('\r\n', l * 78 + 76, 'latin1');
  }
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/**
 * Message number `i` as mail with an attachment: {@link refMessage}'s header as multipart/mixed, a short text part,
 * then an application/octet-stream part of about `size` octets (base64 lines). What a message list meets in a
 * mailbox of reports and photos: a small header in front of a large body.
 */
export function refMessageWithAttachment(i: number, size: number): Buffer {
  const plain = refMessage(i, size);
  const headEnd = plain.indexOf('\r\n\r\n') + 4;
  const head = plain
    .subarray(0, headEnd)
    .toString('latin1')
    .replace(/Content-Type: text\/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n/, 'Content-Type: multipart/mixed; boundary="part"\r\n');
  const text = `--part\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nReport ${i} attached.\r\n--part\r\n`;
  const attachment = `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="report-${i}.bin"\r\n\r\n`;
  return Buffer.concat([Buffer.from(head + text + attachment, 'latin1'), plain.subarray(headEnd), Buffer.from('--part--\r\n', 'latin1')]);
}

/** `count` messages of about `size` octets each. */
export function refMessages(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => refMessage(i, size));
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
