/**
 * BODYSTRUCTURE and ENVELOPE checked against oracles that are not our own hand-written strings:
 * the examples of RFC 3501 §7.4.2 (messages built to the sizes and line counts the RFC prints), and, for a set of MIME
 * shapes, the structure Python's `email` package computes from the raw octets compared with imapflow's parse of our
 * wire reply (two independent MIME parsers on either side of our server).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ImapFlow } from 'imapflow';
import { ALTERNATIVE, crlf, FORWARD, NESTED, SIMPLE } from './imap-messages.js';
import { ALICE, startImap, type ImapHarness } from './imap-harness.js';

const run = promisify(execFile);

async function hasPython(): Promise<boolean> {
  return run('python3', ['--version']).then(
    () => true,
    () => false,
  );
}

/**
 * Python's `email` package as the oracle: reads the messages (base64, one per line on stdin) and prints, per message,
 * a JSON object shaped like imapflow's parse of BODYSTRUCTURE plus the envelope fields. Sizes are the part's octets
 * as stored; lines are counted as LF characters (RFC 3501 §7.4.2 "size of the body in text lines", counted as Dovecot
 * does); a part without Content-Type is text/plain (RFC 2045 §5.2), and a text part without a charset is us-ascii
 * (RFC 2046 §4.1.2; Dovecot answers the same).
 */
const ORACLE = String.raw`
import base64, email, json, sys
from email import policy
from email.header import decode_header, make_header
from email.utils import getaddresses

CRLF = policy.compat32.clone(linesep='\r\n')

def params(part, header, skip_first):
    got = part.get_params(header=header) or []
    out = {}
    for k, v in got[1 if skip_first else 0:]:
        out[k.lower()] = v if isinstance(v, str) else email.utils.collapse_rfc2231_value(v)
    return out

def raw_body(part):
    # The octets as parsed: get_payload() would decode an 8bit part with its charset.
    return part._payload.encode('ascii', 'surrogateescape')

def node(part, path, in_digest=False):
    n = {}
    if path:
        n['part'] = '.'.join(str(p) for p in path)
    ctype = part.get_content_type()
    if part.get('content-type') is None:
        ctype = 'message/rfc822' if in_digest else 'text/plain'
    if part.is_multipart() and not ctype.startswith('message/'):
        n['childNodes'] = [node(c, path + [i + 1], ctype == 'multipart/digest') for i, c in enumerate(part.get_payload())]
        n['type'] = ctype
        p = params(part, 'content-type', True)
        if p:
            n['parameters'] = p
    else:
        n['type'] = ctype
        p = params(part, 'content-type', True)
        if ctype.startswith('text/') and 'charset' not in p:
            p = {'charset': 'us-ascii', **p}
        if p:
            n['parameters'] = p
        for key, header in (('id', 'content-id'), ('description', 'content-description')):
            if part.get(header) is not None:
                n[key] = str(part.get(header)).strip()
        n['encoding'] = str(part.get('content-transfer-encoding', '7bit')).strip().lower()
        if ctype == 'message/rfc822':
            inner = part.get_payload(0)
            body = inner.as_bytes(policy=CRLF)
            n['size'] = len(body)
            n['envelope'] = envelope(inner)
            n['childNodes'] = [node(inner, path)]
            n['lineCount'] = body.count(b'\n')
        else:
            body = raw_body(part)
            n['size'] = len(body)
            if ctype.startswith('text/'):
                n['lineCount'] = body.count(b'\n')
        if part.get('content-md5') is not None:
            n['md5'] = str(part.get('content-md5')).strip().lower()
    if part.get('content-disposition') is not None:
        n['disposition'] = part.get_content_disposition()
        dp = params(part, 'content-disposition', True)
        if dp:
            n['dispositionParameters'] = dp
    if part.get('content-language') is not None:
        n['language'] = [x.strip().lower() for x in str(part.get('content-language')).split(',')]
    if part.get('content-location') is not None:
        n['location'] = str(part.get('content-location')).strip()
    return n

def addresses(msg, header):
    values = msg.get_all(header)
    if not values:
        return None
    out = []
    for name, addr in getaddresses(values):
        out.append({'name': str(make_header(decode_header(name))) if name else '', 'address': addr})
    return out

def envelope(msg):
    e = {}
    if msg.get('subject') is not None:
        e['subject'] = str(make_header(decode_header(str(msg.get('subject')))))
    for key, header in (('from', 'from'), ('sender', 'sender'), ('replyTo', 'reply-to'), ('to', 'to'), ('cc', 'cc')):
        got = addresses(msg, header)
        if got is None and key in ('sender', 'replyTo'):
            got = addresses(msg, 'from')
        if got:
            e[key] = got
    for key, header in (('messageId', 'message-id'), ('inReplyTo', 'in-reply-to')):
        if msg.get(header) is not None:
            e[key] = str(msg.get(header)).strip()
    return e

out = []
for line in sys.stdin:
    msg = email.message_from_bytes(base64.b64decode(line), policy=policy.compat32)
    out.append({'structure': node(msg, []), 'envelope': envelope(msg)})
print(json.dumps(out))
`;

