import { ProtocolSyntaxError } from '../../protocol/reply-error.js';
import { decodePlain } from '../../protocol/sasl/plain.js';
import type { ImapConnection } from '../imap-connection.js';
import { ImapError } from '../imap-replies.js';
import { expectCount, stringArg } from './args.js';

/** LOGIN user password (RFC 3501 §6.2.3); guarded by `needsTls` (LOGINDISABLED before TLS). */
export async function login(s: ImapConnection): Promise<void> {
  const args = s.command.args;
  expectCount(args, 2);
  const username = stringArg(args[0], 'User name');
  const password = stringArg(args[1], 'Password');
  await s.login('IMAP-LOGIN', { username, password });
}

/**
 * AUTHENTICATE PLAIN [initial-response] (RFC 3501 §6.2.2, RFC 4959 SASL-IR, RFC 4616). Without an initial
 * response the server sends `+ ` and reads one line; `=` is an empty initial response; `*` cancels (BAD).
 * @throws ImapError NO for another mechanism; ProtocolSyntaxError for bad base64 or a malformed PLAIN message.
 */
export async function authenticate(s: ImapConnection): Promise<void> {
  const args = s.command.args;
  expectCount(args, 1, 2);
  const mechanism = stringArg(args[0], 'Mechanism').toUpperCase();
  if (mechanism !== 'PLAIN') throw new ImapError('NO', 'CANNOT', 'Unsupported authentication mechanism');
  let response: string | undefined;
  if (args.length === 2) {
    const initial = stringArg(args[1], 'Initial response');
    if (initial === '*') throw new ImapError('BAD', undefined, 'Authentication cancelled');
    response = initial === '=' ? '' : initial;
  } else {
    response = await s.readSaslResponse('');
    if (response === undefined) return;
  }
  if (response === '') throw new ProtocolSyntaxError('malformed PLAIN message');
  const { authzid, authcid, password } = decodePlain(response);
  await s.login('PLAIN', { username: authcid, authzid, password });
}
