/** Test messages for the IMAP FETCH/SEARCH specs, with CRLF line ends. Sizes in the specs are counted by hand. */
import type { StoredMessage } from '../../lib/contracts/mail-store.js';

/** Joins lines with CRLF (every line, including the last, gets one). */
export function crlf(...lines: string[]): Buffer {
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
}

/** A StoredMessage over fixed octets. */
export function stored(raw: Buffer, uid = 1, flags: string[] = [], internalDate = new Date(Date.UTC(2024, 0, 15, 10, 0, 0))): StoredMessage {
  return { uid, internalDate, size: raw.length, flags: new Set(flags), modseq: uid, raw: () => Promise.resolve(raw) };
}

/** No Content-Type: text/plain; us-ascii; body "Hi Bob,\r\nbye\r\n" (14 octets, 2 lines). */
export const SIMPLE = crlf(
  'From: Alice <alice@example.com>',
  'To: bob@example.com',
  'Subject: Hello',
  'Date: Mon, 7 Feb 1994 21:52:25 -0800',
  'Message-ID: <1@example.com>',
  '',
  'Hi Bob,',
  'bye',
);

/** multipart/alternative with RFC 2047 From and Subject (Subject decodes to "Grüße"). */
export const ALTERNATIVE = crlf(
  'From: =?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.de>',
  'To: "Doe, Jane" <jane@example.com>, bob@example.com',
  'Subject: =?UTF-8?B?R3LDvMOfZQ==?=',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary="b1"',
  '',
  'preamble',
  '--b1',
  'Content-Type: text/plain; charset=UTF-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Gr=C3=BC=C3=9Fe aus K=C3=B6ln',
  '',
  '--b1',
  'Content-Type: text/html; charset=UTF-8',
  '',
  '<p>Hi</p>',
  '',
  '--b1--',
);

/** multipart/mixed holding a multipart/alternative and a base64 PDF with every extension field. */
export const NESTED = crlf(
  'From: a@example.com',
  'Subject: nested',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary=outer',
  '',
  '--outer',
  'Content-Type: multipart/alternative; boundary=inner',
  '',
  '--inner',
  'Content-Type: text/plain',
  '',
  'plain',
  '',
  '--inner',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<b>html</b>',
  '',
  '--inner--',
  '',
  '--outer',
  'Content-Type: application/pdf; name="doc.pdf"',
  'Content-Disposition: attachment; filename="doc.pdf"',
  'Content-Transfer-Encoding: base64',
  'Content-ID: <pdf1@example.com>',
  'Content-Description: The doc',
  'Content-Language: en, de',
  'Content-Location: http://example.com/doc.pdf',
  'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==',
  '',
  'JVBERi0xLjQK',
  '--outer--',
);

/** multipart/mixed with a text part and a message/rfc822 attachment. */
export const FORWARD = crlf(
  'From: a@example.com',
  'Subject: fwd',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="m"',
  '',
  '--m',
  'Content-Type: text/plain; charset=us-ascii',
  '',
  'see attached',
  '--m',
  'Content-Type: message/rfc822',
  '',
  'From: Carol <carol@example.org>',
  'Subject: inner',
  '',
  'inner body',
  '--m--',
);