interface Oracle {
  structure: unknown;
  envelope: Record<string, unknown>;
}

async function pythonOracle(messages: Buffer[]): Promise<Oracle[]> {
  const child = execFile('python3', ['-c', ORACLE], { maxBuffer: 1 << 24 });
  const stdout: Buffer[] = [];
  child.stdout?.on('data', (d: Buffer | string) => stdout.push(Buffer.from(d)));
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (d: Buffer | string) => stderr.push(Buffer.from(d)));
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin?.end(messages.map((m) => m.toString('base64') + '\n').join(''));
  const code = await done;
  if (code !== 0) throw new Error(`python oracle exited ${code}: ${Buffer.concat(stderr).toString()}`);
  return JSON.parse(Buffer.concat(stdout).toString()) as Oracle[];
}

/** Lines of exactly `width` octets (CRLF included) except the last, to reach `octets` in `lines` lines. */
function textOf(octets: number, lines: number, fill = 'x'): string {
  const width = Math.floor(octets / lines);
  const rows: string[] = [];
  for (let i = 0; i < lines - 1; i++) rows.push(fill.repeat(width - 2));
  rows.push(fill.repeat(octets - width * (lines - 1) - 2));
  return rows.map((r) => `${r}\r\n`).join('');
}

/** Pads a header block (ending in the blank line) with an X-Padding field to exactly `octets`. */
function headerOf(fields: string[], octets: number): string {
  const base = fields.map((f) => `${f}\r\n`).join('');
  const pad = octets - base.length - '\r\n'.length - 'X-Padding: \r\n'.length;
  return `${base}X-Padding: ${'p'.repeat(pad)}\r\n\r\n`;
}

/** RFC 3501 §7.4.2's example message: its header fields, a header of 4286 - 3028 octets, a body of 3028 octets in 92 lines. */
const RFC3501_MESSAGE = Buffer.from(
  headerOf(
    [
      'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
      'From: Terry Gray <gray@cac.washington.edu>',
      'Subject: IMAP4rev1 WG mtg summary and minutes',
      'To: imap@cac.washington.edu',
      'cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>',
      'Message-Id: <B27397-0100000@cac.washington.edu>',
      'MIME-Version: 1.0',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
    ],
    4286 - 3028,
  ) + textOf(3028, 92),
);

/** RFC 3501 §7.4.2's multipart example: a 1152-octet 23-line text part and a 4554-octet 73-line base64 "cc.diff". */
const RFC3501_MULTIPART = Buffer.from(
  [
    'From: Terry Gray <gray@cac.washington.edu>\r\n',
    'MIME-Version: 1.0\r\n',
    'Content-Type: MULTIPART/MIXED; BOUNDARY="b27397"\r\n\r\n',
    '--b27397\r\n',
    'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n',
    textOf(1152, 23),
    '\r\n--b27397\r\n',
    'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n',
    'Content-ID: <960723163407.20117h@cac.washington.edu>\r\n',
    'Content-Description: Compiled diff\r\n',
    'Content-Transfer-Encoding: BASE64\r\n\r\n',
    textOf(4554, 73, 'Q'),
    '\r\n--b27397--\r\n',
  ].join(''),
);

