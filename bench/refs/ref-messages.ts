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
