import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { decodeLoginResponse, LOGIN_CHALLENGES } from '../../protocol/sasl/login.js';
import { decodePlain } from '../../protocol/sasl/plain.js';
import type { ImapCommand } from '../imap-parser.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { expectCount, stringArg } from './args.js';

/** LOGIN user password (RFC 3501 §6.2.3); guarded by `needsTls` (LOGINDISABLED before TLS). */
export async function login(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  expectCount(args, 2);
  const username = stringArg(args[0], 'User name');
  const password = stringArg(args[1], 'Password');
  await s.login('IMAP-LOGIN', { username, password });
}

/**
 * AUTHENTICATE mechanism [initial-response] (RFC 3501 §6.2.2, RFC 4959 SASL-IR) for PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login). `=` is an empty initial response; `*` as a response cancels (BAD).
 * @throws ImapError NO for another mechanism; ProtocolSyntaxError for bad base64 or a malformed PLAIN message.
 */
export async function authenticate(s: ImapConnection, cmd: ImapCommand): Promise<void> {
  const args = cmd.args;
  expectCount(args, 1, 2);
  const mechanism = stringArg(args[0], 'Mechanism').toUpperCase();
  if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') throw new ImapError('NO', 'CANNOT', 'Unsupported authentication mechanism');
  let initial: string | undefined;
  if (args.length === 2) {
    const text = stringArg(args[1], 'Initial response');
    if (text === '*') throw new ImapError('BAD', undefined, 'Authentication cancelled');
    initial = text === '=' ? '' : text;
  }
  if (mechanism === 'PLAIN') return plain(s, initial);
  return loginMechanism(s, initial);
}

/** PLAIN: one message `[authzid] NUL authcid NUL passwd`; without an initial response the server sends `+ `. */
async function plain(s: ImapConnection, initial: string | undefined): Promise<void> {
  const response = initial ?? (await readSaslResponse(s, ''));
  if (response === undefined) return;
  if (response === '') throw new ProtocolSyntaxError('malformed PLAIN message');
  const { authzid, authcid, password } = decodePlain(response);
  await s.login('PLAIN', { username: authcid, authzid, password });
}

/**
 * LOGIN: the server asks `Username:` and `Password:` (base64 challenges). An initial response (SASL-IR), as
 * Outlook and other clients send it, is the user name, so only the password is asked for.
 */
async function loginMechanism(s: ImapConnection, initial: string | undefined): Promise<void> {
  const user = initial ?? (await readSaslResponse(s, LOGIN_CHALLENGES.username));
  if (user === undefined) return;
  const username = decodeLoginResponse(user);
  const pass = await readSaslResponse(s, LOGIN_CHALLENGES.password);
  if (pass === undefined) return;
  await s.login('LOGIN', { username, password: decodeLoginResponse(pass) });
}

/**
 * Sends a SASL continuation (`+ challenge`) and reads the client's response line (RFC 3501 §6.2.2). The line
 * is never logged. Resolves undefined when the connection closed meanwhile (or is closed here after a line
 * that never ended).
 * @throws ImapError BAD when the client cancels with `*` or the line is too long.
 */
async function readSaslResponse(s: ImapConnection, challenge: string): Promise<string | undefined> {
  s.send(`+ ${challenge}\r\n`);
  await s.flush();
  const r = await s.reader.readLine();
  if (r.kind === 'closed') return undefined;
  if (r.kind === 'runaway') {
    await s.end('closed');
    return undefined;
  }
  if (r.kind === 'too-long') throw new ImapError('BAD', undefined, 'Response too long');
  if (r.kind === 'bare-lf') throw new ImapError('BAD', undefined, 'Bare LF not allowed, lines end with CRLF');
  const text = r.line.toString('latin1').trim();
  if (text === '*') throw new ImapError('BAD', undefined, 'Authentication cancelled');
  return text;
}