/** More MIME shapes for the Python oracle: RFC 2231 parameters, a digest, encoded words, a part without a final CRLF. */
const MORE = [
  crlf(
    'From: "Doe, Jane" <jane@example.com>',
    'Reply-To: list@example.org',
    'To: =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>, bob@example.com',
    'Cc: carol@example.org',
    'Subject: =?UTF-8?Q?caf=C3=A9?= menu',
    'In-Reply-To: <0@example.com>',
    'Message-ID: <2@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="=_x"; charset=us-ascii',
    'Content-Language: fr',
    '',
    '--=_x',
    'Content-Type: text/plain; format=flowed; delsp=yes; charset="iso-8859-1"',
    'Content-Transfer-Encoding: 8bit',
    'Content-Disposition: inline',
    '',
    'Caf\u00e9 au lait ',
    'et croissant.',
    '--=_x',
    "Content-Type: application/octet-stream; name*=utf-8''%E2%82%AC.bin",
    "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.bin; size=3",
    'Content-Transfer-Encoding: base64',
    '',
    'AQID',
    '--=_x',
    'Content-Type: multipart/digest; boundary=d',
    '',
    '--d',
    '',
    'Subject: first in digest',
    '',
    'one',
    '--d',
    'Content-Type: message/rfc822',
    '',
    'Subject: second in digest',
    'From: Dan <dan@example.net>',
    '',
    'two',
    '--d--',
    '--=_x--',
  ),
];

describe('IMAP BODYSTRUCTURE and ENVELOPE against independent oracles', () => {
  let h: ImapHarness;

  beforeEach(async () => {
    h = await startImap();
  });
  afterEach(async () => {
    await h.close();
  });

  it('answers the FETCH of RFC 3501 §7.4.2 with its ENVELOPE, BODY and RFC822.SIZE', async () => {
    await h.deliver(RFC3501_MESSAGE);
    const c = await h.loginAlice();
    await c.command('s SELECT INBOX', /^s OK/);
    const lines = await c.command('a FETCH 1 (RFC822.SIZE ENVELOPE BODY)', /^a /);
    expect(lines[lines.length - 1]).to.match(/^a OK/);
    const reply = lines[0];
    // RFC 3501 §7.4.2, with the RFC's line wrap inside the cc list removed (addresses follow each other without a space).
    const envelope =
      'ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" ' +
      '(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ' +
      '(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ' +
      '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL ' +
      '"<B27397-0100000@cac.washington.edu>")';
    expect(reply).to.contain(envelope);
    expect(reply).to.contain('RFC822.SIZE 4286');
    // The quoted strings of BODY are case-insensitive (RFC 3501 §7.4.2 prints them in upper case).
    expect(reply.toUpperCase()).to.contain('BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))');
  });

  it("answers BODY for RFC 3501 §7.4.2's multipart example", async () => {
    await h.deliver(RFC3501_MULTIPART);
    const c = await h.loginAlice();
    await c.command('s SELECT INBOX', /^s OK/);
    const lines = await c.command('a FETCH 1 BODY', /^a /);
    expect(lines[lines.length - 1]).to.match(/^a OK/);
    const body =
      'BODY (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)' +
      '("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" ' +
      '"Compiled diff" "BASE64" 4554 73) "MIXED")';
    expect(lines[0].toUpperCase()).to.equal(`* 1 FETCH (${body})`.toUpperCase());
    // The case is kept where it is not case-insensitive: the Content-ID and description as written.
    expect(lines[0]).to.contain('"<960723163407.20117h@cac.washington.edu>" "Compiled diff"');
  });

  it("matches Python's email package for every part, as imapflow parses our BODYSTRUCTURE and ENVELOPE", async function () {
    if (!(await hasPython())) this.skip();
    const messages = [SIMPLE, ALTERNATIVE, NESTED, FORWARD, RFC3501_MESSAGE, RFC3501_MULTIPART, ...MORE];
    for (const m of messages) await h.deliver(m);
    const expected = await pythonOracle(messages);
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: h.securePort,
      secure: true,
      auth: { user: ALICE.username, pass: ALICE.password },
      tls: { ca: [h.certs.ca.cert] },
      logger: false,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.mailboxOpen('INBOX');
      let i = 0;
      for await (const m of client.fetch('1:*', { bodyStructure: true, envelope: true })) {
        expect(m.bodyStructure, `message ${i + 1} BODYSTRUCTURE`).to.deep.equal(expected[i].structure);
        const env = m.envelope ?? {};
        const got: Record<string, unknown> = {};
        for (const key of ['subject', 'from', 'sender', 'replyTo', 'to', 'cc', 'messageId', 'inReplyTo'] as const) {
          if (env[key] !== undefined) got[key] = env[key];
        }
        expect(got, `message ${i + 1} ENVELOPE`).to.deep.equal(expected[i].envelope);
        i++;
      }
      expect(i).to.equal(messages.length);
    } finally {
      await client.logout().catch(() => undefined);
    }
  });
});
